"""Subtitle layout: presets as data (``rules``), frame grids (``frames``), per-language
function words (``words``), the break optimiser (``breaks``), subtitler's timing (``timing``),
the engine that joins them (``engine``), openai-whisper's writer (``openai_writer``), the
settings a run asks for (``settings``) and quality control (``whispermedia.qc``).

Only the light records are imported here; nothing in this package imports torch or PyAV.
"""

from .cues import Cue, CueWord, Layout
from .frames import FrameGrid, parse_fps
from .rules import PRESETS, LayoutRules, rules_for

__all__ = ["Cue", "CueWord", "Layout", "FrameGrid", "parse_fps", "PRESETS", "LayoutRules", "rules_for"]
