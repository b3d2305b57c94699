"""Built-in subtitle formats: SRT and WebVTT.

Written against the public plugin API only, like any third-party format. Both formats
skip segments whose text is empty (an empty cue would end early, and numbering must stay
continuous), and drop blank lines inside a cue (a blank line ends a cue).
Format options such as ``max_line_width`` are not implemented yet and are ignored.
"""

from __future__ import annotations

from typing import Iterator, Mapping, TextIO, Tuple

from whispermedia.hookspecs import hookimpl
from whispermedia.output import format_timestamp
from whispermedia.registry import FormatRegister, OutputFormat
from whispermedia.timeline import subtitle_offset
from whispermedia.types import Transcript


def _cues(transcript: Transcript, decimal_marker: str, offset: float = 0.0) -> Iterator[Tuple[str, str, str]]:
    """(start, end, text) for every segment with text, times already formatted and moved by
    ``offset`` seconds (the source's start timecode with ``timecode_offset="source"``)."""
    for segment in transcript.segments:
        lines = [line.strip() for line in segment.text.splitlines()]
        text = "\n".join(line for line in lines if line)
        if not text:
            continue
        end = max(segment.end, segment.start)  # a cue may not end before it starts
        yield (format_timestamp(segment.start + offset, decimal_marker),
               format_timestamp(end + offset, decimal_marker), text)


def write_srt(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """SubRip: index from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text, blank line."""
    cues = _cues(transcript, ",", subtitle_offset(transcript, options))
    for number, (start, end, text) in enumerate(cues, start=1):
        fp.write(f"{number}\n{start} --> {end}\n{text}\n\n")


def _escape_vtt(text: str) -> str:
    # "&" first, so the entities added next are not escaped again. A payload holding "-->"
    # could be taken for a timing line; escaping its ">" is enough (the spec forbids only "-->").
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("-->", "--&gt;")


def write_vtt(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """WebVTT: ``WEBVTT`` header, ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues, escaped text."""
    fp.write("WEBVTT\n\n")
    for start, end, text in _cues(transcript, ".", subtitle_offset(transcript, options)):
        fp.write(f"{start} --> {end}\n{_escape_vtt(text)}\n\n")


@hookimpl(trylast=True)
def register_output_formats(register: FormatRegister) -> None:
    register.add(OutputFormat("srt", "srt", write_srt, help="SubRip subtitles"))
    register.add(OutputFormat("vtt", "vtt", write_vtt, help="WebVTT subtitles (for the web and most players)"))
