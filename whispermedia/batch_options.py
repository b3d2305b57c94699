"""How files are decoded together: the options of ``transcribe_many`` and ``wm run`` that are
about batching, kept apart from ``TranscribeOptions`` (which say what one decode does).
``exact`` mode never changes a result (each file's transcript is the one it gets alone);
``regions`` mode cuts a long file into parts decoded side by side (``whispermedia.regions``),
which changes what each part's first window is conditioned on; ``auto`` (the default) is
``regions`` unless the options condition on previous text. Torch-free, so ``wm run
--help`` stays cheap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from .options import _normalize_and_check, option, parse_float, parse_int

if TYPE_CHECKING:
    from .options import TranscribeOptions

# The automatic batch size on a CPU (docs/benchmarks.md, "Batched transcription": on 2 cores the
# throughput stops rising at about this many files).
CPU_BATCH_SIZE = 8

BATCH_MODES = ("auto", "exact", "regions")

# The shortest part of ``regions`` mode (docs/benchmarks.md, "Batched transcription": the
# measured cost of cutting more often).
REGION_SECONDS = 60.0


@dataclass(frozen=True)
class BatchOptions:
    """Continuous batching across files and, in ``regions`` mode, across the parts of a file
    (``whispermedia.scheduler``)."""

    batch_size: Optional[int] = option(
        None, "Streams decoded at once (continuous batching: a file, or in regions mode a part of one); "
              f"none: by device and memory (CPU: {CPU_BATCH_SIZE}).",
        group="decoding", parse=parse_int, metavar="N", minimum=1, maximum=1024)
    batch_mode: str = option(
        "auto", "exact: files side by side, each transcript the one it gets alone; regions: a long "
                "file is also cut at speech pauses into parts decoded side by side, each conditioned "
                "on its own text only (needs the VAD); auto: regions unless conditioning on previous "
                "text (where cutting measured a cost).",
        group="decoding", choices=BATCH_MODES, metavar="auto|exact|regions")
    region_seconds: float = option(
        REGION_SECONDS, "regions mode: a part is at least S seconds long, cut at the longest pause "
                        "in the next S seconds.", group="decoding", parse=parse_float, metavar="S",
        minimum=1)
    seed: int = option(
        0, "Seed of each file's own random numbers for sampling above temperature 0, so that a file's "
           "transcript does not depend on the files beside it.", group="decoding", parse=parse_int,
        metavar="N", minimum=0, cli=False)

    def __post_init__(self) -> None:
        _normalize_and_check(self)

    def region_length(self, options: "TranscribeOptions") -> Optional[float]:
        """The scheduler's ``region_seconds`` for files decoded with ``options``: None when they
        are decoded whole (``exact``, or ``auto`` with conditioning on previous text: there
        cutting cost 0.3 to 0.6 points of WER, without it nothing; docs/benchmarks.md)."""
        if self.batch_mode == "exact" or (self.batch_mode == "auto" and options.condition_on_previous_text):
            return None
        return self.region_seconds
