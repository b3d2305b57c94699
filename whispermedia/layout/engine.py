"""The layout engine: a transcript in, frame-timed cues out.

``lay_out(transcript, rules, fps=..., cuts=...)`` runs the break optimiser
(``breaks.BreakOptimiser``) over the transcript's words, then the subtitler's timing
(``timing.time_cues``) on the frame grid of the source (``TranscriptInfo.media.frame_rate``,
or ``fps``, or 25 for audio). ``raw_layout`` is the ``raw`` preset: one cue per segment on the
segment's own times. Both return a ``cues.Layout`` that writers render and QC checks.
"""

from __future__ import annotations

from fractions import Fraction
from typing import List, Optional, Sequence

from ..types import Transcript
from .breaks import BreakOptimiser
from .cues import Cue, CueWord, Layout, transcript_words
from .frames import FrameGrid
from .rules import LayoutRules
from .timing import in_times, time_cues
from .words import function_words


def source_fps(transcript: Transcript, fps: Optional[Fraction] = None) -> Optional[Fraction]:
    """``fps`` when given, else the video's frame rate, else None (audio only)."""
    if fps is not None:
        return fps
    media = transcript.info.media
    return media.frame_rate if media is not None else None


def lay_out(transcript: Transcript, rules: LayoutRules, *, fps: Optional[Fraction] = None,
            cuts: Sequence[float] = ()) -> Layout:
    """The cues of ``transcript`` under ``rules`` (mode ``engine``); ``cuts``: shot changes in
    seconds. Every word of the transcript is in exactly one cue, in order."""
    grid = FrameGrid.of(source_fps(transcript, fps))
    words: List[CueWord] = list(transcript_words(transcript))
    if not words:
        return Layout((), grid.fps, rules.name)
    speech = transcript.info.speech
    starts = in_times(words, speech)
    end_time = transcript.info.duration or None
    if end_time is not None and end_time < words[-1].end:
        end_time = None  # a duration shorter than the words (clipped input): do not cap
    lang = transcript.info.language
    optimiser = BreakOptimiser(words, rules, function_words(lang), starts,
                               gap=float(rules.min_gap_frames / grid.fps), end_time=end_time)
    line_starts = optimiser.run()
    bounds = [starts_[0] for starts_ in line_starts] + [len(words)]
    groups = [(bounds[k], bounds[k + 1]) for k in range(len(line_starts))]
    cut_frames = sorted({grid.nearest(c) for c in cuts})
    frames = time_cues(groups, words, starts, rules, grid, speech, cut_frames, end_time)
    cues = []
    for (i, j), line_start, (f_in, f_out) in zip(groups, line_starts, frames):
        edges = list(line_start) + [j]
        lines = tuple(tuple(words[a:b]) for a, b in zip(edges, edges[1:]))
        cues.append(Cue(grid.seconds(f_in), grid.seconds(f_out), lines, f_in, f_out))
    return Layout(tuple(cues), grid.fps, rules.name)


def raw_layout(transcript: Transcript) -> Layout:
    """One cue per segment with text, on the segment's times (an end before the start is
    raised to the start); blank lines inside a segment's text are dropped."""
    cues = []
    for segment in transcript.segments:
        lines = [line.strip() for line in segment.text.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        end = max(segment.end, segment.start)
        cues.append(Cue(segment.start, end, tuple((CueWord(line, False, segment.start, end),) for line in lines)))
    return Layout(tuple(cues), None, "raw")


def layout_for(transcript: Transcript, settings) -> Layout:
    """The layout ``settings`` (a ``settings.LayoutSettings``) ask for: ``raw`` (and ``openai``,
    for formats openai-whisper does not write) or the engine, with the shot changes resolved
    (``whispermedia.shots.cut_times``)."""
    if settings.rules.mode != "engine":
        return raw_layout(transcript)
    from ..shots import cut_times  # reads a cut list or decodes the video only when asked

    cuts = cut_times(settings.shot_changes, transcript)
    return lay_out(transcript, settings.rules, fps=settings.fps, cuts=cuts)
