"""Whisper's fixed audio geometry and default word-timing punctuation, as plain numbers.

A leaf module: it imports nothing (no torch, no numpy), so any layer can use the numbers
without paying for the mel op or the model (``features``, ``media``, ``timing``, the options,
the tests). The values are openai-whisper's ``whisper.audio`` constants; every derived value is
computed here with :func:`exact_div`, so a change that breaks the geometry fails at import.
"""

from __future__ import annotations

__all__ = [
    "exact_div",
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "CHUNK_LENGTH",
    "N_SAMPLES",
    "N_FRAMES",
    "N_AUDIO_POSITIONS",
    "FRAMES_PER_POSITION",
    "N_SAMPLES_PER_TOKEN",
    "FRAMES_PER_SECOND",
    "TOKENS_PER_SECOND",
    "PREPEND_PUNCTUATIONS",
    "APPEND_PUNCTUATIONS",
    "DEFAULT_MODEL",
]


def exact_div(x: int, y: int) -> int:
    """``x // y``, refusing a remainder (the constants below must divide evenly)."""
    if x % y:
        raise ValueError(f"{x} is not divisible by {y}")
    return x // y


SAMPLE_RATE = 16000  # Hz: every model input is 16 kHz mono
N_FFT = 400  # samples per STFT window (25 ms)
HOP_LENGTH = 160  # samples between mel frames (10 ms)
CHUNK_LENGTH = 30  # seconds per model window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples per window
N_FRAMES = exact_div(N_SAMPLES, HOP_LENGTH)  # 3000 mel frames per window
N_AUDIO_POSITIONS = 1500  # encoder output positions per window (every model's n_audio_ctx)
# The encoder's stride-2 convolution: one audio position per 2 mel frames (20 ms), which is
# also the step of one timestamp token.
FRAMES_PER_POSITION = exact_div(N_FRAMES, N_AUDIO_POSITIONS)  # 2
N_SAMPLES_PER_TOKEN = HOP_LENGTH * FRAMES_PER_POSITION  # 320 samples per audio position
FRAMES_PER_SECOND = exact_div(SAMPLE_RATE, HOP_LENGTH)  # 100 mel frames (10 ms each)
TOKENS_PER_SECOND = exact_div(SAMPLE_RATE, N_SAMPLES_PER_TOKEN)  # 50 audio positions (20 ms each)

# openai-whisper's defaults for word timing: punctuation merged into the next word (prepend)
# or into the previous one (append).
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"

# the model a transcription uses when none is named (a registry name: whispermedia.models.REGISTRY)
DEFAULT_MODEL = "base"
