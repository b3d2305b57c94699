"""Shared fixtures of the op tests: a deterministic speech-like test signal."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from whispermedia.constants import SAMPLE_RATE


_PHRASE = 33_601  # samples synthesised once (2.1 s, odd so repeats do not align with hops)


@functools.lru_cache(maxsize=4)
def _phrase(seed: int) -> torch.Tensor:
    t = torch.arange(_PHRASE, dtype=torch.float64) / SAMPLE_RATE
    f0 = 160 + 60 * torch.sin(2 * math.pi * 0.47 * t + seed) + 15 * torch.sin(2 * math.pi * 2.3 * t)
    phase = 2 * math.pi * torch.cumsum(f0 / SAMPLE_RATE, 0)
    drift = [1 + 0.1 * torch.sin(2 * math.pi * r * t) for r in (0.9, 0.6, 0.3)]
    voiced = torch.zeros_like(t)
    for k in range(1, 32):
        formants = sum(torch.exp(-(((k * f0 - c * d) / bw) ** 2))
                       for c, bw, d in zip((700.0, 1400.0, 2600.0), (150.0, 200.0, 300.0), drift))
        voiced += (0.2 + formants) / k * torch.sin(k * phase)
    syllables = torch.relu(torch.sin(2 * math.pi * 4.1 * t)) ** 1.5
    return (voiced * syllables / 3).float()


@functools.lru_cache(maxsize=16)
def _speech_like(n_samples: int, seed: int, loudness: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    phrase = _phrase(seed % 4)
    reps = -(-n_samples // _PHRASE)
    # Each repeat gets its own level (a 40 dB spread, some near-silent) so that frames differ.
    gains = 10 ** (-2 * torch.rand(reps, 1, generator=g))
    voiced = (phrase.expand(reps, -1) * gains).reshape(-1)[:n_samples]
    noise = torch.randn(n_samples, generator=g)
    t = torch.arange(n_samples, dtype=torch.float32) / SAMPLE_RATE
    bursts = (torch.sin(2 * math.pi * 1.7 * t + 0.5 * seed) > 0.93).float() * 0.3 * noise
    return loudness * (voiced + bursts + 3e-4 * noise)


def make_speech_like(n_samples: int, seed: int = 0, loudness: float = 0.1) -> torch.Tensor:
    """A deterministic stand-in for speech, float32, shape = (n_samples,), 16 kHz.

    A 2.1 s phrase (a harmonic series with a wandering 85-235 Hz pitch, shaped by three
    moving formants and syllable-rate modulation) repeated at random levels, plus
    fricative-like noise bursts and a faint noise floor: wide dynamic range across frames and mels, which is what
    the max - 8 clamp and the low-power bins exercise. Cached (a copy is returned).
    """
    return _speech_like(int(n_samples), int(seed), float(loudness)).clone()


@pytest.fixture
def speech_like():
    return make_speech_like


@pytest.fixture(autouse=True)
def _no_forced_reference(monkeypatch):
    # A developer's WM_FORCE_REFERENCE=1 must not silently turn kernel tests into no-ops.
    monkeypatch.delenv("WM_FORCE_REFERENCE", raising=False)
