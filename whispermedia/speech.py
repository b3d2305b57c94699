"""The speech-region stage: where someone speaks, and the windows the long-form loop decodes.

    plan = plan_speech(source, options, content_frames)   # one pass over the audio
    plan.regions   # SpeechRegion tuple, seconds on the source's timeline -> TranscriptInfo.speech
    plan.clips     # [(start_frame, end_frame)]: the stretches the loop decodes, in mel frames

How regions become windows, and why:
- a region is speech with the pauses inside it shorter than ``vad_min_silence``, padded by
  ``vad_pad`` on each side (the backend's job: ``SpeechBackend.detect``);
- regions less than ``vad_max_gap`` apart are joined with the pause between them, and each such
  stretch (intersected with ``clip_timestamps``) is one clip, exactly as a user's
  ``--clip-timestamps`` stretch: the loop decodes 30-second windows from its start, seeking on
  timestamp tokens as openai-whisper does, and never past its end (the rest of a window past a
  clip's end is the zero padding a file's last window gets). So Whisper hears the speech with
  its natural pauses, in the original audio; nothing is spliced, and a longer silence between
  two regions is skipped, not decoded. Every time the loop computes is ``seek`` plus a position
  inside the window: on the source's timeline by construction, with no map to invert.

Backends come from the plugin host (``register_speech_backends``; ``--vad NAME``): ``silero``
(built in, the default) and ``energy`` (built in, a level gate), or a plugin's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy as np

from .constants import FRAMES_PER_SECOND
from .errors import PluginFailed, WhisperMediaError
from .types import Segment, SpeechRegion

if TYPE_CHECKING:
    from .media import AudioSource
    from .registry import SpeechBackend
    from .options import TranscribeOptions

__all__ = ["SpeechParams", "SpeechPlan", "plan_speech", "regions_from_probabilities", "clips_from_regions"]


@dataclass(frozen=True)
class SpeechParams:
    """What a speech backend is asked with (all times in seconds).

    threshold: a frame is speech at or above this probability (Silero's 0-1 scale; an energy
        gate maps its level onto the same scale); a region ends only where the probability
        falls below ``threshold - 0.15`` (hysteresis, as Silero's own helper).
    min_speech: shorter regions are dropped.
    min_silence: a region ends after this much non-speech; shorter pauses stay inside it.
    pad: each region is widened by this much on both sides (clipped to the audio and to the
        neighbours: two regions never overlap).
    """

    threshold: float = 0.5
    min_speech: float = 0.25
    min_silence: float = 0.5
    pad: float = 0.25

    @classmethod
    def from_options(cls, options: "TranscribeOptions") -> "SpeechParams":
        return cls(threshold=options.vad_threshold, min_speech=options.vad_min_speech,
                   min_silence=options.vad_min_silence, pad=options.vad_pad)


def regions_from_probabilities(probs: np.ndarray, step: float, params: SpeechParams,
                               duration: Optional[float] = None) -> List[Tuple[float, float]]:
    """Speech regions from per-frame speech probabilities.

    probs: float [n], one per frame of ``step`` seconds (frame i covers [i * step, (i + 1) * step)).
    duration: the audio's length in seconds (regions are clipped to it; default n * step).
    Returns (start, end) seconds in time order, padded and non-overlapping.
    """
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    duration = len(probs) * step if duration is None else duration
    low = max(params.threshold - 0.15, 0.01)
    raw: List[Tuple[float, float]] = []
    start: Optional[int] = None
    quiet_since: Optional[int] = None  # first frame of the current run below ``low``
    for i, p in enumerate(probs):
        if start is None:
            if p >= params.threshold:
                start, quiet_since = i, None
            continue
        if p >= params.threshold:
            quiet_since = None
        elif p < low:
            if quiet_since is None:
                quiet_since = i
            if (i + 1 - quiet_since) * step >= params.min_silence:
                raw.append((start * step, quiet_since * step))
                start, quiet_since = None, None
    if start is not None:
        raw.append((start * step, (quiet_since if quiet_since is not None else len(probs)) * step))
    raw = [(a, min(b, duration)) for a, b in raw if min(b, duration) - a >= params.min_speech]
    return pad_regions(raw, params.pad, duration)


def pad_regions(regions: Sequence[Tuple[float, float]], pad: float, duration: float) -> List[Tuple[float, float]]:
    """``regions`` widened by ``pad`` on each side, within [0, duration]; two that would overlap
    are merged (their pause was shorter than two paddings)."""
    out: List[Tuple[float, float]] = []
    for a, b in regions:
        a, b = max(0.0, a - pad), min(duration, b + pad)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


def clips_from_regions(regions: Sequence[Tuple[float, float]], user_clips: Sequence[Tuple[int, int]],
                       content_frames: int, max_gap: float = 0.0) -> List[Tuple[int, int]]:
    """The (start, end) mel-frame stretches to decode: the regions (seconds, rounded outward to
    10 ms frames), those less than ``max_gap`` seconds apart joined with the pause between them,
    intersected with the user's ``clip_timestamps`` stretches (frames)."""
    joined: List[Tuple[float, float]] = []
    for a, b in regions:
        if joined and a - joined[-1][1] <= max_gap:
            joined[-1] = (joined[-1][0], max(joined[-1][1], b))
        else:
            joined.append((a, b))
    out: List[Tuple[int, int]] = []
    for a, b in joined:
        fa = max(0, int(np.floor(a * FRAMES_PER_SECOND)))
        fb = min(content_frames, int(np.ceil(b * FRAMES_PER_SECOND)))
        for ua, ub in user_clips:
            lo, hi = max(fa, ua), min(fb, ub)
            if hi > lo:
                out.append((lo, hi))
    return sorted(out)


@dataclass(frozen=True)
class SpeechPlan:
    """What the loop decodes: ``regions`` (where the backend found speech, seconds, for
    ``TranscriptInfo.speech``; None when detection is off) and ``clips`` ((start, end) mel
    frames; with detection off, the user's ``clip_timestamps`` as they are)."""

    regions: Optional[Tuple[SpeechRegion, ...]]
    clips: Tuple[Tuple[int, int], ...]
    backend: Optional[str] = None

    def inside(self, start: float, end: float) -> float:
        """The share of [start, end] (seconds) inside a region: 1.0 with detection off, and for
        an empty span inside a region."""
        if self.regions is None:
            return 1.0
        if end <= start:
            return 1.0 if any(r.start <= start <= r.end for r in self.regions) else 0.0
        covered = sum(max(0.0, min(end, r.end) - max(start, r.start)) for r in self.regions)
        return covered / (end - start)

    def fit_words(self, segment: Segment, pad: float) -> Segment:
        """``segment`` with each word that runs out of the speech region it overlaps most
        (widened by ``pad`` seconds) cut back to that region's edges. Word timing (DTW over
        cross-attention) stretches a word over a pause between two regions decoded together;
        the VAD heard no speech there. A word that overlaps no region (the VAD missed it) keeps
        its times. Only shrinks words, so their order and the segment's bounds still hold."""
        if not self.regions or not segment.words:
            return segment
        spans = [(r.start - pad, r.end + pad) for r in self.regions]
        words = []
        for w in segment.words:
            best, most = None, 0.0
            for a, b in spans:
                overlap = min(w.end, b) - max(w.start, a)
                if overlap > most:
                    best, most = (a, b), overlap
            if best is not None and not (best[0] <= w.start and w.end <= best[1]):
                # whole milliseconds, rounded inwards so the word stays inside the region
                start = math.ceil(max(w.start, best[0]) * 1000 - 1e-6) / 1000
                end = max(start, math.floor(min(w.end, best[1]) * 1000 + 1e-6) / 1000)
                w = replace(w, start=start, end=end)
            words.append(w)
        return replace(segment, words=tuple(words))


def backend_for(options: "TranscribeOptions") -> Optional[SpeechBackend]:
    """The backend ``options.vad`` names (None for ``off``), checked: ``PluginNotFound`` for an
    unknown name, the backend's own ``check()`` error (``MissingDependency``) when it cannot run."""
    if options.vad == "off":
        return None
    from .plugins import get_host

    backend = get_host().speech_backend(options.vad)
    if backend.check is not None:
        backend.check()
    return backend


def plan_speech(source: "AudioSource", options: "TranscribeOptions", user_clips: Sequence[Tuple[int, int]],
                content_frames: int) -> SpeechPlan:
    """Run the chosen backend (``options.vad``; ``"off"``: none) over ``source`` once and plan
    the clips. ``PluginNotFound`` for an unknown backend, before any audio is read."""
    backend = backend_for(options)
    if backend is None:
        return SpeechPlan(regions=None, clips=tuple(user_clips))
    duration = content_frames / FRAMES_PER_SECOND
    try:
        found = [(float(a), float(b)) for a, b in backend.detect(source.chunks(), SpeechParams.from_options(options))]
    except (WhisperMediaError, KeyboardInterrupt):
        raise  # the input's own errors (a decode failure) and Ctrl-C pass as they are
    except Exception as e:  # a plugin's bug is the plugin's: named, not a crash of wm
        raise PluginFailed(f"speech backend {backend.name!r} (plugin {backend.plugin!r}) failed: "
                           f"{type(e).__name__}: {e}") from e
    # to the millisecond: a backend's float sums (0.1 + 32 ms steps) say no more than that
    regions = tuple(SpeechRegion(start=round(max(0.0, a), 3), end=round(min(duration, b), 3))
                    for a, b in sorted(found) if min(duration, b) > max(0.0, a))
    clips = clips_from_regions([(r.start, r.end) for r in regions], user_clips, content_frames,
                               options.vad_max_gap)
    return SpeechPlan(regions=regions, clips=tuple(clips), backend=backend.name)
