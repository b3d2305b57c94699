"""openai-whisper's own subtitle cues, reproduced: the ``openai`` layout.

``whisper --output_format srt`` (openai-whisper 20250625, ``whisper/utils.py``
``SubtitlesWriter.iterate_result``) writes one cue per segment, or, when word timings exist and
both ``max_line_width`` and ``max_line_count`` are given, fills lines greedily up to the width
and starts a new cue after ``max_line_count`` lines or a pause of more than 3 s;
``max_words_per_line`` caps the words taken per line from a segment, and ``highlight_words``
repeats the cue once per word with that word in ``<u>``. Its timestamps round with Python's
``round`` (half to even) and WebVTT leaves the hours out below one hour; its WebVTT text is not
escaped on the word path. All of that is kept, so that ``--preset openai`` gives the same
bytes as the ``whisper`` command (tests/test_layout_formats.py compares them with openai-whisper's
own writer).

ref: openai/whisper ``whisper/utils.py`` ``SubtitlesWriter.iterate_result`` and
``format_timestamp`` (v20250625).
"""

from __future__ import annotations

import re
from typing import Iterator, List, Optional, Tuple

from ..types import Transcript

_LONG_PAUSE = 3.0  # seconds, openai's hard-coded cue break


def openai_timestamp(seconds: float, always_include_hours: bool, decimal_marker: str) -> str:
    ms = round(seconds * 1000.0)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1_000)
    marker = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{marker}{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def _subtitles(transcript: Transcript, width: int, count: Optional[int], words_per_line: int,
               keep_segments: bool) -> Iterator[List[List]]:
    """Lists of [word, start, end] (word with its whitespace, maybe a leading newline)."""
    line_len, line_count = 0, 1
    subtitle: List[List] = []
    first = next((w.start for s in transcript.segments for w in (s.words or ())), None)
    last = first if first is not None else (transcript.segments[0].start if transcript.segments else 0.0)
    for segment in transcript.segments:
        words = segment.words or ()
        chunk = 0
        take = words_per_line
        while chunk < len(words):
            remaining = len(words) - chunk
            if words_per_line > remaining:
                take = remaining
            for i, w in enumerate(words[chunk:chunk + take]):
                timing = [w.word, w.start, w.end]
                long_pause = not keep_segments and timing[1] - last > _LONG_PAUSE
                has_room = line_len + len(timing[0]) <= width
                seg_break = i == 0 and len(subtitle) > 0 and keep_segments
                if line_len > 0 and has_room and not long_pause and not seg_break:
                    line_len += len(timing[0])
                else:
                    timing[0] = timing[0].strip()
                    if (subtitle and count is not None and (long_pause or line_count >= count)) or seg_break:
                        yield subtitle
                        subtitle = []
                        line_count = 1
                    elif line_len > 0:
                        line_count += 1
                        timing[0] = "\n" + timing[0]
                    line_len = len(timing[0].strip())
                subtitle.append(timing)
                last = timing[1]
            chunk += words_per_line
    if subtitle:
        yield subtitle


def openai_cues(transcript: Transcript, *, srt: bool, max_line_width: Optional[int] = None,
                max_line_count: Optional[int] = None, highlight_words: bool = False,
                max_words_per_line: Optional[int] = None) -> Iterator[Tuple[str, str, str]]:
    """(start, end, text) as openai-whisper's SRT (``srt=True``) or WebVTT writer yields them."""
    def stamp(t: float) -> str:
        return openai_timestamp(t, srt, "," if srt else ".")

    keep_segments = max_line_count is None or max_line_width is None
    width = max_line_width or 1000
    per_line = max_words_per_line or 1000
    segments = transcript.segments
    if segments and segments[0].words is not None:
        for subtitle in _subtitles(transcript, width, max_line_count, per_line, keep_segments):
            start, end = stamp(subtitle[0][1]), stamp(subtitle[-1][2])
            text = "".join(t[0] for t in subtitle)
            if not highlight_words:
                yield start, end, text
                continue
            last = start
            all_words = [t[0] for t in subtitle]
            for i, t in enumerate(subtitle):
                w_start, w_end = stamp(t[1]), stamp(t[2])
                if last != w_start:
                    yield last, w_start, text
                yield w_start, w_end, "".join(
                    re.sub(r"^(\s*)(.*)$", r"\1<u>\2</u>", word) if j == i else word
                    for j, word in enumerate(all_words))
                last = w_end
    else:
        for segment in segments:
            yield stamp(segment.start), stamp(segment.end), segment.text.strip().replace("-->", "->")
