"""An example whispermedia plugin: the ``words-csv`` output format.

One row per word: ``start,end,word,probability``, times in seconds with millisecond
precision. Handy for karaoke timing, editing by word, or checking alignment in a
spreadsheet. It needs a transcript with word timestamps; for ``talk.mp4`` it writes
``talk.words.csv``.
"""

from __future__ import annotations

import csv
from typing import Mapping, TextIO

from whispermedia.hookspecs import hookimpl  # the same object as whispermedia.hookimpl
from whispermedia.output import to_milliseconds
from whispermedia.registry import FormatRegister, OutputFormat
from whispermedia.types import Transcript


def _seconds(t: float) -> str:
    ms = to_milliseconds(t)  # round once, on integers: no 6.999999 -> "6.999" surprises
    return f"{ms // 1000}.{ms % 1000:03d}"


def write_words_csv(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    rows = csv.writer(fp, lineterminator="\n")
    rows.writerow(["start", "end", "word", "probability"])
    for segment in transcript.segments:
        for word in segment.words or ():
            rows.writerow([_seconds(word.start), _seconds(word.end), word.word.strip(), f"{word.probability:.3f}"])


@hookimpl
def register_output_formats(register: FormatRegister) -> None:
    register.add(OutputFormat("words-csv", "words.csv", write_words_csv,
                              help="one row per word: start, end, word, probability", needs_words=True))
