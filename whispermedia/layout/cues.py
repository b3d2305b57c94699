"""The records the layout engine hands to writers: cues made of lines made of words.

Times are seconds on the source's timeline; a cue laid out on a frame grid also carries its
frame numbers (``in_frame``, ``out_frame``: the cue shows from frame ``in_frame`` up to, not
including, ``out_frame``), so frame-based formats (TTML) write exact frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Optional, Tuple

from ..types import Transcript, Word

_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
_CLAUSE_END = (",", ";", ":", "—", "–", "，", "、")
_CLOSERS = "\"'”’»)]"


@dataclass(frozen=True)
class CueWord:
    """One transcript word: its text without the leading space, whether the transcript had a
    space before it (so a cue joins its words exactly as the transcript does), its timing."""

    text: str
    space: bool
    start: float
    end: float
    segment_end: bool = False  # the last word of a segment

    @property
    def bare(self) -> str:
        """Lower case, trailing punctuation off (the function-word lookups' key)."""
        return self.text.rstrip(".,;:!?…\"'”’»)]").lower()

    def _tail(self) -> str:
        return self.text.rstrip(_CLOSERS)

    @property
    def ends_sentence(self) -> bool:
        return self._tail().endswith(_SENTENCE_END)

    @property
    def ends_clause(self) -> bool:
        return self._tail().endswith(_CLAUSE_END)


def join(words: Tuple[CueWord, ...]) -> str:
    """The words as one line: the transcript's own spacing, no space at the start."""
    return "".join((" " if w.space and i else "") + w.text for i, w in enumerate(words))


@dataclass(frozen=True)
class Cue:
    """One subtitle: ``lines`` of words shown from ``start`` to ``end`` seconds."""

    start: float
    end: float
    lines: Tuple[Tuple[CueWord, ...], ...]
    in_frame: Optional[int] = None
    out_frame: Optional[int] = None

    @property
    def text_lines(self) -> Tuple[str, ...]:
        return tuple(join(line) for line in self.lines)

    @property
    def words(self) -> Tuple[CueWord, ...]:
        return tuple(w for line in self.lines for w in line)


@dataclass(frozen=True)
class Layout:
    """A transcript laid out: its cues in time order, and the frame rate they are on (None for
    the ``raw`` and ``openai`` layouts, which keep the model's times)."""

    cues: Tuple[Cue, ...]
    fps: Optional[Fraction]
    rules_name: str


def transcript_words(transcript: Transcript) -> Iterator[CueWord]:
    """Every word of ``transcript`` in order, as ``CueWord``; a segment without word timings
    is split at spaces with its time shared out by characters (an estimate, used only when the
    transcript was made without word timestamps)."""
    for segment in transcript.segments:
        words = segment.words if segment.words is not None else _estimated_words(segment)
        kept = [w for w in words if w.word.strip()]
        for k, w in enumerate(kept):
            text = w.word.strip()
            yield CueWord(text=text, space=w.word[:1].isspace() or not w.word[:1], start=float(w.start),
                          end=max(float(w.end), float(w.start)), segment_end=k == len(kept) - 1)


def _estimated_words(segment) -> Tuple[Word, ...]:
    pieces = [" " + p for p in segment.text.split()]
    total = sum(len(p) for p in pieces) or 1
    span = max(segment.end - segment.start, 0.0)
    words, at = [], segment.start
    for p in pieces:
        length = span * len(p) / total
        words.append(Word(p, at, at + length, 1.0))
        at += length
    return tuple(words)
