"""What ``wm`` prints: exit codes, the ``wm run`` reporter, doctor lines, JSON records.

The commands (``whispermedia.cli``) decide what to do; this module says how it looks on
stderr and stdout. Nothing here imports torch or a model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Type

import click

from whispermedia.errors import (
    MediaError,
    MissingDependency,
    ModelError,
    OutputError,
    PluginFailed,
    PluginNotFound,
)
from whispermedia.output import finite_json
from whispermedia.types import Progress

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: an unexpected exception (traceback with WM_DEBUG=1)
EXIT_USAGE = 2  # bad command line: unknown option, plugin, task or language (click's own code)
EXIT_INPUT = 3  # an input could not be read: missing, empty, not media, no audio, truncated
EXIT_MODEL = 4  # the model could not be found, failed its checksum, or is malformed
EXIT_OUTPUT = 5  # an output could not be written, or exists and --overwrite was not given
EXIT_PLUGIN = 6  # a plugin failed while it ran (raised, or answered with the wrong type)
EXIT_QC = 7  # wm qc: the subtitle file breaks a hard rule of the layout (with --strict: any rule)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it

#: The exit code of each library error (the most specific class that matches wins).
EXIT_CODES: Mapping[Type[BaseException], int] = {
    MediaError: EXIT_INPUT,
    ModelError: EXIT_MODEL,
    OutputError: EXIT_OUTPUT,
    PluginNotFound: EXIT_USAGE,
    MissingDependency: EXIT_USAGE,
    PluginFailed: EXIT_PLUGIN,
}


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for ``exc`` (docs/cli.md); a bug's is ``EXIT_INTERNAL``."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_INTERNAL


def describe(exc: BaseException) -> str:
    """``TypeName: message`` of an unexpected exception, on one line."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- JSON records --------------------------------------------------------------------------------

