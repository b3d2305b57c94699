"""The language of each region of a file (``language_per_region``), asked of the plugin host.

Whisper decodes a window in one language. ``RegionLanguage`` says which language each window
starts in (detected on its head), and where a window's speech turns to another language, so
the long-form loop can end the window there. Every detection goes through the host's
``detect_language`` hook like the first window's does; the built-in plugin answers from the
window's encoder output when the loop already has it (no second encoder pass), a plugin of
one's own gets the mel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

import torch

from . import features
from .constants import FRAMES_PER_SECOND, N_FRAMES
from .types import LanguageGuess, Segment

if TYPE_CHECKING:
    from .model import Whisper

# the head of a window whose language is detected (10 s), the start of a head that must confirm a
# change of language (5 s), the shortest stretch judged on its own (2 s), and how sure that
# judgement must be before a window is cut there
HEAD_FRAMES = 1000
START_FRAMES = 500
MIN_REGION_FRAMES = 200
REGION_LANGUAGE_PROBABILITY = 0.5


def detect(model: "Whisper", window: torch.Tensor, audio_features: Optional[torch.Tensor] = None) -> LanguageGuess:
    """The language of one 30-second mel window [n_mels, 3000] on the model's device, from the
    plugin host; ``audio_features`` [1, 1500, n_state]: that window's encoder output, if known."""
    from .plugins import get_host

    return get_host().detect_language(model=model, mel=window, tokenizer=model.tokenizer,
                                      audio_features=audio_features)


class RegionLanguage:
    """Per-region language detection over one file's mel (``features.MelWindows``)."""

    def __init__(self, model: "Whisper", mel: features.MelWindows):
        self.model = model
        self.mel = mel
        self._first: Optional[Tuple[int, LanguageGuess]] = None  # (seek, guess) of the first window
        self._mel_max: Optional[float] = None

    def _window(self, start: int, end: int) -> torch.Tensor:
        """Mel frames [start, end) padded to a window, on the model's device."""
        return features.pad_or_trim(self.mel[:, start:end], N_FRAMES).to(self.model.device)

    def first(self, seek: int, size: int) -> LanguageGuess:
        """The language the speech starts in: the head of the first window (kept, so the loop
        does not detect it again)."""
        guess = self.head(seek, size)
        self._first = (seek, guess)
        return guess

    def head(self, seek: int, size: int, audio_features: Optional[torch.Tensor] = None) -> LanguageGuess:
        """The language a window starts in: detected on its first ``HEAD_FRAMES`` alone, so that
        a window that starts in one language and goes on in another is decoded in the first
        (``change`` then finds where the second begins). A window no longer than that is
        detected whole, from its encoder output when given."""
        if size <= HEAD_FRAMES and audio_features is not None:
            return detect(self.model, self._window(seek, seek + size), audio_features)
        return detect(self.model, self._window(seek, seek + min(size, HEAD_FRAMES)))

    def for_window(self, seek: int, size: int, audio_features: torch.Tensor, current: str) -> str:
        """The language to decode the window at ``seek`` (``size`` frames) in, the previous
        window's being ``current``."""
        if self._first is not None and self._first[0] == seek:
            guess = self._first[1]
        else:
            guess = self.head(seek, size, audio_features)
        if guess.language != current and min(size, HEAD_FRAMES) > START_FRAMES:
            # the head may straddle the turn (the old language's last sentence, then the new
            # one): when its start is still in the current language, the window starts in it,
            # and ``change`` finds the turn after decoding
            start = self.head(seek, START_FRAMES)
            if start.language == current:
                guess = start
        return guess.language

    def change(self, segments: List[Segment], language: str, seek: int, size: int,
               next_seek: int) -> Optional[Tuple[int, int]]:
        """Where a window's speech turns to another language: (index of the first segment not
        kept, mel frame where the next window starts), or None when it does not.

        Whisper decoding in one language either stops where the speech changes language (the
        rest of the window would be skipped) or goes on in the first language (translating or
        garbling the rest). So the candidate turning points are the starts of the segments after
        the first and, when the loop would skip audio after the last segment, that segment's
        end. The audio from the latest candidate to the window's end is detected on its own
        (one encoder pass); only when it is clearly in another language is the earliest such
        candidate found by bisection (one encoder pass per step).
        """
        window_end = seek + size
        points = [(i, round(s.start * FRAMES_PER_SECOND)) for i, s in enumerate(segments) if i > 0]
        last_end = round(segments[-1].end * FRAMES_PER_SECOND)
        if next_seek - last_end >= MIN_REGION_FRAMES and self._has_speech(last_end, next_seek):
            points.append((len(segments), last_end))  # audio the loop would skip
        points = [(i, f) for i, f in points if seek < f <= window_end - MIN_REGION_FRAMES]
        if not points:
            return None

        def other_language(frame: int) -> bool:
            guess = detect(self.model, self._window(frame, window_end))
            return guess.language != language and guess.probability >= REGION_LANGUAGE_PROBABILITY

        if not other_language(points[-1][1]):
            return None
        lo, hi = 0, len(points) - 1  # points[hi] starts a stretch in another language
        while lo < hi:
            mid = (lo + hi) // 2
            if other_language(points[mid][1]):
                hi = mid
            else:
                lo = mid + 1
        return points[hi]

    def _has_speech(self, start: int, end: int) -> bool:
        """Whether mel frames [start, end) hold at least a second of sound within 40 dB of the
        file's loudest (log-mel units: 1.0 is 40 dB), so that silence is never sent to detection."""
        if self._mel_max is None:
            self._mel_max = float(self.mel.max())
        loud = self.mel[:, start:end].max(dim=0).values >= self._mel_max - 1.0
        return int(loud.sum()) >= FRAMES_PER_SECOND
