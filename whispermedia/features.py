"""Whisper's audio front end: constants, the mel filter bank, padding and log-mel features.

Same names and call shapes as openai-whisper's ``whisper.audio`` (``log_mel_spectrogram``,
``pad_or_trim``, ``mel_filters``, ``N_FRAMES`` ...) so code can switch imports; the numbers
come from :mod:`whispermedia.ops` (the fused compiled op, or its pure-torch reference).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, TypeVar, Union

import numpy as np
import torch
import torch.nn.functional as F

from whispermedia import ops

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "CHUNK_LENGTH",
    "N_SAMPLES",
    "N_FRAMES",
    "N_SAMPLES_PER_TOKEN",
    "FRAMES_PER_SECOND",
    "TOKENS_PER_SECOND",
    "exact_div",
    "mel_filters",
    "pad_or_trim",
    "log_mel_spectrogram",
]


def exact_div(x: int, y: int) -> int:
    """``x // y``, refusing a remainder (the constants below must divide evenly)."""
    if x % y:
        raise ValueError(f"{x} is not divisible by {y}")
    return x // y


SAMPLE_RATE = 16000  # Hz
N_FFT = 400  # samples per STFT window (25 ms)
HOP_LENGTH = 160  # samples between frames (10 ms)
CHUNK_LENGTH = 30  # seconds per model window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples per window
N_FRAMES = exact_div(N_SAMPLES, HOP_LENGTH)  # 3000 mel frames per window
N_SAMPLES_PER_TOKEN = HOP_LENGTH * 2  # the encoder's stride-2 convolution: one audio token per 2 frames
FRAMES_PER_SECOND = exact_div(SAMPLE_RATE, HOP_LENGTH)  # 100 frames (10 ms each)
TOKENS_PER_SECOND = exact_div(SAMPLE_RATE, N_SAMPLES_PER_TOKEN)  # 50 audio tokens (20 ms each)

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz at 200/3 Hz per mel,
# logarithmic above with 27 mels per factor 6.4 in frequency.
_MEL_HZ_PER_MEL = 200.0 / 3.0
_MEL_BREAK_HZ = 1000.0
_MEL_BREAK = _MEL_BREAK_HZ / _MEL_HZ_PER_MEL
_MEL_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
    hz = np.asarray(hz, dtype=np.float64)
    above = _MEL_BREAK + np.log(np.maximum(hz, _MEL_BREAK_HZ) / _MEL_BREAK_HZ) / _MEL_LOG_STEP
    return np.where(hz >= _MEL_BREAK_HZ, above, hz / _MEL_HZ_PER_MEL)


def _mel_to_hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    mel = np.asarray(mel, dtype=np.float64)
    above = _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (np.maximum(mel, _MEL_BREAK) - _MEL_BREAK))
    return np.where(mel >= _MEL_BREAK, above, mel * _MEL_HZ_PER_MEL)


def _slaney_mel_bank(n_mels: int, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> NDArray[np.float32]:
    """Triangular filters evenly spaced on Slaney's mel scale from 0 Hz to Nyquist, each
    scaled to unit area in Hz (``librosa.filters.mel(..., htk=False, norm="slaney")``).
    Computed in float64 and rounded once, shape = (n_mels, n_fft // 2 + 1)."""
    bin_hz = np.arange(n_fft // 2 + 1, dtype=np.float64) * (sample_rate / n_fft)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(edges)
    rising = (bin_hz[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - bin_hz[None, :]) / widths[1:, None]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return bank.astype(np.float32)


@functools.lru_cache(maxsize=None)
def _mel_filters_cached(n_mels: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(_slaney_mel_bank(n_mels)).to(device)


def mel_filters(n_mels: int, device: Union[str, torch.device, None] = None) -> torch.Tensor:
    """Whisper's mel filter bank, float32, shape = (n_mels, N_FFT // 2 + 1) = (n_mels, 201).

    Equal to the ``mel_filters.npz`` openai-whisper ships (for 80 and 128 mels) to within
    float rounding, but computed here for any ``n_mels``. Cached per (n_mels, device): treat
    the result as read-only.
    """
    if n_mels < 1:
        raise ValueError(f"n_mels must be positive, got {n_mels}")
    return _mel_filters_cached(int(n_mels), torch.device(device if device is not None else "cpu"))


ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def pad_or_trim(array: ArrayT, length: int = N_SAMPLES, *, axis: int = -1) -> ArrayT:
    """Zero-pad at the end or cut ``array`` (numpy or torch) to ``length`` along ``axis``,
    the way the encoder expects exactly N_SAMPLES samples (or N_FRAMES frames)."""
    size = array.shape[axis]
    if size > length:
        if torch.is_tensor(array):
            return array.narrow(axis, 0, length)
        return array.take(indices=range(length), axis=axis)
    if size < length:
        if torch.is_tensor(array):
            # F.pad takes (left, right) pairs from the last dimension backwards.
            pads = [0, 0] * array.dim()
            pads[2 * (array.dim() - 1 - (axis % array.dim())) + 1] = length - size
            return F.pad(array, pads)
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - size)
        return np.pad(array, widths)
    return array


def log_mel_spectrogram(
    audio: Union[str, os.PathLike, np.ndarray, torch.Tensor],
    n_mels: int = 80,
    padding: int = 0,
    device: Union[str, torch.device, None] = None,
) -> torch.Tensor:
    """Whisper's log-mel spectrogram of 16 kHz mono audio.

    Parameters
    ----------
    audio: path, np.ndarray or torch.Tensor
        A media file (decoded with :func:`whispermedia.media.load_audio`), or samples at
        16 kHz in [-1, 1], shape = (n_samples,) or (batch, n_samples).
    n_mels: int
        Mel bins: 80 for most models, 128 for large-v3 and turbo.
    padding: int
        Zero samples appended before the transform (openai-whisper's ``padding``;
        transcription pads a full window, N_SAMPLES).
    device: str or torch.device, optional
        Where to compute; by default where ``audio`` already is (CPU for a path or array).

    Returns
    -------
    torch.Tensor, float32, shape = (n_mels, n_frames) or (batch, n_mels, n_frames)
        n_frames = (n_samples + padding) // HOP_LENGTH, i.e. FRAMES_PER_SECOND per second.
        Each row is normalised with its own maximum (max - 8 clamp, then (x + 4) / 4),
        exactly as openai-whisper normalises a single clip.
    """
    if isinstance(audio, (str, os.PathLike)):
        from whispermedia.media import load_audio  # deferred: the media layer pulls in PyAV

        audio = load_audio(audio)
    if not torch.is_tensor(audio):
        audio = torch.from_numpy(np.ascontiguousarray(audio))
    if device is not None:
        audio = audio.to(device)
    if audio.dtype != torch.float32:
        audio = audio.to(torch.float32)
    if padding > 0:
        audio = F.pad(audio, (0, padding))
    return ops.log_mel_spectrogram(audio, mel_filters(n_mels, audio.device), HOP_LENGTH)