def record(obj: Any) -> Dict[str, Any]:
    """A frozen record (dataclass) as a JSON-ready dict."""
    return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def jsonable(value: Any) -> Any:
    """``value`` as JSON types: records and mappings as objects, sequences as lists, paths and
    exceptions as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN: null, as JSON.stringify writes it
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record(value)
    if isinstance(value, BaseException):
        return describe(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)


def fields_of(obj: Any, *names: str) -> Dict[str, Any]:
    """Some attributes of ``obj`` as a JSON-ready dict."""
    return {name: jsonable(getattr(obj, name, None)) for name in names}


# -- wm run: progress and events -----------------------------------------------------------------

class Reporter:
    """Renders what happens during ``wm run`` on stderr: plain lines, a bar, or JSON lines."""

    def __init__(self, mode: str, clock: Callable[[], float] = time.monotonic):
        self.mode = mode
        self._bar_shown = False
        self._last_draw = 0.0
        self._clock = clock
        self._started: Dict[str, Tuple[float, float]] = {}  # file -> (time, seconds done) at its first report

    # JSON lines: one object per line, flushed, so a pipeline can follow along
    def _event(self, **fields: Any) -> None:
        # NaN/inf (a probability that could not be computed) as null: strict parsers reject NaN
        sys.stderr.write(json.dumps(finite_json(fields), ensure_ascii=False, allow_nan=False) + "\n")
        sys.stderr.flush()

    def _line(self, text: str) -> None:
        self.clear()
        click.echo(text, err=True)

    def clear(self) -> None:
        """Take the progress bar off the terminal line (before anything else is printed)."""
        if self._bar_shown:
            width = shutil.get_terminal_size((80, 24)).columns
            sys.stderr.write("\r" + " " * (width - 1) + "\r")
            sys.stderr.flush()
            self._bar_shown = False

    def progress(self, file: str, p: Progress) -> None:
        if self.mode == "json":
            self._event(
                event="progress",
                file=file,
                seconds_done=round(float(p.seconds_done), 3),
                seconds_total=round(float(p.seconds_total), 3),
                segments=int(p.segments),
            )
        elif self.mode == "bar":
            now = self._clock()
            done, total = float(p.seconds_done), float(p.seconds_total)
            started = self._started.setdefault(file, (now, done))
            if now - self._last_draw < 0.1 and done < total:
                return
            self._last_draw = now
            self._draw(file, done, total, int(p.segments), speed(started, now, done))

    def status(self, text: str) -> None:
        """A transient line in the bar's place (bar mode only), e.g. while the model loads."""
        if self.mode == "bar":
            width = shutil.get_terminal_size((80, 24)).columns
            self.clear()
            sys.stderr.write("\r" + text[: width - 1])
            sys.stderr.flush()
            self._bar_shown = True

    def _draw(self, file: str, done: float, total: float, segments: int, rate: Optional[float]) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        frac = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
        tail = f" {frac * 100:3.0f}% {clock(done)}/{clock(total)} {segments} seg"
        if rate:  # seconds of audio per second of wall time, and what that leaves
            tail += f" {rate:.1f}x, {clock((total - done) / rate)} left"
        name = Path(file).name
        room = max(width - len(tail) - 4, 10)
        bar_len = max(min(30, room - len(name) - 1), 10)
        name = name if len(name) <= room - bar_len - 1 else name[: max(room - bar_len - 2, 1)] + "…"
        filled = int(round(frac * bar_len))
        line = f"{name} [{'#' * filled}{'.' * (bar_len - filled)}]{tail}"
        sys.stderr.write("\r" + line[: width - 1].ljust(width - 1))  # over whatever was there
        sys.stderr.flush()
        self._bar_shown = True

    def language(self, file: str, language: str, probability: Optional[float]) -> None:
        if self.mode == "json":
            self._event(event="language", file=file, language=language, probability=probability)
            return
        p = "" if probability is None else f" (p={probability:.2f})"
        self._line(f"{file}: detected language: {language}{p}")

    def regions(self, file: str, regions: Sequence[Tuple[str, float, float]]) -> None:
        """The languages of ``--language-per-region``, as (language, start, end) runs."""
        if self.mode == "json":
            self._event(event="language_regions", file=file,
                        regions=[dict(language=lang, start=round(a, 3), end=round(b, 3)) for lang, a, b in regions])
            return
        runs = ", ".join(f"{lang} {clock_ms(a)}-{clock_ms(b)}" for lang, a, b in regions) or "(no speech)"
        self._line(f"{file}: languages by region: {runs}")

    def stream(self, file: str, choice: Any) -> None:
        """Which audio stream of several is decoded (``audio_streams.StreamChoice``) and the others."""
        from whispermedia.audio_streams import describe as name_stream

        chosen = next(s for s in choice.streams if s.index == choice.index)
        if self.mode == "json":
            self._event(event="audio_stream", file=file, stream=choice.index, reason=choice.reason,
                        streams=[s.to_dict() for s in choice.streams])
            return
        why = {"asked": "as asked", "language": "by its language tag", "default": "flagged default",
               "speech": "the first with speech", "first": "the first; none is flagged default"}[choice.reason]
        others = ", ".join(name_stream(s) for s in choice.others)
        self._line(f"{file}: audio stream {name_stream(chosen)} of {len(choice.streams)} ({why}); "
                   f"others: {others} (--audio-stream N or lang:TAG picks one)")

    def skipped(self, file: str, output: str) -> None:
        """An output that exists and is kept (no --overwrite): not a failure."""
        if self.mode == "json":
            self._event(event="skipped", file=file, output=output, reason="exists")
        else:
            self._line(f"wm: {output}: exists, kept (--overwrite replaces it)")

    def resumed(self, files: Sequence[str], manifest: str) -> None:
        """``files`` are recorded as done in ``manifest`` (``--resume``), with the same input and
        options hashes: not redone. One line for them all; JSON: a ``skipped`` event each."""
        if self.mode == "json":
            for file in files:
                self._event(event="skipped", file=file, output=None, reason="done", manifest=manifest)
        elif files:
            self._line(f"wm: {len(files)} input{'s' if len(files) != 1 else ''} done earlier "
                       f"({manifest}), skipped")

    def done(self, file: str, outputs: Sequence[str], kept: Sequence[str] = ()) -> None:
        """``file`` finished: ``outputs`` written, ``kept`` skipped because they exist."""
        if self.mode == "json":
            self._event(event="done", file=file, outputs=list(outputs), skipped=list(kept))
        else:
            self.clear()

    def error(self, file: Optional[str], code: int, message: str, tb: Optional[str] = None) -> None:
        """``message`` is the human line without its ``wm: `` prefix."""
        if self.mode == "json":
            fields: Dict[str, Any] = dict(event="error", file=file, code=code, message=message)
            if tb:
                fields["traceback"] = tb
            self._event(**fields)
            return
        self.clear()
        if tb:
            sys.stderr.write(tb)
        click.echo(f"wm: {message}", err=True)

    def warning(self, message: str) -> None:
        if self.mode == "json":
            self._event(event="warning", message=message)
        else:
            self._line(f"wm: warning: {message}")


