"""Shot changes: where the picture cuts, for subtitle timing to snap to.

``detect_cuts(path)`` decodes the first video stream with PyAV, scales every frame down to
64x36 luma, and marks a cut where the frame differs from the one before by much more than
the picture has been changing lately: the mean absolute luma difference is above
``MIN_DIFFERENCE`` (of 255) and above ``RATIO`` times the median of the last
``HISTORY`` differences, and the grey-level histograms (16 bins) differ by more than
``MIN_HISTOGRAM`` of their mass (so a pan or a flash of light that moves pixels but keeps the
histogram, or a fade that changes both slowly, is not a cut). Cuts closer than
``MIN_SHOT`` frames to the previous one are dropped (a flash frame is one shot).
Cost: one decode of the video; about the time the decoder needs (docs/benchmarks.md).

``read_cut_list(path)`` reads an editor's own list: one time per line, as seconds
(``12.5``), ``HH:MM:SS.mmm`` or ``HH:MM:SS:FF`` (frames at the given rate); ``#`` starts a
comment. ``cut_times(spec, transcript)`` answers ``--shot-changes auto|off|FILE``.
"""

from __future__ import annotations

import functools
import os
import re
from fractions import Fraction
from typing import List, Optional, Tuple

import numpy as np

from .errors import MediaError

MIN_DIFFERENCE = 20.0
RATIO = 3.0
HISTORY = 12
MIN_HISTOGRAM = 0.25
MIN_SHOT = 6
_SIZE = (64, 36)


def detect_cuts(path: str) -> Tuple[float, ...]:
    """Times (seconds, on the file's timeline from its first frame) where a new shot starts."""
    stat = os.stat(path)
    return _detect_cached(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _detect_cached(path: str, size: int, mtime: int) -> Tuple[float, ...]:
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"cannot read the video for shot changes: {e}", path) from None
    with container:
        streams = [s for s in container.streams.video if not (s.disposition & 0x400)]  # not cover art
        if not streams:
            return ()
        stream = streams[0]
        stream.thread_type = "AUTO"
        origin = (container.start_time or 0) / 1_000_000
        cuts: List[float] = []
        previous: Optional[Tuple[np.ndarray, np.ndarray]] = None
        history: List[float] = []
        since_cut = MIN_SHOT
        for frame in container.decode(stream):
            luma = frame.reformat(width=_SIZE[0], height=_SIZE[1], format="gray").to_ndarray().astype(np.float32)
            hist = np.histogram(luma, bins=16, range=(0, 256))[0] / luma.size
            since_cut += 1
            if previous is not None:
                diff = float(np.mean(np.abs(luma - previous[0])))
                hist_change = float(np.abs(hist - previous[1]).sum()) / 2
                recent = float(np.median(history)) if history else 0.0
                if (diff > MIN_DIFFERENCE and diff > RATIO * recent and hist_change > MIN_HISTOGRAM
                        and since_cut >= MIN_SHOT and frame.time is not None):
                    cuts.append(max(float(frame.time) - origin, 0.0))
                    since_cut = 0
                history = (history + [diff])[-HISTORY:]
            previous = (luma, hist)
    return tuple(cuts)


_TC = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})(?:([.,])(\d+)|[:;](\d{1,3}))?$")


def parse_cut_time(text: str, fps: Optional[Fraction]) -> float:
    """Seconds from ``12.5``, ``00:01:02.500`` or ``00:01:02:12`` (frames at ``fps``)."""
    text = text.strip()
    m = _TC.match(text)
    if not m:
        return float(text)
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
    seconds = h * 3600 + mi * 60 + s
    if m.group(5) is not None:
        return seconds + float("0." + m.group(5))
    if m.group(6) is not None:
        if fps is None:
            raise ValueError(f"{text!r} counts frames: give the frame rate (--fps)")
        return seconds + float(int(m.group(6)) / fps)
    return float(seconds)


def read_cut_list(path: str, fps: Optional[Fraction] = None) -> Tuple[float, ...]:
    """The cut times in an editor's list (sorted, duplicates removed); ``MediaError`` naming the
    file and line for one that does not read."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise MediaError(f"cannot read the shot-change list: {e.strerror or e}", path) from None
    times = set()
    for number, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            times.add(parse_cut_time(line.split()[0].rstrip(","), fps))
        except ValueError as e:
            raise MediaError(f"line {number}: not a cut time: {line!r} ({e})", path) from None
    return tuple(sorted(times))


def cut_times(spec: str, transcript) -> Tuple[float, ...]:
    """``--shot-changes``: ``off`` -> none; ``auto`` -> detected in the transcript's video (none
    for audio or for an input that is not a file); anything else is a cut-list file."""
    if spec == "off":
        return ()
    info = transcript.info
    fps = info.options.fps if info.options is not None and info.options.fps is not None else (
        info.media.frame_rate if info.media is not None else None)
    if spec == "auto":
        if info.media is None or not info.media.has_video or not info.source or not os.path.isfile(info.source):
            return ()
        return detect_cuts(info.source)
    return read_cut_list(spec, fps)
