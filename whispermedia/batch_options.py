"""How many files are decoded at once: the options of ``transcribe_many`` and ``wm run`` that
do not change a result (each file's transcript is the one it gets alone), kept apart from
``TranscribeOptions`` for that reason. Torch-free, so ``wm run --help`` stays cheap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .options import _normalize_and_check, option, parse_int

# The automatic batch size on a CPU (docs/benchmarks.md, "Batched transcription": on 2 cores the
# throughput stops rising at about this many files).
CPU_BATCH_SIZE = 8


@dataclass(frozen=True)
class BatchOptions:
    """Continuous batching across files (``whispermedia.scheduler``)."""

    batch_size: Optional[int] = option(
        None, "Files decoded at once (continuous batching: each file's transcript is the one it gets "
              f"alone); none: by device and memory (CPU: {CPU_BATCH_SIZE}).",
        group="decoding", parse=parse_int, metavar="N", minimum=1, maximum=1024)
    seed: int = option(
        0, "Seed of each file's own random numbers for sampling above temperature 0, so that a file's "
           "transcript does not depend on the files beside it.", group="decoding", parse=parse_int,
        metavar="N", minimum=0, cli=False)

    def __post_init__(self) -> None:
        _normalize_and_check(self)
