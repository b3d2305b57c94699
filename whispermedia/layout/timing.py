"""Cue timing as a subtitler times it, in whole frames.

- In-time on the first frame of speech. Word timing (DTW over cross-attention) tends to put a
  sentence's first word in the silence before it, so where voice activity detection ran
  (``TranscriptInfo.speech``) a first word that starts in silence starts where the speech
  region it runs into starts; without speech regions, a first word after a pause that lasts
  longer than its letters can take is shortened from the front (``estimated_in_time``).
- Out-time: the speech's end, extended for reading time (the preset's characters or words per
  second) by up to ``reading_extension``, and at least to the minimum duration; never into the
  next cue (at least ``min_gap_frames`` before it) and never past ``max_duration``.
- Chaining: a gap shorter than ``chain_gap`` closes to exactly ``min_gap_frames``.
- Shot changes (frame numbers of cuts): an in-time within ``shot_snap`` of a cut moves onto
  it (when the speech starts just before the cut and far enough from it, the Netflix guide's
  "green zone", it moves to ``shot_snap`` before the cut instead); an out-time within
  ``shot_snap`` of a cut ends ``min_gap_frames`` before it, or, when the speech itself runs on
  past the cut, ``shot_snap`` after it.
"""

from __future__ import annotations

import bisect
from typing import List, Optional, Sequence, Tuple

from ..types import SpeechRegion
from .cues import CueWord
from .frames import FrameGrid
from .rules import LayoutRules

# seconds a spoken letter takes at least, and a word's floor: a first word longer than this
# after a pause started in the silence
_LETTER = 0.085
_WORD_FLOOR = 0.3
_PAUSE_BEFORE = 0.3


def speech_in_time(word: CueWord, speech: Sequence[SpeechRegion]) -> float:
    """Where ``word``'s speech starts: its own start when that is inside a speech region, the
    start of the first region it runs into when it starts in silence, its own start when it
    overlaps no region (voice activity detection missed it)."""
    starts = [r.start for r in speech]
    k = bisect.bisect_right(starts, word.start) - 1
    if k >= 0 and speech[k].end > word.start:
        return word.start
    nxt = k + 1
    if nxt < len(speech) and speech[nxt].start < word.end:
        return speech[nxt].start
    return word.start


def speech_out_time(word: CueWord, speech: Sequence[SpeechRegion]) -> float:
    """Where ``word``'s speech ends: its own end, or the end of the region it started in when
    the word runs on into silence."""
    starts = [r.start for r in speech]
    k = bisect.bisect_right(starts, word.end) - 1
    if k >= 0 and speech[k].end >= word.end:
        return word.end
    if k >= 0 and speech[k].end > word.start:
        return speech[k].end
    return word.end


def estimated_in_time(words: Sequence[CueWord], i: int) -> float:
    """The in-time of word ``i`` from word times alone: after a pause (or at the start), a
    first word that lasts longer than its letters can take is cut from the front."""
    w = words[i]
    after_pause = i == 0 or w.start - words[i - 1].end >= _PAUSE_BEFORE or words[i - 1].ends_sentence
    if not after_pause:
        return w.start
    letters = sum(ch.isalnum() for ch in w.text)
    longest = max(_WORD_FLOOR, _LETTER * letters + 0.15)
    return max(w.start, w.end - longest)


def in_times(words: Sequence[CueWord], speech: Optional[Sequence[SpeechRegion]]) -> List[float]:
    """The in-time a cue starting at each word would get, in seconds."""
    if speech:
        return [speech_in_time(w, speech) for w in words]
    return [estimated_in_time(words, i) for i in range(len(words))]


def _near(cuts: Sequence[int], frame: int, window: int) -> Optional[int]:
    """The cut closest to ``frame`` less than ``window`` frames away, or None."""
    if window <= 0 or not cuts:
        return None
    k = bisect.bisect_left(cuts, frame)
    best = None
    for c in cuts[max(k - 1, 0):k + 1]:
        if abs(c - frame) < window and (best is None or abs(c - frame) < abs(best - frame)):
            best = c
    return best


def time_cues(groups: Sequence[Tuple[int, int]], words: Sequence[CueWord], starts: Sequence[float],
              rules: LayoutRules, grid: FrameGrid, speech: Optional[Sequence[SpeechRegion]],
              cuts: Sequence[int] = (), end_time: Optional[float] = None) -> List[Tuple[int, int]]:
    """(in_frame, out_frame) for every cue ``[i, j)`` of ``groups`` (word ranges, in order);
    ``starts``: ``in_times(words, speech)``; ``cuts``: shot changes as sorted frame numbers."""
    gap = rules.min_gap_frames
    min_f = grid.ceil(rules.min_duration)
    max_f = max(grid.floor(rules.max_duration), 1)
    ext_f = grid.frames(rules.reading_extension)
    chain_f = grid.frames(rules.chain_gap)
    snap_f = grid.frames(rules.shot_snap)
    green = snap_f * 2 // 3  # speech starting this far or more before a cut: in-time a full window before
    last_f = grid.floor(end_time) if end_time else None

    ins: List[int] = []
    for n, (i, _) in enumerate(groups):
        f = grid.floor(starts[i])
        cut = _near(cuts, f, snap_f)
        if cut is not None:
            target = cut if cut - f < green else cut - snap_f
            floor = ins[-1] + min_f + gap if ins else 0
            if target >= floor:
                f = target
        if ins and f < ins[-1] + 1 + gap:
            f = ins[-1] + 1 + gap  # two cues' speech can start within a frame: keep them apart
        ins.append(f)

    times: List[Tuple[int, int]] = []
    for n, (i, j) in enumerate(groups):
        f_in = ins[n]
        text_chars = sum(len(w.text) for w in words[i:j]) + sum(1 for w in words[i + 1:j] if w.space)
        end_speech = words[j - 1].end if not speech else speech_out_time(words[j - 1], speech)
        speech_f = max(grid.ceil(end_speech), f_in + 1)
        need = 0.0
        if rules.max_cps:
            need = max(need, text_chars / rules.max_cps)
        if rules.max_wpm:
            need = max(need, (j - i) * 60.0 / rules.max_wpm)
        out = max(speech_f, min(f_in + grid.ceil(need), speech_f + ext_f), f_in + min_f)
        out = min(out, f_in + max_f)
        limit = ins[n + 1] - gap if n + 1 < len(groups) else (last_f if last_f is not None else None)
        if limit is not None:
            if n + 1 < len(groups) and limit - out < chain_f:
                out = limit  # chained: exactly the minimum gap
            out = min(out, limit)
        cut = _near(cuts, out, snap_f)
        if cut is not None:
            target = cut - gap if speech_f <= cut else cut + snap_f
            if f_in + min_f <= target <= f_in + max_f and (limit is None or target <= limit):
                out = target
        out = max(out, f_in + 1)
        times.append((f_in, out))
        if n + 1 < len(groups) and ins[n + 1] < out + gap:
            ins[n + 1] = out + gap  # hard rule: the next cue never starts inside the gap
    return times
