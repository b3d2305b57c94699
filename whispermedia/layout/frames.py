"""A frame grid: times quantised to the frames of a video's frame rate.

Subtitle timing rules are counted in frames (a 2-frame gap, 12-frame chaining), and a
subtitle time that is not on a frame boundary is shown on the next frame anyway, so the
engine works in whole frames and converts to seconds only when writing. Frame ``n`` starts
at ``n / fps`` seconds. ``fps`` is exact (``Fraction(24000, 1001)`` for 23.976), so frame
numbers never drift over hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Union

from ..timecode import parse_frame_rate as parse_fps  # the one frame-rate parser (23.976 -> 24000/1001)

#: The grid of an audio-only input given no ``fps``: PAL's 25 frames per second (a 2-frame
#: gap is 80 ms), the rate most subtitle tools assume when they know none.
AUDIO_ONLY_FPS = Fraction(25)


@dataclass(frozen=True)
class FrameGrid:
    """Frames of one rate. ``fps`` frames per second, exact."""

    fps: Fraction

    @classmethod
    def of(cls, fps: Optional[Union[str, float, Fraction]]) -> "FrameGrid":
        return cls(AUDIO_ONLY_FPS if fps is None else parse_fps(fps))

    def floor(self, seconds: float) -> int:
        """The frame showing at ``seconds`` (the one it falls in)."""
        return math.floor(seconds * self.fps + Fraction(1, 1000))  # float noise must not lose a frame

    def ceil(self, seconds: float) -> int:
        """The first frame boundary at or after ``seconds``."""
        return math.ceil(seconds * self.fps - Fraction(1, 1000))

    def nearest(self, seconds: float) -> int:
        return math.floor(seconds * self.fps + Fraction(1, 2))

    def seconds(self, frame: int) -> float:
        """Where frame ``frame`` starts, in seconds."""
        return float(Fraction(frame) / self.fps)

    def frames(self, seconds: float) -> int:
        """A duration in whole frames, rounded half down: 0.5 s is 12 frames at 23.976, 24 and
        25 (the guides' "12 frames"), 15 at 29.97 and 30."""
        return math.ceil(seconds * self.fps - Fraction(1, 2))

    def on_grid(self, seconds: float, tolerance: float = 0.0005) -> bool:
        """Whether ``seconds`` is a frame boundary, within ``tolerance`` (half a millisecond:
        the resolution of SRT and WebVTT times)."""
        return abs(self.seconds(self.nearest(seconds)) - seconds) <= tolerance + 1e-9


