"""SMPTE timecode: ``HH:MM:SS:FF`` strings, frame counts and exact rational seconds.

A :class:`Timecode` is a frame count at an exact frame rate (a ``Fraction``: ``25``,
``Fraction(30000, 1001)`` for 29.97) plus the way it is written. Drop-frame timecode, which
exists only at 29.97 and 59.94 fps, is written with ``;`` before the frames; it skips frame
numbers 00 and 01 (00-03 at 59.94) at the start of every minute except every tenth, so that
the labels keep up with the clock: ``00:01:00;02`` is frame 1800 and ``00:10:00;00`` frame
17982 at 29.97. Every other rate (23.976, 24, 25, 30, 50, 60, ...) counts every frame
(non-drop), with the nominal rate (``round(rate)``: 24 for 23.976) frames per labelled second.

Hours are not wrapped at 24: a label past ``23:59:59:xx`` keeps counting (``24:00:00:00``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

__all__ = ["Timecode", "parse_frame_rate", "is_drop_frame_rate", "nominal_rate", "seconds_to_frames", "check_label"]

RateLike = Union[int, float, str, Fraction]

#: The rates written as decimals that are really n*1000/1001 (NTSC-family).
_NTSC = {"23.976": Fraction(24000, 1001), "23.98": Fraction(24000, 1001), "29.97": Fraction(30000, 1001),
         "47.952": Fraction(48000, 1001), "59.94": Fraction(60000, 1001), "119.88": Fraction(120000, 1001)}
_DROP_FRAMES = {Fraction(30000, 1001): 2, Fraction(60000, 1001): 4}  # labels skipped per minute

_LABEL = re.compile(r"^(\d{1,3}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


def parse_frame_rate(value: RateLike) -> Fraction:
    """A frame rate as an exact fraction: ``25``, ``"29.97"`` (-> 30000/1001), ``"24000/1001"``,
    ``Fraction(30000, 1001)``. Raises ``ValueError`` for anything that is not a positive rate."""
    if isinstance(value, Fraction):
        rate = value
    elif isinstance(value, str):
        text = value.strip()
        rate = _NTSC.get(text)
        if rate is None:
            try:
                rate = Fraction(text)
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"not a frame rate: {value!r}") from None
    elif isinstance(value, float):
        rate = _NTSC.get(f"{value:.3f}".rstrip("0").rstrip(".")) or _NTSC.get(f"{value:.2f}")
        if rate is None or abs(float(rate) - value) > 1e-3:
            rate = Fraction(value).limit_denominator(1001)
    elif isinstance(value, int) and not isinstance(value, bool):
        rate = Fraction(value)
    else:
        raise ValueError(f"not a frame rate: {value!r}")
    if rate <= 0 or rate > 1000:
        raise ValueError(f"frame rate out of range: {value!r}")
    return rate


def is_drop_frame_rate(rate: Fraction) -> bool:
    """True at the two rates drop-frame timecode exists for (29.97 and 59.94)."""
    return Fraction(rate) in _DROP_FRAMES


def nominal_rate(rate: Fraction) -> int:
    """Frames per labelled second: the rate rounded to a whole number (30 for 29.97)."""
    return max(1, math.floor(Fraction(rate) + Fraction(1, 2)))


def seconds_to_frames(seconds: Union[float, Fraction], rate: Fraction) -> int:
    """The frame nearest ``seconds`` at ``rate`` (halves round up), from the exact value of the
    float: 6.9999999 s at 25 fps is frame 175."""
    return math.floor(Fraction(seconds) * Fraction(rate) + Fraction(1, 2))


@dataclass(frozen=True)
class Timecode:
    """A frame count ``frames`` (from 00:00:00:00) at ``rate`` fps, labelled drop-frame or not.

    ``Timecode.parse("10:00:00:00", 25).frames == 900000``; ``str()`` writes the label back;
    ``seconds`` is the exact time of the frame (``frames / rate``).
    """

    frames: int
    rate: Fraction
    drop_frame: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", parse_frame_rate(self.rate))
        if self.frames < 0:
            raise ValueError(f"negative timecode: {self.frames} frames")
        if self.drop_frame and not is_drop_frame_rate(self.rate):
            raise ValueError(f"drop-frame timecode needs 29.97 or 59.94 fps, not {_rate_text(self.rate)}")

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, rate: RateLike) -> "Timecode":
        """``HH:MM:SS:FF`` (non-drop) or ``HH:MM:SS;FF`` (drop-frame; ``.`` and ``,`` are read as
        ``;`` too, as some tools write them) at ``rate``. Raises ``ValueError`` naming what is
        wrong: a field out of range, a frame label drop-frame skips, ``;`` at a non-drop rate."""
        rate = parse_frame_rate(rate)
        m = _LABEL.match(text.strip())
        if not m:
            raise ValueError(f"not a timecode (HH:MM:SS:FF, ';' before the frames for drop-frame): {text!r}")
        hh, mm, ss, sep, ff = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
        drop = sep != ":"
        fps = nominal_rate(rate)
        if mm > 59 or ss > 59 or ff >= fps:
            raise ValueError(f"timecode {text!r}: field out of range at {_rate_text(rate)} fps")
        if drop and not is_drop_frame_rate(rate):
            raise ValueError(f"timecode {text!r} is drop-frame (';'), which needs 29.97 or 59.94 fps, "
                             f"not {_rate_text(rate)}")
        labels = ((hh * 60 + mm) * 60 + ss) * fps + ff
        if not drop:
            return cls(labels, rate, False)
        skip = _DROP_FRAMES[rate]
        if ss == 0 and ff < skip and mm % 10 != 0:
            raise ValueError(f"timecode {text!r} does not exist: drop-frame skips frames 00-{skip - 1:02d} "
                             f"at the start of each minute not divisible by ten")
        minutes = hh * 60 + mm
        return cls(labels - skip * (minutes - minutes // 10), rate, True)

    @classmethod
    def from_seconds(cls, seconds: Union[float, Fraction], rate: RateLike, drop_frame: bool = False) -> "Timecode":
        """The frame nearest ``seconds`` (see :func:`seconds_to_frames`)."""
        rate = parse_frame_rate(rate)
        return cls(seconds_to_frames(seconds, rate), rate, drop_frame)

    # -- writing ----------------------------------------------------------------------------
    def labels(self) -> tuple:
        """(hours, minutes, seconds, frames) as written."""
        fps = nominal_rate(self.rate)
        count = self.frames
        if self.drop_frame:
            skip = _DROP_FRAMES[self.rate]
            per_minute = fps * 60 - skip  # a minute that drops labels
            per_ten = per_minute * 10 + skip  # ten minutes: nine that drop, one that does not
            tens, rest = divmod(count, per_ten)
            count += skip * 9 * tens + (skip * ((rest - skip) // per_minute) if rest >= skip else 0)
        seconds, ff = divmod(count, fps)
        minutes, ss = divmod(seconds, 60)
        hh, mm = divmod(minutes, 60)
        return hh, mm, ss, ff

    def __str__(self) -> str:
        hh, mm, ss, ff = self.labels()
        width = 3 if nominal_rate(self.rate) > 100 else 2
        return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if self.drop_frame else ':'}{ff:0{width}d}"

    @property
    def seconds(self) -> Fraction:
        """The exact time of this frame in seconds."""
        return Fraction(self.frames) / self.rate

    def __add__(self, frames: int) -> "Timecode":
        if not isinstance(frames, int):
            return NotImplemented
        return Timecode(self.frames + frames, self.rate, self.drop_frame)


def _rate_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}".rstrip("0")


def check_label(text: str) -> str:
    """``text`` stripped, if it has the shape of a timecode (any rate); ``ValueError`` if not."""
    text = text.strip()
    if not _LABEL.match(text):
        raise ValueError(f"not a timecode (HH:MM:SS:FF, ';' before the frames for drop-frame): {text!r}")
    return text
