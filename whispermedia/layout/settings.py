"""What one output asks of the layout: the preset and its overridden rules, the frame rate,
the shot changes, karaoke.

The values come from the transcript's ``TranscribeOptions`` (``layout``, ``max_line_width``,
... ``fps``, ``shot_changes``: one definition each, ``wm run`` flags generated from them) and,
over those, from the format options a writer is called with (the same names:
``wm.write(t, "srt", path, options={"layout": "bbc"})``), so a library caller can lay one
transcript out several ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping, Optional

from ..types import Transcript
from .frames import parse_fps
from .rules import LayoutRules, default_layout, rules_for

#: The rule overrides that are options of the same name.
RULE_OPTIONS = ("max_line_width", "max_line_count", "max_words_per_line", "max_cps", "max_wpm", "min_duration",
                "max_duration", "min_gap_frames", "chain_gap", "reading_extension", "shot_snap")


@dataclass(frozen=True)
class LayoutSettings:
    rules: LayoutRules
    fps: Optional[Fraction]  # None: the video's rate (or 25 for audio)
    shot_changes: str  # "auto", "off" or a file of cut times
    highlight_words: bool
    given: Mapping[str, Any]  # the rule options actually given (openai reads them raw)

    @property
    def mode(self) -> str:
        return self.rules.mode


def _value(name: str, transcript: Transcript, options: Mapping[str, Any]) -> Any:
    if name in options:
        return options[name]
    opts = transcript.info.options
    return getattr(opts, name, None) if opts is not None else None


def layout_settings(transcript: Transcript, options: Optional[Mapping[str, Any]] = None) -> LayoutSettings:
    """The settings for one output of ``transcript``; ``options``: the format options."""
    options = options or {}
    name = _value("layout", transcript, options)
    if name is None:
        opts = transcript.info.options
        name = default_layout(opts.preset if opts is not None else "default")
    given = {k: _value(k, transcript, options) for k in RULE_OPTIONS}
    given = {k: v for k, v in given.items() if v is not None}
    rules = rules_for(name)
    if rules.mode == "engine":
        rules = rules.with_overrides(**given)
    fps = _value("fps", transcript, options)
    return LayoutSettings(rules=rules, fps=None if fps is None else parse_fps(fps),
                          shot_changes=_value("shot_changes", transcript, options) or "auto",
                          highlight_words=bool(_value("highlight_words", transcript, options)), given=given)


def needs_word_timestamps(options: Any) -> bool:
    """Whether a layout format written with these ``TranscribeOptions`` needs word timings:
    every ``engine`` layout does; ``raw`` and ``openai`` write segments (openai's writer uses
    words only when they were asked for, as the ``whisper`` command does)."""
    name = options.layout or default_layout(options.preset)
    return rules_for(name).mode == "engine"


def check_shot_changes(options: Any) -> None:
    """``OptionError`` when ``shot_changes`` names a cut list that is not a readable file, so
    ``wm run`` says so before the model loads rather than after transcribing."""
    import os

    from ..options import OptionError

    spec = options.shot_changes
    if spec not in ("auto", "off") and not os.path.isfile(spec):
        raise OptionError("shot_changes", "{shot_changes}: " + f"no such cut list: {spec!r}".replace("{", "{{")
                          .replace("}", "}}") + " (auto, off or a file of cut times)")
