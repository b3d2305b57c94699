"""Writing a transcript to a file in a registered output format, atomically.

Also the timestamp helpers every format shares, public so that plugin authors round
times exactly the way the built-in formats do.
"""

from __future__ import annotations

import functools
import math
import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Optional, Union

from .errors import OutputError, PluginFailed, WhisperMediaError
from .registry import OutputFormat
from .types import Transcript

__all__ = ["write", "output_path", "check_format", "to_milliseconds", "format_timestamp", "finite_json"]

PathLike = Union[str, "os.PathLike[str]"]

_EXISTS = "output exists (write(..., overwrite=True) replaces it)"


def to_milliseconds(seconds: float) -> int:
    """Seconds as whole milliseconds, rounded half up (1.9999999 -> 2000).

    Formats round once, here, and then work on integers, so no float drift reaches a
    timestamp. Raises ``ValueError`` for a negative time (a bug upstream, not a format issue).
    """
    ms = math.floor(seconds * 1000 + 0.5)
    if ms < 0:
        raise ValueError(f"negative timestamp: {seconds!r} s")
    return ms


def format_timestamp(seconds: float, decimal_marker: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or, with ``decimal_marker="."``, ``HH:MM:SS.mmm`` (WebVTT).

    Hours always have at least two digits and grow past 99 as needed.
    """
    hours, rest = divmod(to_milliseconds(seconds), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def finite_json(value: object) -> object:
    """``value`` (dicts, lists, tuples, scalars) with every NaN or infinite float as ``None``.

    JSON has no NaN or Infinity; Python's ``json`` writes them anyway, as tokens that strict
    parsers (JavaScript's ``JSON.parse``, jq, Go, Rust's serde) reject. ``null`` is what
    ``JSON.stringify`` makes of them, so a consumer reads "no number here" (a probability that
    could not be computed). Dump the result with ``allow_nan=False`` to be sure.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def _lookup(fmt: Union[str, OutputFormat]) -> OutputFormat:
    if isinstance(fmt, OutputFormat):
        return fmt
    from .plugins import get_host  # deferred: the host loads plugins, which import this module

    return get_host().output_format(fmt)


def check_format(fmt: Union[str, OutputFormat]) -> None:
    """Run the format's ``check`` (a missing extra raises its ``MissingDependency``); a check that
    fails in any other way is a :class:`PluginFailed` naming the format and its plugin."""
    fmt = _lookup(fmt)
    if fmt.check is None:
        return
    try:
        fmt.check()
    except WhisperMediaError:
        raise
    except Exception as exc:
        raise PluginFailed(f"output format {fmt.name!r} (plugin {fmt.plugin or '?'!r}) failed its check: "
                           f"{type(exc).__name__}: {exc}") from exc


def output_path(input_path: PathLike, fmt: Union[str, OutputFormat], output_dir: Optional[PathLike] = None) -> Path:
    """Where the output for ``input_path`` goes: beside it (``video.mp4`` -> ``video.srt``),
    or in ``output_dir`` (``DIR/video.srt``). ``fmt`` is a format name or record."""
    fmt = _lookup(fmt)
    source = Path(input_path)
    target = (source.parent if output_dir is None else Path(output_dir)) / f"{source.stem}.{fmt.extension}"
    if os.path.abspath(target) == os.path.abspath(source):
        raise OutputError(f"the {fmt.name} output would replace the input itself", str(target))
    return target


def write(
    transcript: Transcript,
    format: Union[str, OutputFormat],
    path: PathLike,
    *,
    overwrite: bool = False,
    options: Optional[Mapping[str, object]] = None,
) -> Path:
    """Render ``transcript`` in ``format`` (a name or an :class:`OutputFormat`) into ``path``.

    The file appears complete or not at all: the text goes to a hidden temp file in the same
    directory, is fsynced, and is then moved over ``path``. On any error the temp file is
    removed and an existing ``path`` is left untouched. An existing ``path`` is an
    :class:`OutputError` unless ``overwrite`` (checked before anything is rendered); a format whose
    ``check`` fails (a missing extra) raises its ``MissingDependency`` before that.
    ``options`` are passed to the format read-only. A format that raises is reported as a
    :class:`PluginFailed` naming it and its plugin. Returns ``path`` as a :class:`Path`.
    """
    fmt = _lookup(format)
    check_format(fmt)  # a missing extra: said before any file is made
    path = Path(path)
    if path.is_dir():
        raise OutputError("is a directory", str(path))
    if not overwrite and os.path.lexists(path):
        raise OutputError(_EXISTS, str(path))
    if fmt.needs_words and any(segment.words is None for segment in transcript.segments):
        raise OutputError(f"the {fmt.name} format needs word timestamps (transcribe with word_timestamps=True)",
                          str(path))
    frozen_options = MappingProxyType(dict(options or {}))
    mode = _mode_for(path)
    try:
        tmp = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="\n", dir=path.parent,
                                          prefix=f".{path.name}.", suffix=".tmp", delete=False)
    except OSError as exc:
        raise OutputError(f"cannot write here: {exc.strerror or exc}", str(path)) from exc
    try:
        with tmp:
            fmt.write(transcript, tmp, frozen_options)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, mode)  # NamedTemporaryFile makes 0600; give the file the mode a plain open() would
        _move_into_place(tmp.name, path, overwrite)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp.name)
        if isinstance(exc, (WhisperMediaError, KeyboardInterrupt)):
            raise  # a writer's SystemExit is its failure like any other exception: wm goes on
        if isinstance(exc, OSError):
            raise OutputError(exc.strerror or str(exc), str(path)) from exc
        raise PluginFailed(f"output format {fmt.name!r} (plugin {fmt.plugin or '?'!r}) failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    _fsync_directory(path.parent)
    return path


def _move_into_place(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    # link() fails if the name exists, so a file created after our check is never clobbered
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError(_EXISTS, str(path)) from None
    except OSError:  # file systems without hard links: check again, then rename
        if os.path.lexists(path):
            raise OutputError(_EXISTS, str(path)) from None
        os.replace(tmp, path)
        return
    with suppress(OSError):
        os.unlink(tmp)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)  # replacing a file keeps its permissions
    except OSError:
        return 0o666 & ~_umask()


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    # reading the umask means setting it; do it once per process
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    # makes the rename itself durable on POSIX; not possible (nor needed) everywhere
    with suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
