"""Built-in subtitle formats: SRT and WebVTT, laid out by the subtitle engine.

Written against the public plugin API only, like any third-party format. The cues come from
``whispermedia.layout`` (the preset and rules in ``transcript.info.options`` or the format
options: ``layout``, ``max_line_width``, ...): frame-timed cues for the ``engine`` presets,
one cue per segment for ``raw``, openai-whisper's own writer for ``openai``. Empty cues are
never written (an empty cue would end early, and numbering must stay continuous), nor blank
lines inside a cue (a blank line ends a cue).
"""

from __future__ import annotations

import dataclasses

from typing import Mapping, TextIO

from whispermedia.hookspecs import hookimpl
from whispermedia.layout.cues import Cue
from whispermedia.layout.engine import layout_for
from whispermedia.layout.openai_writer import openai_cues
from whispermedia.layout.settings import LayoutSettings, layout_settings
from whispermedia.output import format_timestamp, to_milliseconds
from whispermedia.registry import FormatRegister, OutputFormat
from whispermedia.timeline import subtitle_offset
from whispermedia.types import Transcript


def _shifted(transcript: Transcript, offset: float) -> Transcript:
    """The transcript with every segment and word time moved by ``offset`` seconds."""
    if not offset:
        return transcript

    def move(x):
        return dataclasses.replace(x, start=x.start + offset, end=x.end + offset)

    segments = tuple(dataclasses.replace(move(s), words=None if s.words is None else tuple(move(w) for w in s.words))
                     for s in transcript.segments)
    return dataclasses.replace(transcript, segments=segments)


def _openai(settings: LayoutSettings, transcript: Transcript, srt: bool, offset: float):
    given = settings.given
    return openai_cues(_shifted(transcript, offset), srt=srt, max_line_width=given.get("max_line_width"),
                       max_line_count=given.get("max_line_count"), highlight_words=settings.highlight_words,
                       max_words_per_line=given.get("max_words_per_line"))


def write_srt(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """SubRip: index from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text lines, blank line."""
    settings = layout_settings(transcript, options)
    offset = subtitle_offset(transcript, options)  # --timecode-offset source: times from the start timecode
    if settings.mode == "openai":
        for number, (start, end, text) in enumerate(_openai(settings, transcript, True, offset), start=1):
            fp.write(f"{number}\n{start} --> {end}\n{text}\n\n")
        return
    for number, cue in enumerate(layout_for(transcript, settings).cues, start=1):
        text = "\n".join(cue.text_lines)
        start, end = format_timestamp(cue.start + offset), format_timestamp(cue.end + offset)
        fp.write(f"{number}\n{start} --> {end}\n{text}\n\n")


def escape_vtt(text: str) -> str:
    """A WebVTT cue payload's text: ``&`` and ``<`` as entities, and ``-->`` (which the spec
    forbids in a payload) with its ``>`` escaped. ``&`` first, so added entities stay single."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("-->", "--&gt;")


def _karaoke_line(cue: Cue, line_index: int, last_ms: list, offset: float = 0.0) -> str:
    """One line with a ``<HH:MM:SS.mmm>`` timestamp before every word but the cue's first: the
    word's start, kept strictly inside the cue and increasing (the spec's rule)."""
    start_ms, end_ms = to_milliseconds(cue.start), to_milliseconds(cue.end)
    parts = []
    for k, word in enumerate(cue.lines[line_index]):
        space = " " if k and word.space else ""
        at = min(max(to_milliseconds(word.start), start_ms + 1), end_ms - 1)
        tag = ""
        if (line_index or k) and at > last_ms[0]:
            tag = f"<{format_timestamp(at / 1000 + offset, '.')}>"
            last_ms[0] = at
        parts.append(space + tag + escape_vtt(word.text))
    return "".join(parts)


def vtt_cue_text(cue: Cue, karaoke: bool, offset: float = 0.0) -> str:
    if not karaoke:
        return "\n".join(escape_vtt(line) for line in cue.text_lines)
    last = [to_milliseconds(cue.start)]
    return "\n".join(_karaoke_line(cue, n, last, offset) for n in range(len(cue.lines)))


def write_vtt(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """WebVTT: ``WEBVTT`` header, ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues, escaped text; with
    ``highlight_words``, one cue per subtitle with an inline timestamp before each word
    (karaoke that players style with ``::cue(:past)`` / ``::cue(:future)``)."""
    settings = layout_settings(transcript, options)
    fp.write("WEBVTT\n\n")
    offset = subtitle_offset(transcript, options)
    if settings.mode == "openai":
        for start, end, text in _openai(settings, transcript, False, offset):
            fp.write(f"{start} --> {end}\n{text}\n\n")
        return
    karaoke = settings.highlight_words and settings.mode == "engine"
    for cue in layout_for(transcript, settings).cues:
        start, end = format_timestamp(cue.start + offset, "."), format_timestamp(cue.end + offset, ".")
        fp.write(f"{start} --> {end}\n{vtt_cue_text(cue, karaoke, offset)}\n\n")


@hookimpl(trylast=True)
def register_output_formats(register: FormatRegister) -> None:
    register.add(OutputFormat("srt", "srt", write_srt, help="SubRip subtitles", uses_layout=True))
    register.add(OutputFormat("vtt", "vtt", write_vtt, help="WebVTT subtitles (for the web and most players)",
                              uses_layout=True))
