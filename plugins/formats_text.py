"""Built-in text formats: plain text, TSV and JSON.

Written against the public plugin API only, like any third-party format.
"""

from __future__ import annotations

import json
from typing import Mapping, TextIO

from whispermedia.hookspecs import hookimpl
from whispermedia.output import finite_json, to_milliseconds
from whispermedia.registry import FormatRegister, OutputFormat
from whispermedia.types import Transcript


def _one_line(text: str) -> str:
    """The text on a single line: tabs and line breaks become spaces, ends stripped."""
    return " ".join(part.strip() for part in text.replace("\t", " ").splitlines() if part.strip())


def write_txt(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """One line per segment with text."""
    for segment in transcript.segments:
        line = _one_line(segment.text)
        if line:
            fp.write(line + "\n")


def write_tsv(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """``start<TAB>end<TAB>text`` with integer milliseconds, as openai-whisper writes it
    (integers, because spreadsheets and NLE importers mangle locale-formatted decimals)."""
    fp.write("start\tend\ttext\n")
    for segment in transcript.segments:
        line = _one_line(segment.text)
        if line:
            fp.write(f"{to_milliseconds(segment.start)}\t{to_milliseconds(segment.end)}\t{line}\n")


def write_json(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """``Transcript.to_dict()``: openai-whisper's result shape plus ``info``; a NaN or infinite
    number (a probability that could not be computed) is written as ``null``, never as the
    ``NaN`` token strict JSON parsers reject (``whispermedia.output.finite_json``)."""
    # default=str: info.options may hold values JSON has no type for (paths, enums)
    json.dump(finite_json(transcript.to_dict()), fp, ensure_ascii=False, indent=2, default=str, allow_nan=False)
    fp.write("\n")


@hookimpl(trylast=True)
def register_output_formats(register: FormatRegister) -> None:
    register.add(OutputFormat("txt", "txt", write_txt, help="plain text, one line per segment"))
    register.add(OutputFormat("tsv", "tsv", write_tsv, help="start, end (integer ms) and text, tab-separated"))
    register.add(OutputFormat("json", "json", write_json, help="every segment, word and setting, as JSON"))
