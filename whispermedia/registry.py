"""Records that plugins register, and the register objects the registration hooks receive.

A register is bound to the plugin whose hook is being called: every record it accepts is
stamped with that plugin's name (``record.plugin``), so listings and error messages can say
where a format or task came from. The host (whispermedia.plugins) merges the registers and
settles duplicate names; a register only checks what one plugin hands it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Generic, Iterable, List, Mapping, Optional, Sequence, TextIO, Tuple, TypeVar

if TYPE_CHECKING:
    import numpy as np

    from .speech import SpeechParams
    from .types import Transcript

__all__ = ["OutputFormat", "Task", "FormatRegister", "TaskRegister", "TASK_TOKENS", "WriteFunction",
           "SpeechBackend", "SpeechBackendRegister", "DetectFunction"]

#: ``write(transcript, fp, options)``: render ``transcript`` as text into ``fp``.
WriteFunction = Callable[["Transcript", TextIO, Mapping[str, object]], None]
#: ``detect(chunks, params)``: where speech is in 16 kHz mono float32 audio given as chunks, as
#: (start, end) seconds in time order.
DetectFunction = Callable[[Iterable["np.ndarray"], "SpeechParams"], Sequence[Tuple[float, float]]]

#: The Whisper special tokens a task can prompt the decoder with.
TASK_TOKENS = ("transcribe", "translate")

# Names are typed on the command line (--plugin NAME) and listed in env vars, so keep them
# to characters that need no quoting and cannot be confused with a list separator.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r} must be letters, digits and _.+- (starting with a letter or digit)")


@dataclass(frozen=True)
class OutputFormat:
    """An output format: how a transcript is rendered into a file.

    ``extension`` is the file extension without the leading dot (``"srt"``, or
    ``"words.csv"`` for a two-part one); a leading dot is dropped. ``needs_words`` says
    the format can only be written from a transcript with word timestamps. ``uses_layout``
    says it lays cues out with the subtitle engine (``whispermedia.layout``): ``wm run`` then
    turns word timestamps on when the chosen layout needs them. ``check``, when given, is
    called before anything is transcribed or written and raises
    (``whispermedia.errors.MissingDependency`` naming the extra to install) when the format
    cannot be written here. ``plugin`` is filled in by the register; whatever the plugin passes
    is replaced.
    """

    name: str
    extension: str
    write: WriteFunction = field(repr=False)
    help: str = ""
    needs_words: bool = False
    uses_layout: bool = False
    plugin: str = field(default="", compare=False)
    check: Optional[Callable[[], None]] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name("output format", self.name)
        extension = self.extension.lstrip(".") if isinstance(self.extension, str) else ""
        if not extension or "/" in extension or "\\" in extension:
            raise ValueError(f"output format {self.name!r}: bad extension {self.extension!r}")
        object.__setattr__(self, "extension", extension)  # frozen: normalise in place once
        if not callable(self.write):
            raise TypeError(f"output format {self.name!r}: write must be callable, got {type(self.write).__name__}")


@dataclass(frozen=True)
class Task:
    """A task: a named way of prompting the decoder.

    ``task_token`` is the Whisper special token the decoder is prompted with, one of
    :data:`TASK_TOKENS`. ``plugin`` is filled in by the register.
    """

    name: str
    help: str
    task_token: str
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_name("task", self.name)
        if self.task_token not in TASK_TOKENS:
            raise ValueError(f"task {self.name!r}: task_token must be one of {TASK_TOKENS}, got {self.task_token!r}")


@dataclass(frozen=True)
class SpeechBackend:
    """A voice activity detector: where in the audio someone speaks (``--vad NAME``).

    ``detect(chunks, params)`` reads the audio once, as 16 kHz mono float32 arrays of any sizes
    (``chunks``, an iterable), and returns the speech regions as (start, end) seconds on the
    audio's own timeline, in time order, not overlapping; ``params``
    (:class:`whispermedia.speech.SpeechParams`) carries the thresholds the user set (threshold,
    shortest speech, shortest silence, padding), which a backend honours as far as they apply
    to it (``whispermedia.speech.regions_from_probabilities`` turns per-frame probabilities into
    regions with them). ``check``, when given, is called before any audio is read and raises
    (``MissingDependency`` naming what to install) when the backend cannot run here.
    """

    name: str
    detect: DetectFunction = field(repr=False)
    help: str = ""
    plugin: str = field(default="", compare=False)
    check: Optional[Callable[[], None]] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name("speech backend", self.name)
        if self.name == "off":
            raise ValueError("speech backend name 'off' is taken: --vad off turns detection off")
        if not callable(self.detect):
            raise TypeError(f"speech backend {self.name!r}: detect must be callable, got {type(self.detect).__name__}")


Record = TypeVar("Record", OutputFormat, Task, SpeechBackend)


class _Register(Generic[Record]):
    """Collects one plugin's records of one kind, stamped with the plugin's name."""

    kind = ""
    record_type: type = object

    def __init__(self, plugin: str):
        self.plugin = plugin
        self._records: List[Record] = []

    def add(self, record: Record) -> None:
        if not isinstance(record, self.record_type):
            raise TypeError(
                f"{type(self).__name__}.add() takes a {self.record_type.__name__}, got {type(record).__name__}"
            )
        if any(r.name == record.name for r in self._records):
            # within one plugin a repeated name is a bug in that plugin, not a conflict to settle
            raise ValueError(f"{self.kind} {record.name!r} added twice by plugin {self.plugin!r}")
        self._records.append(dataclasses.replace(record, plugin=self.plugin))

    @property
    def records(self) -> Tuple[Record, ...]:
        """What was added so far, in order."""
        return tuple(self._records)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} plugin={self.plugin!r} {[r.name for r in self._records]}>"


class FormatRegister(_Register[OutputFormat]):
    """Passed to ``register_output_formats``; call :meth:`add` once per format."""

    kind = "output format"
    record_type = OutputFormat

    def add(self, record: OutputFormat) -> None:
        """Add an output format. Raises ``TypeError`` for anything but an :class:`OutputFormat`
        and ``ValueError`` if this plugin already added one of that name."""
        super().add(record)


class TaskRegister(_Register[Task]):
    """Passed to ``register_tasks``; call :meth:`add` once per task."""

    kind = "task"
    record_type = Task

    def add(self, record: Task) -> None:
        """Add a task. Raises ``TypeError`` for anything but a :class:`Task` and
        ``ValueError`` if this plugin already added one of that name."""
        super().add(record)


class SpeechBackendRegister(_Register[SpeechBackend]):
    """Passed to ``register_speech_backends``; call :meth:`add` once per backend."""

    kind = "speech backend"
    record_type = SpeechBackend

    def add(self, record: SpeechBackend) -> None:
        """Add a speech backend. Raises ``TypeError`` for anything but a :class:`SpeechBackend`
        and ``ValueError`` if this plugin already added one of that name."""
        super().add(record)
