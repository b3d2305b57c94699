"""What every timeline format needs from a transcript: the clock it is timed on (frame rate and
start timecode) and the items to place on it, snapped to whole frames.

The clock comes from, in order: the options (``start_timecode``, ``fps``; a format's
``options`` mapping wins over ``transcript.info.options``), the media facts of the input
(``transcript.info.media``: the video's frame rate, the file's start timecode), and the defaults
(25 fps, ``00:00:00:00``, drop-frame labels at 29.97/59.94 when the file says nothing).

An item is placed at ``clock.start + frames(item.start)``: a transcript's times are seconds from
the first decoded sample, which is the first frame of the source. :func:`timeline_items` gives
one item per segment with text. Per-cue placement (the subtitle layout engine's cues) plugs in
here, as another way to produce the same items; formats do not change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from fractions import Fraction
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from .errors import OutputError
from .timecode import Timecode, is_drop_frame_rate, parse_frame_rate, seconds_to_frames
from .types import Transcript, Word

__all__ = ["DEFAULT_FRAME_RATE", "TimelineClock", "TimelineItem", "timeline_clock", "timeline_items",
           "subtitle_offset", "lanes", "one_line", "source_url"]

#: The frame rate of a timeline when neither the options nor the input say (audio-only input).
DEFAULT_FRAME_RATE = Fraction(25)


@dataclass(frozen=True)
class TimelineItem:
    """One thing to place on a timeline: ``start``/``end`` in seconds on the transcript's
    timeline, its ``text`` on one line, its ``words`` (None without word timing), the
    ``segment`` id it comes from and its ``language`` (the segment's, else the transcript's)."""

    start: float
    end: float
    text: str
    words: Optional[Tuple[Word, ...]]
    segment: int
    language: str


@dataclass(frozen=True)
class TimelineClock:
    """The frame grid a timeline is written on: ``rate`` fps (exact), and the timecode ``start``
    of the source's first frame (what the transcript's 0 s is on the record timeline)."""

    rate: Fraction
    start: Timecode

    @property
    def drop_frame(self) -> bool:
        return self.start.drop_frame

    @property
    def frame_duration(self) -> Fraction:
        """Seconds per frame, exact (1001/30000 at 29.97)."""
        return 1 / self.rate

    def frames(self, seconds: float) -> int:
        """The frame offset from the source's first frame nearest ``seconds``."""
        return seconds_to_frames(max(seconds, 0.0), self.rate)

    def timecode(self, seconds: float) -> Timecode:
        """The record timecode of ``seconds`` on the transcript's timeline."""
        return self.start + self.frames(seconds)

    def span(self, item: TimelineItem) -> Tuple[int, int]:
        """``item`` as (first frame offset, frame count), at least one frame long."""
        first = self.frames(item.start)
        return first, max(self.frames(item.end) - first, 1)


def _option(transcript: Transcript, options: Optional[Mapping[str, Any]], name: str) -> Any:
    if options is not None and options.get(name) is not None:
        return options[name]
    return getattr(transcript.info.options, name, None)


def timeline_clock(transcript: Transcript, options: Optional[Mapping[str, Any]] = None) -> TimelineClock:
    """The clock of ``transcript`` (see the module docstring). Raises ``OutputError`` when the
    start timecode does not fit the frame rate (``;`` at 25 fps, frame 29 at 25 fps)."""
    media = transcript.info.media
    rate_value = _option(transcript, options, "fps")
    try:
        rate = parse_frame_rate(rate_value) if rate_value is not None else (
            media.frame_rate if media is not None and media.frame_rate else DEFAULT_FRAME_RATE)
    except ValueError as e:
        raise OutputError(f"fps: {e}") from None
    label = _option(transcript, options, "start_timecode")
    where = "start timecode"
    if label is None and media is not None and media.start_timecode:
        label, where = media.start_timecode, f"the start timecode of {media.path}"
    if label is None:
        return TimelineClock(rate, Timecode(0, rate, is_drop_frame_rate(rate)))
    try:
        return TimelineClock(rate, Timecode.parse(str(label), rate))
    except ValueError as e:
        raise OutputError(f"{where}: {e}") from None


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and tabs become single spaces, ends stripped."""
    return " ".join(text.split())


def timeline_items(transcript: Transcript) -> List[TimelineItem]:
    """One item per segment with text, in time order (``end`` never before ``start``)."""
    items = []
    for segment in transcript.segments:
        text = one_line(segment.text)
        if not text:
            continue
        items.append(TimelineItem(
            start=segment.start, end=max(segment.end, segment.start), text=text, words=segment.words,
            segment=segment.id, language=segment.language or transcript.info.language))
    return items


def lanes(spans: Sequence[Tuple[int, int]]) -> List[int]:
    """A lane (1, 2, ...) for each (first frame, frame count) span so that no two spans on one
    lane overlap: each goes on the lowest lane whose last span has ended. Spans in start order."""
    ends: List[int] = []  # per lane, the frame after its last span
    out = []
    for first, count in spans:
        lane = next((i for i, end in enumerate(ends) if end <= first), len(ends))
        if lane == len(ends):
            ends.append(0)
        ends[lane] = first + count
        out.append(lane + 1)
    return out


def subtitle_offset(transcript: Transcript, options: Optional[Mapping[str, Any]] = None) -> float:
    """Seconds to add to SRT/VTT (and any sidecar subtitle) times: the start timecode's exact
    time with ``timecode_offset="source"``, else 0."""
    if _option(transcript, options, "timecode_offset") != "source":
        return 0.0
    return float(timeline_clock(transcript, options).start.seconds)


def source_url(source: Optional[str]) -> str:
    """What a timeline's clip points at: the ``file://`` URL of a local file that exists, else the
    source as given (a URL, or a name such as a test's)."""
    if source and "://" not in source and os.path.exists(source):
        return Path(source).resolve().as_uri()
    return source or ""
