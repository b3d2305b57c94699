"""Built-in broadcast and styled subtitle formats: TTML (IMSC 1.1 Text profile) and ASS.

Laid out by the subtitle engine like SRT and WebVTT (``whispermedia.layout``; the ``openai``
layout, which openai-whisper has no writer of these formats for, writes the ``raw`` cues).

- **TTML / IMSC 1.1 Text** (``.ttml``): ``ttp:timeBase="media"``, times as frame counts
  (``123f``) on the source's exact frame rate (``ttp:frameRate`` with
  ``ttp:frameRateMultiplier="1000 1001"`` for 23.976/29.97/59.94), so a frame-timed cue stays
  on its frame in any reader; clock times with milliseconds for the raw layout. One region at
  the bottom, lines as ``<br/>``; text XML-escaped. This is the delivery format Netflix asks
  for (TTML1; IMSC 1.1 for Japanese).
- **ASS** (Advanced SubStation Alpha, ``.ass``): one ``Dialogue`` per cue, lines joined by
  ``\\N``, times in centiseconds; with ``highlight_words``, ``{\\kNN}`` karaoke tags give
  every word its share of the cue (centiseconds from one word's start to the next, adding up
  exactly to the cue). Braces and backslashes in the text are escaped so they cannot start an
  override block or a ``\\N``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import List, Mapping, TextIO, Tuple
from xml.sax.saxutils import escape, quoteattr

from whispermedia.hookspecs import hookimpl
from whispermedia.layout.cues import Cue, Layout
from whispermedia.layout.engine import layout_for
from whispermedia.layout.settings import layout_settings
from whispermedia.output import format_timestamp
from whispermedia.registry import FormatRegister, OutputFormat
from whispermedia.types import Transcript

# -- TTML ------------------------------------------------------------------------------------

_IMSC11_TEXT = "http://www.w3.org/ns/ttml/profile/imsc1.1/text"


def _frame_rate_attributes(fps: Fraction) -> str:
    """``ttp:frameRate`` (an integer, as TTML requires) and the multiplier that makes it exact."""
    base = round(fps)
    multiplier = fps / base
    attrs = f' ttp:frameRate="{base}"'
    if multiplier != 1:
        attrs += f' ttp:frameRateMultiplier="{multiplier.numerator} {multiplier.denominator}"'
    return attrs


def _ttml_times(cue: Cue, layout: Layout) -> Tuple[str, str]:
    if layout.fps is not None and cue.in_frame is not None:
        return f"{cue.in_frame}f", f"{cue.out_frame}f"
    return format_timestamp(cue.start, "."), format_timestamp(cue.end, ".")


def _layout(transcript: Transcript, options: Mapping[str, object]) -> Tuple[Layout, bool]:
    settings = layout_settings(transcript, options)
    return layout_for(transcript, settings), settings.highlight_words and settings.mode == "engine"


def write_ttml(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """TTML in the IMSC 1.1 Text profile (see the module docstring)."""
    layout, _ = _layout(transcript, options)
    lang = transcript.info.language or ""
    rate = _frame_rate_attributes(layout.fps) if layout.fps is not None else ""
    fp.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    fp.write(f'<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" '
             f'xmlns:tts="http://www.w3.org/ns/ttml#styling" xml:lang={quoteattr(lang)} '
             f'ttp:timeBase="media"{rate} ttp:contentProfiles="{_IMSC11_TEXT}">\n')
    fp.write('  <head>\n    <styling>\n'
             '      <style xml:id="s0" tts:fontFamily="proportionalSansSerif" tts:fontSize="100%" '
             'tts:textAlign="center" tts:color="white" tts:textOutline="black 5%"/>\n'
             '    </styling>\n    <layout>\n'
             '      <region xml:id="bottom" tts:origin="10% 10%" tts:extent="80% 80%" tts:displayAlign="after"/>\n'
             '    </layout>\n  </head>\n')
    fp.write('  <body region="bottom" style="s0">\n    <div>\n')
    for cue in layout.cues:
        begin, end = _ttml_times(cue, layout)
        text = "<br/>".join(escape(line) for line in cue.text_lines)
        fp.write(f'      <p begin="{begin}" end="{end}">{text}</p>\n')
    fp.write("    </div>\n  </body>\n</tt>\n")


# -- ASS -------------------------------------------------------------------------------------

_ASS_HEADER = """[Script Info]
; written by whispermedia
ScriptType: v4.00+
PlayResX: 1920
PlayResY: 1080
WrapStyle: 2
ScaledBorderAndShadow: yes

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,64,&H00FFFFFF,&H0000FFFF,&H00000000,&H80000000,0,0,0,0,100,100,0,0,1,3,0,2,192,192,64,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def _centiseconds(seconds: float) -> int:
    return int(seconds * 100 + 0.5)


def _ass_time(cs: int) -> str:
    h, cs = divmod(cs, 360_000)
    m, cs = divmod(cs, 6_000)
    s, cs = divmod(cs, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def escape_ass(text: str) -> str:
    """Text that ASS renderers show as it is: ``\\`` followed by a word joiner (so ``\\N``,
    ``\\n``, ``\\h`` in speech stay literal), ``{`` and ``}`` as ``\\{`` and ``\\}``."""
    return text.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")


def _karaoke(cue: Cue, start_cs: int, end_cs: int) -> List[str]:
    words = cue.words
    # word k is highlighted from its start to the next word's start (the first from the cue's start)
    marks = [start_cs] + [min(max(_centiseconds(w.start), start_cs), end_cs) for w in words[1:]] + [end_cs]
    for k in range(1, len(marks)):
        marks[k] = max(marks[k], marks[k - 1])
    lines, n = [], 0
    for line in cue.lines:
        parts = []
        for k, w in enumerate(line):
            parts.append(f"{{\\k{marks[n + 1] - marks[n]}}}" + (" " if k and w.space else "") + escape_ass(w.text))
            n += 1
        lines.append("".join(parts))
    return lines


def write_ass(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """Advanced SubStation Alpha, one Dialogue line per cue (see the module docstring)."""
    layout, karaoke = _layout(transcript, options)
    fp.write(_ASS_HEADER)
    for cue in layout.cues:
        start, end = _centiseconds(cue.start), _centiseconds(cue.end)
        lines = _karaoke(cue, start, end) if karaoke else [escape_ass(line) for line in cue.text_lines]
        text = "\\N".join(lines)
        fp.write(f"Dialogue: 0,{_ass_time(start)},{_ass_time(end)},Default,,0,0,0,,{text}\n")


@hookimpl(trylast=True)
def register_output_formats(register: FormatRegister) -> None:
    register.add(OutputFormat("ttml", "ttml", write_ttml, help="TTML subtitles, IMSC 1.1 Text profile (broadcast "
                              "and streaming delivery)", uses_layout=True))
    register.add(OutputFormat("ass", "ass", write_ass, help="Advanced SubStation Alpha subtitles (karaoke with "
                              "--highlight-words)", uses_layout=True))
