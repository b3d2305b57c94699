"""Whether an input holds audio worth transcribing, and where its language can be heard.

Whisper, given nothing, still answers: an empty or silent input "detects" English with
p = 0.4 and may decode a hallucinated "Thank you." So before the loop runs:

- :func:`check_usable` refuses, as a :class:`~whispermedia.errors.MediaError` (``wm run``:
  exit 3, no output written), an input with no usable audio: shorter than one 10 ms mel frame
  (a 1-sample file), samples that are all NaN or infinite (an array; a media file's are
  refused by the media layer, ``whispermedia.media``), or silence throughout
  (nothing louder than about -90 dBFS: digital silence, dither);
- :func:`detection_start` says where language detection should look: the first 30 s window
  as openai-whisper does when it holds a second of sound, else the first stretch that does
  (a file that opens with a minute of silence is not judged on the silence). With under a
  second of sound in the whole input it raises a ``MediaError`` saying the language cannot be
  detected and must be named, rather than guessing.

Loudness comes from the unnormalised log10 mel power that ``features.MelWindows`` already
measures in its first pass (``maximum``), so the checks cost nothing on ordinary inputs; only
an input whose first window is (nearly) silent is scanned further, one window at a time.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .constants import FRAMES_PER_SECOND, HOP_LENGTH, N_FRAMES, SAMPLE_RATE
from .errors import MediaError
from .features import MelWindows

#: Unnormalised log10 mel power at or below which a frame is silent: about -90 dBFS for a tone
#: (digital silence is -10, the floor of the log; 16-bit dither about -7.7; a -60 dBFS hiss -4.4).
SILENCE_LOG_MEL = -7.0

#: Sound needed to detect a language from: one second of frames above the silence level and
#: within 50 dB of the input's loudest (a recording's noise floor sits lower than that).
MIN_DETECTION_FRAMES = FRAMES_PER_SECOND

_NAME_IT = "name the language (--language) to transcribe it"


def check_usable(mel: MelWindows) -> None:
    """``MediaError`` naming the input when it holds no usable audio (see the module)."""
    label = mel.source.label if mel.source is not None else "<samples>"
    n = mel.n_samples
    if mel.content_frames == 0:
        unit = "sample" if n == 1 else "samples"
        raise MediaError(f"no usable audio: {n} {unit} ({n / SAMPLE_RATE:.4f} s) is shorter than one "
                         f"{HOP_LENGTH * 1000 // SAMPLE_RATE} ms frame", label)
    if not math.isfinite(mel.maximum) or (mel.source is not None and mel.source.kind == "samples"
                                          and not any(np.isfinite(c).any() for c in mel.source.chunks())):
        # (a media file's NaNs are the media layer's to refuse; an array's are seen here, and
        # the compiled op would otherwise read them as silence)
        raise MediaError(f"no usable audio: all {n} samples are NaN or infinite", label)
    if mel.maximum <= SILENCE_LOG_MEL:
        raise MediaError(f"no usable audio: silent throughout ({n / SAMPLE_RATE:.2f} s, nothing louder than "
                         "about -90 dBFS)", label)


def _sound(frames: torch.Tensor, maximum: float) -> torch.Tensor:
    """frames [n_mels, n] (normalised log-mel) -> bool [n]: which hold sound, i.e. rise above
    both the silence level and 50 dB under the input's loudest (normalised: (log10 + 4) / 4)."""
    level = (max(SILENCE_LOG_MEL, maximum - 5.0) + 4.0) / 4.0
    return frames.max(dim=0).values > level


def detection_start(mel: MelWindows, seek: int = 0) -> int:
    """The mel frame where language detection's 30 s window should start: ``seek`` when the
    window there holds ``MIN_DETECTION_FRAMES`` of sound, else the first frame of sound in the
    first later window that does. ``MediaError`` when the input is under a second long or no
    window holds a second of sound (then no language is "detected" from it)."""
    label = mel.source.label if mel.source is not None else "<samples>"
    if mel.content_frames - seek < MIN_DETECTION_FRAMES:
        seconds = max(mel.content_frames - seek, 0) / FRAMES_PER_SECOND
        raise MediaError(f"{seconds:.2f} s of audio is too short to detect its language (1 s at least): "
                         f"{_NAME_IT}", label)
    total = 0
    for start in range(seek, mel.content_frames, N_FRAMES):
        loud = _sound(mel[:, start:min(start + N_FRAMES, mel.content_frames)], mel.maximum)
        count = int(loud.sum())
        if count >= MIN_DETECTION_FRAMES:
            return seek if start == seek else start + int(loud.nonzero()[0, 0])
        total += count
    raise MediaError(f"only {total / FRAMES_PER_SECOND:.2f} s of sound: too little to detect its language "
                     f"(1 s at least): {_NAME_IT}", label)
