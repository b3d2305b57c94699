"""Subtitle quality control: every cue checked against a layout preset's rules.

``check(cues, rules, fps=..., cuts=...)`` takes cues as a file holds them
(``subtitle_files.FileCue``, or ``cues_of(layout)`` for our own) and returns a ``QcReport``:
one ``Violation`` per broken rule per cue, with the rule, the cue number, the timecode, what is
wrong and a proposed fix. Rules (docs/cli.md, "wm qc"):

errors (the hard rules; ``wm qc`` exits ``EXIT_QC`` when there is one)
  ``line-length``, ``line-count``, ``min-duration``, ``max-duration``, ``min-gap``,
  ``overlap``, ``order`` (a cue starting before the one above it), ``frame-grid`` (a time off
  the frame grid; checked when the frame rate is known: a video or ``--fps``)
warnings (soft: a verbatim cue of fast speech may break them)
  ``reading-speed`` (characters or words per second over the preset's), ``chaining`` (a gap
  under the chaining threshold that is not exactly the minimum gap), ``shot-change`` (an edge
  within the snapping window of a cut and not snapped: in-time on the cut, out-time the minimum
  gap before it)
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

from .layout.cues import Layout
from .layout.frames import AUDIO_ONLY_FPS, FrameGrid
from .layout.rules import LayoutRules
from .subtitle_files import FileCue

ERRORS = ("line-length", "line-count", "min-duration", "max-duration", "min-gap", "overlap", "order", "frame-grid")
WARNINGS = ("reading-speed", "chaining", "shot-change")


@dataclass(frozen=True)
class Violation:
    rule: str
    cue: int  # 1-based cue number
    timecode: str  # where: the cue's in-time (or the edge concerned)
    problem: str
    fix: str

    @property
    def severity(self) -> str:
        return "error" if self.rule in ERRORS else "warning"

    def line(self) -> str:
        return f"{self.severity} {self.rule} cue {self.cue} at {self.timecode}: {self.problem}; fix: {self.fix}"

    def to_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "cue": self.cue, "timecode": self.timecode,
                "problem": self.problem, "fix": self.fix}


@dataclass(frozen=True)
class QcReport:
    cues: int
    rules: str
    fps: Optional[Fraction]  # None: not known (frame-grid not checked, gaps on a 25 fps grid)
    violations: Tuple[Violation, ...] = field(default=())
    within_reading_speed: int = 0  # cues at or under the preset's reading speed

    @property
    def errors(self) -> int:
        return sum(v.severity == "error" for v in self.violations)

    @property
    def warnings(self) -> int:
        return len(self.violations) - self.errors

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for v in self.violations:
            out[v.rule] = out.get(v.rule, 0) + 1
        return out

    def summary(self) -> str:
        rate = "" if self.fps is None else f" at {float(self.fps):.3f} fps"
        by_rule = ", ".join(f"{rule} {n}" for rule, n in sorted(self.counts().items())) or "clean"
        return (f"{self.cues} cues checked against {self.rules}{rate}: {self.errors} errors, "
                f"{self.warnings} warnings ({by_rule}); {self.within_reading_speed}/{self.cues} within reading speed")

    def to_dict(self) -> dict:
        return {"cues": self.cues, "layout": self.rules,
                "fps": None if self.fps is None else f"{self.fps.numerator}/{self.fps.denominator}",
                "errors": self.errors, "warnings": self.warnings, "counts": self.counts(),
                "within_reading_speed": self.within_reading_speed,
                "violations": [v.to_dict() for v in self.violations]}


def cues_of(layout: Layout) -> List[FileCue]:
    """Our own layout's cues in the shape QC reads from files."""
    return [FileCue(n, c.start, c.end, c.text_lines) for n, c in enumerate(layout.cues, start=1)]


def timecode(seconds: float, fps: Optional[Fraction]) -> str:
    """``HH:MM:SS:FF`` on a known frame rate (drop-frame ``HH:MM:SS;FF`` at 29.97 and 59.94,
    as editors count those), else ``HH:MM:SS,mmm``."""
    if fps is None:
        ms = round(seconds * 1000)
        h, ms = divmod(ms, 3_600_000)
        m, ms = divmod(ms, 60_000)
        s, ms = divmod(ms, 1000)
        return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"
    frame = FrameGrid(fps).nearest(seconds)
    nominal = round(fps)  # timecode counts whole frames per second
    separator = ":"
    if fps.denominator == 1001 and nominal in (30, 60):
        frame, separator = _drop_frame_count(frame, nominal), ";"
    s, ff = divmod(frame, nominal)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ff:02d}"