def speed(started: Tuple[float, float], now: float, done: float) -> Optional[float]:
    """Seconds of audio decoded per second since ``started`` (time, seconds done then); None
    until there is something to measure."""
    elapsed, advanced = now - started[0], done - started[1]
    return advanced / elapsed if elapsed > 0.5 and advanced > 0 else None


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    seconds = max(int(seconds), 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def clock_ms(seconds: float) -> str:
    """``m:ss.s``."""
    m, s = divmod(max(float(seconds), 0.0), 60)
    return f"{int(m)}:{s:04.1f}"


# -- wm doctor, wm plugins ----------------------------------------------------------------------

def doctor_lines(r: Dict[str, Any]) -> Iterator[str]:
    """The human form of ``wm doctor --json``'s report."""
    def err(section: Dict[str, Any]) -> Optional[str]:
        return section.get("error") if isinstance(section, dict) else None

    py = r["python"]
    yield f"whispermedia  {r['whispermedia']}"
    yield f"python        {py['version']} ({py['platform']}) {py['executable']}"

    t = r["torch"]
    if err(t):
        yield f"torch         unavailable: {err(t)}"
    else:
        gpu = ", ".join(t["devices"]) if t["gpu_available"] else "none visible"
        yield f"torch         {t['version']} (CUDA {t['cuda'] or 'none'}); GPU: {gpu}"

    ext = r["extension"]
    if err(ext):
        yield f"_C            unknown: {err(ext)}"
    else:
        if ext.get("extension_loaded"):
            cuda = "with CUDA kernels" if ext.get("cuda_built") else "CPU kernels only"
            yield f"_C            loaded ({cuda}) {ext.get('extension_path') or ''}".rstrip()
        else:
            yield f"_C            not loaded: {ext.get('extension_error') or 'unknown reason'}"
        if ext.get("forced_reference"):
            yield "              WM_FORCE_REFERENCE=1: every op runs the pure-torch reference"
        ops = ext.get("ops") or {}
        width = max([len(op) for op in ops] + [1])
        for op, backends in sorted(ops.items()):
            if isinstance(backends, dict):
                where = ", ".join(f"{dev}: {impl}" for dev, impl in backends.items())
            else:
                where = str(backends)
            yield f"  op {op:<{width}}  {where}"

    m = r["default_model"]
    if err(m):
        yield f"model         unknown: {err(m)}"
    elif m.get("installed"):
        yield f"model         {m['name']} (default): installed {m.get('path') or ''}".rstrip()
    else:
        command = m.get("install_command")
        command = shlex.join(command) if isinstance(command, list) else command
        yield f"model         {m['name']} (default): NOT installed; {command}"

    p = r["plugins"]
    if err(p):
        yield f"plugins       unavailable: {err(p)}"
    else:
        yield f"plugins       {len(p['loaded'])} loaded, {len(p['failures'])} failed"
        for f in p["failures"]:
            yield f"  FAILED {failure_line(f)}"


def failure_line(f: Dict[str, Any]) -> str:
    """One plugin failure (a ``PluginFailure`` record) on one line."""
    stage = f.get("stage")
    where = f" in {stage}" if stage and stage != "load" else ""
    return f"{f.get('name')} ({f.get('dist') or 'no distribution'}){where}: {f.get('error_text') or f.get('error')}"
