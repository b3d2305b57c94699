"""Spot checks of the language over a file decoded in one language.

Without ``language_per_region``, the language detected on the first window is the one every
window is decoded in, so a file whose second half is in another language comes out as invented
text in the first. ``LanguageCheck`` detects the language of a few windows spread over the
file, on the encoder output the loop has already computed for them (one decoder step each,
no encoder pass), and says, in one warning naming the times and the option, when they are
clearly in another language.

Which windows: the first non-silent window decoded at or after each of ``CHECKS`` points at
1/4, 2/4 and 3/4 of the file (after the first window; a file of one window has no other to
check). Silent-looking windows are checked too: a language the decoder was not told often
decodes as "silence" and is dropped. "Clearly": the window's leading language is another one,
with probability at least ``PROBABILITY`` and at least ``ODDS`` times the decoded language's
(espeak Spanish, read by base: es 0.49, en 0.15; a plain English window: en above 0.9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

import torch

from .constants import FRAMES_PER_SECOND, N_FRAMES
from .language import detect
from .types import LanguageGuess

if TYPE_CHECKING:
    from .model import Whisper

CHECKS = 3
PROBABILITY = 0.3
ODDS = 2.0


class LanguageCheck:
    """The language of up to ``CHECKS`` windows of one file, against the one it is decoded in."""

    def __init__(self, model: "Whisper", language: str, content_frames: int, first_seek: int = 0):
        self.model = model
        self.language = language
        points = (content_frames * i // (CHECKS + 1) for i in range(1, CHECKS + 1))
        self._points = sorted({p for p in points if p >= first_seek + N_FRAMES})  # past the first window
        self.checked: List[Tuple[float, LanguageGuess]] = []  # (window start in seconds, its language)

    def within(self, start: int, end: int) -> "LanguageCheck":
        """The checks whose point is in mel frames [start, end): for a part of the file decoded
        by its own loop (``pipeline.Part``), whose windows come in order only among themselves."""
        part = LanguageCheck.__new__(LanguageCheck)
        part.model, part.language, part.checked = self.model, self.language, []
        part._points = [p for p in self._points if start <= p < end]
        return part

    def see(self, seek: int, mel: torch.Tensor, audio_features: torch.Tensor) -> None:
        """A decoded, non-silent window at mel frame ``seek``: its padded mel [n_mels, 3000] and
        encoder output [1, n_audio_ctx, n_audio_state]; detected when it is the first at or
        after the next check point."""
        if not self._points or seek < self._points[0]:
            return
        self._points = [p for p in self._points if p > seek]
        self.checked.append((seek / FRAMES_PER_SECOND, detect(self.model, mel, audio_features)))

    def disagreements(self) -> List[Tuple[float, LanguageGuess]]:
        """The windows clearly in another language than the one decoded."""
        return [(t, g) for t, g in self.checked
                if g.language != self.language and g.probability >= PROBABILITY
                and g.probability >= ODDS * g.probabilities.get(self.language, 0.0)]

    def warning(self, source: Optional[str]) -> Optional[str]:
        """One line naming the windows in another language, their times and the option; None
        when every window checked agreed."""
        found = self.disagreements()
        if not found:
            return None
        where = ", ".join(f"{g.language} (p={g.probability:.2f}) at {_clock(t)}" for t, g in found)
        return (f"{source or 'the audio'}: decoded as {self.language} (the first window's language), but the "
                f"window{'s' if len(found) > 1 else ''} starting {where} "
                f"{'are' if len(found) > 1 else 'is'} in another language: language_per_region=True "
                f"(wm run --language-per-region) transcribes each region in its own language")


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
