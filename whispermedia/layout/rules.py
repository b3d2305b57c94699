"""Layout presets as data: the numbers a delivery spec gives, one record per preset.

A preset is a :class:`LayoutRules`; every rule can be overridden on its own
(``rules_for("netflix", max_line_width=37)``). ``mode`` says which engine lays the cues out:

- ``engine``: cues and lines chosen by the optimiser (``whispermedia.layout.breaks``), timed
  by ``whispermedia.layout.timing``;
- ``raw``: one cue per segment, the segment's own times (what ``wm`` wrote before layouts);
- ``openai``: openai-whisper's own subtitle writer (``max_line_width``, ``max_line_count``,
  ``max_words_per_line`` and ``highlight_words`` as it reads them), reproduced exactly.

Sources (../shared/PEERS.md §4, PEERS-NEXT.md §3): Netflix Timed Text Style Guide, General
Requirements and Subtitle Timing Guidelines (42 characters, 2 lines, 5/6 s to 7 s, 2-frame
gap, chaining and shot-change snapping within 12 frames at 24 fps, in-time on the first
frame of audio, out-time up to 1/2 s past the audio); Netflix English subtitles: 20
characters/s for adults, 17 for other languages' templates; BBC Subtitle Guidelines: 37
characters (68 % of a 16:9 line in Teletext practice), 2 lines, 160-180 words a minute.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Optional

MODES = ("engine", "raw", "openai")


@dataclass(frozen=True)
class LayoutRules:
    """Every rule of a layout. Durations in seconds; gaps in frames of the source's rate
    (``min_gap_frames``) or in seconds scaled to frames (``chain_gap``, ``shot_snap``: 0.5 s
    is 12 frames at 24 fps and 15 at 30, as Netflix scales them)."""

    name: str
    mode: str = "engine"
    # hard rules: the optimiser never breaks them where the words allow, QC reports them
    max_line_width: int = 42  # characters per line (code points)
    max_line_count: int = 2  # lines per cue
    max_words_per_line: Optional[int] = None  # None: no limit
    min_duration: float = 5 / 6  # seconds on screen at least
    max_duration: float = 7.0  # seconds on screen at most
    min_gap_frames: int = 2  # frames between one cue's out-time and the next in-time
    # reading speed (soft: a verbatim cue of fast speech may exceed it; QC lists those)
    max_cps: Optional[float] = 20.0  # characters per second, spaces and punctuation counted
    max_wpm: Optional[float] = None  # words per minute
    # timing
    reading_extension: float = 0.5  # the out-time may follow the speech by this much
    chain_gap: float = 0.5  # gaps shorter than this close to exactly min_gap_frames; 0: off
    shot_snap: float = 0.5  # cue edges this close to a shot change snap to it; 0: off
    pause_split: float = 1.5  # a silence this long inside a cue is costly (the text hangs over it)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"layout mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.max_line_width < 1 or self.max_line_count < 1 or self.min_gap_frames < 0:
            raise ValueError("layout rules: max_line_width and max_line_count must be >= 1, "
                             "min_gap_frames >= 0")
        if self.max_words_per_line is not None and self.max_words_per_line < 1:
            raise ValueError("layout rule max_words_per_line must be >= 1")
        if not 0 <= self.min_duration <= self.max_duration:
            raise ValueError(f"layout rules: min_duration {self.min_duration:g} s must be between 0 and "
                             f"max_duration {self.max_duration:g} s")
        for name in ("max_cps", "max_wpm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"layout rule {name} must be > 0")
        for name in ("reading_extension", "chain_gap", "shot_snap", "pause_split"):
            if getattr(self, name) < 0:
                raise ValueError(f"layout rule {name} must be >= 0")

    def with_overrides(self, **overrides: Any) -> "LayoutRules":
        """These rules with the given ones replaced (None values are ignored: not given)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown layout rule(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **given) if given else self


_NETFLIX = LayoutRules("netflix")

#: The presets, by name. ``default`` is what ``wm run -p srt`` uses: Netflix's line and timing
#: rules with a one-second minimum (short flashes are the most common complaint about generated
#: subtitles) and 17 characters per second, comfortable for viewers who are not subtitle
#: professionals' target audience of practised readers.
PRESETS: Mapping[str, LayoutRules] = MappingProxyType({
    "default": LayoutRules("default", max_cps=17.0, min_duration=1.0),
    "netflix": _NETFLIX,
    "netflix-other": dataclasses.replace(_NETFLIX, name="netflix-other", max_cps=17.0),
    "bbc": LayoutRules("bbc", max_line_width=37, max_cps=None, max_wpm=180.0, min_duration=1.0),
    "raw": LayoutRules("raw", mode="raw", max_line_width=10_000, max_line_count=10_000, min_duration=0.0,
                       max_duration=86_400.0, min_gap_frames=0, max_cps=None, reading_extension=0.0,
                       chain_gap=0.0, shot_snap=0.0),
    "openai": LayoutRules("openai", mode="openai", max_line_width=10_000, max_line_count=10_000,
                          min_duration=0.0, max_duration=86_400.0, min_gap_frames=0, max_cps=None,
                          reading_extension=0.0, chain_gap=0.0, shot_snap=0.0),
})

#: The layout ``layout=None`` means: openai-whisper's writer under the openai decoding presets
#: (so ``--preset openai`` reproduces the ``whisper`` command's files), ours otherwise.
def default_layout(decoding_preset: str) -> str:
    return "openai" if decoding_preset.startswith("openai") else "default"


def rules_for(name: str, **overrides: Any) -> LayoutRules:
    """The preset ``name`` with ``overrides`` applied; ``ValueError`` for an unknown name."""
    try:
        rules = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown layout {name!r} (known: {', '.join(PRESETS)})") from None
    return rules.with_overrides(**overrides)