def _drop_frame_count(frame: int, nominal: int) -> int:
    """The frame number as drop-frame timecode labels it: frame labels 0 and 1 (0-3 at 59.94)
    are skipped at the start of every minute except each tenth (SMPTE 12M)."""
    drop = 2 * nominal // 30
    per_ten_minutes = nominal * 600 - drop * 9
    per_minute = nominal * 60 - drop
    tens, rest = divmod(frame, per_ten_minutes)
    skipped = drop * 9 * tens + (drop * ((rest - drop) // per_minute) if rest > drop else 0)
    return frame + skipped


def _reading(cue: FileCue, rules: LayoutRules) -> Optional[str]:
    duration = max(cue.end - cue.start, 1e-3)
    chars = sum(len(line) for line in cue.lines)
    words = sum(len(line.split()) for line in cue.lines)
    if rules.max_cps is not None and chars / duration > rules.max_cps + 1e-9:
        return f"{chars / duration:.1f} characters/s > {rules.max_cps:g}"
    if rules.max_wpm is not None and words * 60 / duration > rules.max_wpm + 1e-9:
        return f"{words * 60 / duration:.0f} words/min > {rules.max_wpm:g}"
    return None


def check(cues: Sequence[FileCue], rules: LayoutRules, *, fps: Optional[Fraction] = None,
          cuts: Sequence[float] = ()) -> QcReport:
    """Check ``cues`` (in file order) against ``rules``; ``fps``: the frame rate times should be
    on (None: unknown), ``cuts``: shot changes in seconds."""
    grid = FrameGrid(fps or AUDIO_ONLY_FPS)
    tc = lambda t: timecode(t, fps)  # noqa: E731
    at = lambda f: grid.seconds(f)  # noqa: E731
    gap, min_f = rules.min_gap_frames, grid.ceil(rules.min_duration)
    max_f = grid.floor(rules.max_duration)
    chain_f, snap_f = grid.frames(rules.chain_gap), grid.frames(rules.shot_snap)
    cut_frames = sorted({grid.nearest(c) for c in cuts})
    found: List[Violation] = []
    within = 0

    def add(rule: str, cue: FileCue, when: float, problem: str, fix: str) -> None:
        found.append(Violation(rule, cue.number, tc(when), problem, fix))

    for k, cue in enumerate(cues):
        f_in, f_out = grid.nearest(cue.start), grid.nearest(cue.end)
        nxt = cues[k + 1] if k + 1 < len(cues) else None
        next_in = grid.nearest(nxt.start) if nxt is not None else None
        long_lines = [line for line in cue.lines if len(line) > rules.max_line_width]
        if long_lines:
            add("line-length", cue, cue.start, f"a line of {max(map(len, long_lines))} characters > "
                f"{rules.max_line_width}", "break the line at a phrase boundary" if len(cue.lines) < rules.max_line_count
                else "split the cue in two")
        if len(cue.lines) > rules.max_line_count:
            add("line-count", cue, cue.start, f"{len(cue.lines)} lines > {rules.max_line_count}",
                "split the cue in two")
        if f_out - f_in < min_f:
            room = next_in - gap if next_in is not None else f_in + min_f
            fix = (f"end at {tc(at(f_in + min_f))}" if f_in + min_f <= room
                   else "merge with the next cue, or start earlier")
            add("min-duration", cue, cue.start, f"{float((f_out - f_in) / grid.fps):.3f} s < {rules.min_duration:.3f} s", fix)
        if f_out - f_in > max_f:
            add("max-duration", cue, cue.start, f"{float((f_out - f_in) / grid.fps):.3f} s > {rules.max_duration:g} s",
                f"split the cue, or end at {tc(at(f_in + max_f))}")
        if fps is not None:
            for edge, name in ((cue.start, "in"), (cue.end, "out")):
                if not grid.on_grid(edge):
                    add("frame-grid", cue, edge, f"{name}-time {edge:.3f} s is not on a frame",
                        f"move it to {tc(at(grid.nearest(edge)))}")
        reading = _reading(cue, rules)
        if reading is None:
            within += 1
        else:
            room = (next_in - gap) if next_in is not None else None
            fix = ("extend the out-time" + (f" (up to {tc(at(room))})" if room is not None else "")
                   if room is None or room > f_out else "verbatim speech this fast cannot be read in time: "
                   "condense it, or accept")
            add("reading-speed", cue, cue.start, reading, fix)
        if nxt is not None:
            between = next_in - f_out
            if nxt.start < cue.start:
                add("order", nxt, nxt.start, f"starts before cue {cue.number}", "sort the cues by start time")
            elif between < 0:
                add("overlap", cue, cue.end, f"overlaps cue {nxt.number} by {-between} frames",
                    f"end at {tc(at(next_in - gap))}")
            elif between < gap:
                add("min-gap", cue, cue.end, f"gap of {between} frames to cue {nxt.number} < {gap}",
                    f"end at {tc(at(next_in - gap))}")
            elif between < chain_f and between != gap:
                add("chaining", cue, cue.end, f"gap of {between} frames to cue {nxt.number} (under {chain_f})",
                    f"chain: end at {tc(at(next_in - gap))}")
        if snap_f and cut_frames:
            c = _closest(cut_frames, f_in)
            if c is not None and 0 < abs(c - f_in) < snap_f:
                add("shot-change", cue, cue.start, f"in-time {abs(c - f_in)} frames from a cut", f"start at {tc(at(c))}")
            c = _closest(cut_frames, f_out)
            if c is not None and abs(c - f_out) < snap_f and f_out != c - gap:
                add("shot-change", cue, cue.end, f"out-time {f_out - c:+d} frames from a cut",
                    f"end at {tc(at(c - gap))}")
    return QcReport(len(cues), rules.name, fps, tuple(found), within)


def _closest(cuts: Sequence[int], frame: int) -> Optional[int]:
    k = bisect.bisect_left(cuts, frame)
    near = cuts[max(k - 1, 0):k + 1]
    return min(near, key=lambda c: abs(c - frame)) if near else None
