"""Built-in voice activity detectors, registered ``trylast`` so that a plugin's backend of the
same name replaces them:

- ``silero`` (the default): Silero VAD v6 run natively (``whispermedia.silero``), one speech
  probability every 32 ms;
- ``energy``: a level gate, every 32 ms the frame's RMS in dBFS mapped onto 0-1 (-60 dBFS → 0,
  -30 dBFS → 1, so the default threshold 0.5 gates at -45 dBFS). It knows loud from quiet, not
  speech from music: a fallback and an example of a backend, not a defence.
"""

from __future__ import annotations

from typing import Iterable, Iterator, List, Tuple

import numpy as np

from whispermedia.hookspecs import hookimpl
from whispermedia.registry import SpeechBackend, SpeechBackendRegister
from whispermedia.speech import SpeechParams, regions_from_probabilities

SAMPLE_RATE = 16000
FRAME = 512  # 32 ms, the step of both backends


class _Counted:
    """Passes chunks through and counts their samples (the audio's true length)."""

    def __init__(self, chunks: Iterable[np.ndarray]):
        self._chunks = chunks
        self.samples = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for chunk in self._chunks:
            self.samples += len(chunk)
            yield chunk


def silero(chunks: Iterable[np.ndarray], params: SpeechParams) -> List[Tuple[float, float]]:
    from whispermedia import silero as net  # the network loads only when speech is detected

    audio = _Counted(chunks)
    blocks = list(net.probabilities(audio))
    probs = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return regions_from_probabilities(probs, net.SECONDS_PER_STEP, params, duration=audio.samples / SAMPLE_RATE)


def _check_silero() -> None:
    from whispermedia import silero as net

    net.weights_path()  # MissingDependency naming the package when its weights are not installed


def energy_probabilities(chunks: Iterable[np.ndarray]) -> Tuple[np.ndarray, int]:
    """Per 32 ms frame: the RMS level mapped onto 0-1 (-60 dBFS → 0, -30 dBFS → 1); and the
    number of samples read."""
    levels, pending, total = [], np.zeros(0, dtype=np.float32), 0
    for chunk in chunks:
        total += len(chunk)
        pending = np.concatenate([pending, np.asarray(chunk, dtype=np.float32)])
        n = len(pending) // FRAME * FRAME
        if n:
            levels.append(pending[:n].reshape(-1, FRAME))
            pending = pending[n:]
    if len(pending):
        levels.append(np.pad(pending, (0, FRAME - len(pending)))[None])
    if not levels:
        return np.zeros(0, dtype=np.float32), total
    frames = np.concatenate(levels).astype(np.float64)
    db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    return np.clip((db + 60.0) / 30.0, 0.0, 1.0).astype(np.float32), total


def energy(chunks: Iterable[np.ndarray], params: SpeechParams) -> List[Tuple[float, float]]:
    probs, total = energy_probabilities(chunks)
    return regions_from_probabilities(probs, FRAME / SAMPLE_RATE, params, duration=total / SAMPLE_RATE)


@hookimpl(trylast=True)
def register_speech_backends(register: SpeechBackendRegister) -> None:
    register.add(SpeechBackend("silero", silero, help="Silero VAD v6, run natively (the default)",
                               check=_check_silero))
    register.add(SpeechBackend("energy", energy, help="a level gate at about -45 dBFS (loud is speech)"))
