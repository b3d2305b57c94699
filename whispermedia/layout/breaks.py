"""Cue and line breaks chosen by one global optimisation over the word sequence.

In the spirit of Knuth-Plass line breaking: ``best[j]`` is the least total cost of laying out
words ``0..j-1`` as whole cues, and ``best[j] = min_i best[i] + cue_cost(i, j)``, where a cue
``[i, j)`` is only considered when it meets the hard rules (characters per line, lines per
cue, words per line, speech span within the maximum duration). Inside a cue the line split is
chosen the same way. The soft costs (weights below) are what a subtitler weighs:

- a cue end or line break inside a protected pair (``words.function_words``: article+noun,
  preposition+object, pronoun+verb, auxiliary+verb, verb+negation; first+last name by case),
  cheaper after punctuation and before a conjunction, cheapest at a sentence end;
- reading speed above the preset's characters (or words) per second, with the time the cue
  can really stay on screen (up to the reading extension, never into the next cue);
- a cue that cannot stay up for the minimum duration before the next one must start;
- a silence inside a cue (text hanging over a pause);
- the two-line shape: one line when the text fits, else balanced or bottom-heavy;
- a sentence ending inside a cue (one sentence per cue where that costs nothing else).

Words are never changed, dropped or duplicated: a cue is a run of the transcript's words.
The cost is O(n * w^2) for n words and w words per cue at most.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from .cues import CueWord
from .rules import LayoutRules
from .words import FunctionWords

# soft-cost weights (dimensionless; one unit is about one mediocre break)
CUE = 1.0  # every cue: fewer, fuller cues unless something is gained
CUE_BREAK = {"sentence": 0.0, "clause": 2.0, "segment": 3.0, "phrase": 4.5, "plain": 6.0}
LINE_BREAK = {"sentence": 0.0, "clause": 0.3, "segment": 1.5, "phrase": 1.0, "plain": 2.0}
PROTECTED = 8.0  # a break inside a protected pair
SHAPE_TOP_HEAVY = 4.0  # per line width of the top line beyond the bottom one
SHAPE_BOTTOM_HEAVY = 1.0
READING = 40.0  # per unit of relative excess over the reading speed
TOO_SHORT = 200.0  # a cue the next one cuts below the minimum duration (near-hard)
PAUSE = 12.0  # per second of silence inside a cue beyond pause_split
SENTENCE_INSIDE = 1.5  # a sentence ending inside a cue (one sentence per cue where possible)


def _kind(before: CueWord, after: CueWord, table: FunctionWords) -> str:
    if before.ends_sentence:
        return "sentence"
    if before.ends_clause:
        return "clause"
    if before.segment_end:
        return "segment"
    if after.bare in table.starts_phrase:
        return "phrase"
    return "plain"


def _protected(words: Sequence[CueWord], k: int, table: FunctionWords) -> bool:
    """Whether a break between ``words[k-1]`` and ``words[k]`` separates a pair that belongs together."""
    before, after = words[k - 1], words[k]
    if before.ends_sentence or before.ends_clause:
        return False
    if before.bare in table.binds_next or after.bare in table.binds_previous:
        return True
    # first + last name: two capitalised words, the first not starting a sentence
    sentence_start = k - 1 == 0 or words[k - 2].ends_sentence
    return (not sentence_start and before.text[:1].isupper() and after.text[:1].isupper()
            and before.bare != "i")


class BreakOptimiser:
    """Lays out one word sequence under ``rules`` (one instance per transcript).

    ``in_times[i]``: the in-time a cue starting at word ``i`` would get (seconds, after the
    speech-region correction), ``gap``: the minimum gap in seconds; ``end_time``: where the
    media ends (the last cue's reading time is capped there).
    """

    def __init__(self, words: Sequence[CueWord], rules: LayoutRules, table: FunctionWords,
                 in_times: Sequence[float], gap: float, end_time: Optional[float] = None):
        self.words = list(words)
        self.rules = rules
        self.table = table
        self.in_times = list(in_times)
        self.gap = gap
        self.end_time = end_time
        n = len(self.words)
        # cum[i]: characters of words 0..i-1 with their spaces; a line [a, b) is cum[b]-cum[a]
        # minus word a's space (a line starts without one)
        self.cum = [0] * (n + 1)
        for i, w in enumerate(self.words):
            self.cum[i + 1] = self.cum[i] + len(w.text) + (1 if w.space else 0)
        self.break_cost = [0.0] * (n + 1)  # cost of a cue end before word k
        self.line_cost = [0.0] * (n + 1)  # cost of a line break before word k
        for k in range(1, n):
            kind = _kind(self.words[k - 1], self.words[k], table)
            protected = PROTECTED if _protected(self.words, k, table) else 0.0
            self.break_cost[k] = CUE_BREAK[kind] + protected
            self.line_cost[k] = LINE_BREAK[kind] + protected

    def width(self, a: int, b: int) -> int:
        return self.cum[b] - self.cum[a] - (1 if self.words[a].space else 0)

    # -- lines inside one cue ------------------------------------------------------------------
    def _fits(self, a: int, b: int) -> bool:
        limit = self.rules.max_words_per_line
        return (self.width(a, b) <= self.rules.max_line_width or b - a == 1) and (limit is None or b - a <= limit)

    def split_lines(self, i: int, j: int) -> Optional[Tuple[float, Tuple[int, ...]]]:
        """(cost, line starts) of the best split of words ``[i, j)`` into lines, or None when
        no split meets the line rules. One line whenever the words fit on one."""
        if self._fits(i, j):
            return 0.0, (i,)
        m = self.rules.max_line_count
        if m < 2:
            return None
        if m == 2:
            best: Optional[Tuple[float, Tuple[int, ...]]] = None
            for k in range(i + 1, j):
                if not (self._fits(i, k) and self._fits(k, j)):
                    continue
                cost = self.line_cost[k] + self._shape(self.width(i, k), self.width(k, j))
                if best is None or cost < best[0]:
                    best = (cost, (i, k))
            return best
        return self._split_many(i, j, m)

    def _shape(self, top: int, bottom: int) -> float:
        w = self.rules.max_line_width
        if top > bottom:
            return SHAPE_TOP_HEAVY * (top - bottom) / w
        return SHAPE_BOTTOM_HEAVY * (bottom - top) / w

    def _split_many(self, i: int, j: int, m: int) -> Optional[Tuple[float, Tuple[int, ...]]]:
        # lines[l][b]: best (cost, starts) for words i..b-1 in l lines
        inf = None
        table: List[dict] = [dict() for _ in range(m + 1)]
        table[0][i] = (0.0, ())
        for lines in range(1, m + 1):
            for b in range(i + 1, j + 1):
                best = inf
                for a, (cost, starts) in table[lines - 1].items():
                    if a < b and self._fits(a, b):
                        c = cost + (self.line_cost[a] if a > i else 0.0)
                        if best is None or c < best[0]:
                            best = (c, starts + (a,))
                if best is not None:
                    table[lines][b] = best
        options = [table[lines][j] for lines in range(2, m + 1) if j in table[lines]]
        return min(options, key=lambda o: o[0]) if options else None

    # -- one cue --------------------------------------------------------------------------------
    def cue_cost(self, i: int, j: int) -> Optional[Tuple[float, Tuple[int, ...]]]:
        lines = self.split_lines(i, j)
        if lines is None:
            return None
        r = self.rules
        w = self.words
        cost = CUE + lines[0] + (self.break_cost[j] if j < len(w) else 0.0)
        start = self.in_times[i]
        speech_end = w[j - 1].end
        limit = self.in_times[j] - self.gap if j < len(w) else (self.end_time if self.end_time else float("inf"))
        shown = min(max(speech_end + r.reading_extension, start + r.min_duration), limit, start + r.max_duration)
        shown = max(shown - start, 1e-3)
        if shown + 1e-6 < r.min_duration:
            cost += TOO_SHORT * (1.0 + (r.min_duration - shown))
        chars = self.width(i, j) - (len(lines[1]) - 1)  # a line break is not a character
        if r.max_cps is not None and chars / shown > r.max_cps:
            cost += READING * (chars / shown / r.max_cps - 1.0)
        if r.max_wpm is not None and (j - i) * 60.0 / shown > r.max_wpm:
            cost += READING * ((j - i) * 60.0 / shown / r.max_wpm - 1.0)
        for k in range(i + 1, j):
            pause = w[k].start - w[k - 1].end
            if pause > r.pause_split:
                cost += PAUSE * (pause - r.pause_split + 0.5)
            if w[k - 1].ends_sentence:
                cost += SENTENCE_INSIDE
        return cost, lines[1]

    def run(self) -> List[Tuple[int, ...]]:
        """The line starts of every cue, in order; the last cue ends at the last word."""
        n = len(self.words)
        best: List[Optional[float]] = [None] * (n + 1)
        back: List[Tuple[int, Tuple[int, ...]]] = [(0, ())] * (n + 1)
        best[0] = 0.0
        span_limit = self.rules.max_duration
        for j in range(1, n + 1):
            for i in range(j - 1, -1, -1):
                if best[i] is None:
                    continue
                if j - i > 1:
                    if self.width(i, j) > self.rules.max_line_count * (self.rules.max_line_width + 1):
                        break  # longer runs only get wider
                    if self.words[j - 1].end - self.in_times[i] > span_limit:
                        break
                found = self.cue_cost(i, j)
                if found is None:
                    continue
                total = best[i] + found[0]
                if best[j] is None or total < best[j]:
                    best[j] = total
                    back[j] = (i, found[1])
            if best[j] is None:  # no cue can end here under the rules: one word alone does
                i = j - 1
                found = self.cue_cost(i, j) or (TOO_SHORT, (i,))
                best[j] = (best[i] or 0.0) + found[0]
                back[j] = (i, found[1])
        cues: List[Tuple[int, ...]] = []
        j = n
        while j > 0:
            i, starts = back[j]
            cues.append(starts)
            j = i
        cues.reverse()
        return cues
