"""``regions`` batch mode: one long file cut at the speech pauses into parts that are decoded
side by side, each by openai-whisper's loop with conditioning on its own text.

    cuts = split_clips(plan, region_seconds=60)   # [(clip, ...), ...]: the clips of each part

A file's clips (``SpeechPlan.clips``: the stretches the VAD found, the pauses of less than
``vad_max_gap`` inside them) are cut where there is a pause: between two clips (a pause no
window decodes anyway) or, inside a clip, in the middle of a pause between two of the VAD's
speech regions (so every frame that the whole-file loop decodes is still decoded, by one part).
A part runs from one cut to the next and is at least ``region_seconds`` long (the last one may be
shorter, but not under half of that); where several pauses could end a part, the longest one in
the next ``region_seconds`` is taken. What differs from decoding the file as one: each part's
first window is decoded without the text before it as its prompt (the same as after a
high-temperature window in the one loop), and a window never runs across a cut.
The cuts depend on the file and the options only, never on the batch size or on the other
files: a file's transcript in ``regions`` mode is the same at any batch size.
Without speech regions (``--vad off``) there is nowhere known to cut: the file is one part.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from .constants import FRAMES_PER_SECOND
from .speech import SpeechPlan

Clip = Tuple[int, int]

__all__ = ["split_clips", "pauses"]


def pauses(plan: SpeechPlan) -> List[Tuple[int, float]]:
    """Where a part may start: (mel frame, the pause's length in seconds), in time order. Each
    start of a clip after the first (the pause before it is not decoded), and the middle of each
    pause between two speech regions inside one clip."""
    clips = list(plan.clips)
    out: List[Tuple[int, float]] = []
    for (a0, b0), (a1, b1) in zip(clips, clips[1:]):
        out.append((a1, (a1 - b0) / FRAMES_PER_SECOND))
    regions = plan.regions or ()
    for r0, r1 in zip(regions, regions[1:]):
        f0, f1 = r0.end * FRAMES_PER_SECOND, r1.start * FRAMES_PER_SECOND
        middle = int(round((f0 + f1) / 2))
        if any(a < f0 and f1 < b for a, b in clips) and f1 > f0:
            out.append((middle, r1.start - r0.end))
    return sorted(out)


def split_clips(plan: SpeechPlan, region_seconds: float) -> List[Tuple[Clip, ...]]:
    """The clips of each part, in time order (one part: the plan's clips as they are).

    region_seconds: a part's shortest length (from its first frame to the next part's), and the
    reach within which the longest pause is chosen to end it."""
    if region_seconds <= 0:
        raise ValueError(f"region_seconds must be > 0 (got {region_seconds})")
    clips = list(plan.clips)
    if plan.regions is None or len(clips) == 0:
        return [tuple(clips)]
    target = region_seconds * FRAMES_PER_SECOND
    end = clips[-1][1]
    candidates = pauses(plan)
    cuts: List[int] = []
    start = clips[0][0]
    i = 0
    while True:
        # the pauses far enough from this part's start, the longest within the next reach
        while i < len(candidates) and candidates[i][0] - start < target:
            i += 1
        if i >= len(candidates):
            break
        reach = [c for c in candidates[i:] if c[0] - start < 2 * target] or [candidates[i]]
        frame = max(reach, key=lambda c: (c[1], -c[0]))[0]
        if end - frame < target / 2:  # a last part that short joins the one before it
            break
        cuts.append(frame)
        start = frame
        i = next((k for k, c in enumerate(candidates) if c[0] > frame), len(candidates))
    return _cut(clips, cuts)


def _cut(clips: Sequence[Clip], cuts: Sequence[int]) -> List[Tuple[Clip, ...]]:
    """``clips`` split at the frames ``cuts`` (increasing): a clip a cut falls inside is split in
    two there."""
    parts: List[List[Clip]] = [[]]
    bounds = list(cuts)
    for a, b in clips:
        while bounds and bounds[0] <= a:
            parts.append([])
            bounds.pop(0)
        while bounds and a < bounds[0] < b:
            parts[-1].append((a, bounds[0]))
            a = bounds.pop(0)
            parts.append([])
        parts[-1].append((a, b))
    return [tuple(p) for p in parts if p]
