"""The ``wm`` command: a thin client of the public API.

The library never prints; this module renders. Conventions every command keeps:

- stdout carries results only (``wm run`` prints one written path per line), so scripts can
  capture it; everything else goes to stderr.
- A problem with one input is one stderr line, ``wm: <path>: <problem>``, with no traceback;
  ``wm run`` goes on with the other inputs and exits with the first failure's code
  (the table is in ``whispermedia.errors`` and docs/cli.md).
- A bug (an exception that is not a ``WhisperMediaError``) exits 1; its traceback is shown
  only with ``WM_DEBUG=1``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import click

from whispermedia.errors import (
    EXIT_INTERNAL,
    EXIT_OUTPUT,
    EXIT_USAGE,
    MediaError,
    PluginError,
    WhisperMediaError,
)

from whispermedia.options import COMPUTE_TYPES, PRESETS

DEFAULT_FORMAT = "txt"
DEFAULT_MODEL = "base"


def _debug() -> bool:
    return os.environ.get("WM_DEBUG", "") not in ("", "0")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("whispermedia")
    except Exception:  # running from a source tree that was never installed
        from whispermedia import __version__

        return __version__


def _fail(message: str, code: int = EXIT_USAGE) -> "click.exceptions.Exit":
    """Print one ``wm: ...`` line on stderr and return the exit to raise (no usage banner)."""
    click.echo(f"wm: {message}", err=True)
    return click.exceptions.Exit(code)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_dict(obj: Any) -> Dict[str, Any]:
    """A record (dataclass, namedtuple or plain object) as a JSON-ready dict."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        raw = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif hasattr(obj, "_asdict"):
        raw = obj._asdict()
    else:
        raw = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return {k: _jsonable(v) for k, v in raw.items()}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, BaseException):
        return _describe(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if callable(value):
        return getattr(value, "__qualname__", repr(value))
    return str(value)


# ---------------------------------------------------------------------------------------------
# plugin host


def _host(ctx: click.Context):
    """The plugin host; with ``wm --no-plugins``, one holding the built-ins only.

    That host is installed as the shared one for the rest of the command, so the library
    (language detection, task lookup) sees the same plugins as the CLI.
    """
    from whispermedia.plugins import get_host

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    if obj.get("no_plugins") and obj.get("host") is None:
        from whispermedia.plugins import PluginHost, use_host

        host = PluginHost()
        host.load(entry_points=False)
        root.with_resource(use_host(host))
        obj["host"] = host
    return obj.get("host") or get_host()


class _WmGroup(click.Group):
    """The ``wm`` group; commands from plugins are added the first time they are needed.

    They are added after the group's own options are parsed (so ``--no-plugins`` is honoured),
    never over a built-in command, and a plugin that fails here costs only its commands.
    """

    _plugins_added = False

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        scratch = click.Group("wm")
        try:
            _host(ctx).register_commands(scratch)
        except Exception as e:  # a broken plugin must not break wm
            click.echo(f"wm: plugin commands unavailable: {_describe(e)} (see 'wm plugins')", err=True)
            return
        for name, cmd in scratch.commands.items():
            if name in self.commands:
                click.echo(f"wm: a plugin's command '{name}' is ignored: it is a built-in command", err=True)
                continue
            self.add_command(cmd, name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and not ctx.resilient_parsing:
            self._add_plugin_commands(ctx)
            cmd = super().get_command(ctx, cmd_name)
        return cmd

    def list_commands(self, ctx: click.Context) -> List[str]:
        if not ctx.resilient_parsing:
            self._add_plugin_commands(ctx)
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _warnings_to(lambda m: click.echo(f"wm: warning: {m}", err=True)):
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("\nwm: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except Exception as e:  # a bug: one line, or the traceback with WM_DEBUG=1
            if _debug():
                raise
            raise _fail(f"internal error: {_describe(e)} (WM_DEBUG=1 shows the traceback)", EXIT_INTERNAL) from e


@contextmanager
def _warnings_to(emit: Callable[[str], None]) -> Iterator[None]:
    """Python warnings (a plugin that failed to load, ...) handed to ``emit`` as one line each."""
    previous = warnings.showwarning
    warnings.showwarning = lambda message, *args, **kwargs: emit(str(message))
    try:
        yield
    finally:
        warnings.showwarning = previous


@click.group(cls=_WmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="wm", message="%(prog)s %(version)s")
@click.option(
    "--no-plugins",
    is_flag=True,
    help="Load only the built-in plugins (skip third-party entry points).",
)
@click.pass_context
def cli(ctx: click.Context, no_plugins: bool) -> None:
    """wm: speech in any audio or video file to text and subtitles, offline, with Whisper.

    \b
    Examples:
      wm run --plugin srt video.mp4          writes video.srt beside the video
      wm run --plugin srt --plugin vtt -o subs/ *.mkv
      wm run --plugin translate --plugin srt interview.mov
      wm doctor
    """
    ctx.ensure_object(dict)
    ctx.obj["no_plugins"] = no_plugins


# ---------------------------------------------------------------------------------------------
# wm run: progress and event rendering


class _Reporter:
    """Renders what happens during ``wm run`` on stderr: plain lines, a bar, or JSON lines."""

    def __init__(self, mode: str):
        self.mode = mode
        self._bar_shown = False
        self._last_draw = 0.0

    # JSON lines: one object per line, flushed, so a pipeline can follow along
    def _event(self, **fields: Any) -> None:
        sys.stderr.write(json.dumps(fields, ensure_ascii=False) + "\n")
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

    def progress(self, file: str, p: Any) -> None:
        if self.mode == "json":
            self._event(
                event="progress",
                file=file,
                seconds_done=round(float(p.seconds_done), 3),
                seconds_total=round(float(p.seconds_total), 3),
                segments=int(p.segments),
            )
        elif self.mode == "bar":
            now = time.monotonic()
            done, total = float(p.seconds_done), float(p.seconds_total)
            if now - self._last_draw < 0.1 and done < total:
                return
            self._last_draw = now
            self._draw(file, done, total, int(p.segments))

    def status(self, text: str) -> None:
        """A transient line in the bar's place (bar mode only), e.g. while the model loads."""
        if self.mode == "bar":
            width = shutil.get_terminal_size((80, 24)).columns
            self.clear()
            sys.stderr.write("\r" + text[: width - 1])
            sys.stderr.flush()
            self._bar_shown = True

    def _draw(self, file: str, done: float, total: float, segments: int) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        frac = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
        tail = f" {frac * 100:3.0f}% {_clock(done)}/{_clock(total)} {segments} seg"
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
        runs = ", ".join(f"{lang} {_clock_ms(a)}-{_clock_ms(b)}" for lang, a, b in regions) or "(no speech)"
        self._line(f"{file}: languages by region: {runs}")

    def done(self, file: str, outputs: Sequence[str]) -> None:
        if self.mode == "json":
            self._event(event="done", file=file, outputs=list(outputs))
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


def _clock_ms(seconds: float) -> str:
    m, s = divmod(max(float(seconds), 0.0), 60)
    return f"{int(m)}:{s:04.1f}"


def language_regions(segments: Sequence[Any]) -> List[Tuple[str, float, float]]:
    """Runs of consecutive segments in one language: (language, start, end), in time order."""
    runs: List[Tuple[str, float, float]] = []
    for seg in segments:
        lang = getattr(seg, "language", None)
        if lang is None or not seg.text.strip():
            continue
        if runs and runs[-1][0] == lang:
            runs[-1] = (lang, runs[-1][1], seg.end)
        else:
            runs.append((lang, seg.start, seg.end))
    return runs


def _clock(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ---------------------------------------------------------------------------------------------
# wm run: resolving what to do before anything heavy happens


def _split_names(values: Sequence[str]) -> List[str]:
    names: List[str] = []
    for value in values:
        names.extend(n.strip() for n in value.split(",") if n.strip())
    return names


def _resolve_plugins(host: Any, names: Sequence[str], task_option: Optional[str]) -> Tuple[List[Any], str]:
    """``--plugin`` names → (output formats, task name); raises Exit(2) on a bad name."""
    tasks = dict(host.tasks())
    known = ", ".join(sorted(set(host.output_formats()) | set(tasks))) or "(none)"
    formats: List[Any] = []
    task_from_plugin: Optional[Tuple[str, str]] = None  # (task name, plugin name as typed)
    for name in names:
        try:
            obj = host.resolve(name)
        except PluginError:
            raise _fail(f"unknown plugin '{name}' (known: {known})") from None
        if hasattr(obj, "task_token"):
            if task_from_plugin and task_from_plugin[0] != obj.name:
                raise _fail(f"conflicting tasks: --plugin {task_from_plugin[1]} and --plugin {name}")
            task_from_plugin = (obj.name, name)
        elif all(f.name != obj.name for f in formats):
            formats.append(obj)
    task = task_from_plugin[0] if task_from_plugin else None
    if task_option is not None:
        if task_option not in tasks:
            raise _fail(f"unknown task '{task_option}' (known: {', '.join(sorted(tasks)) or '(none)'})")
        if task_from_plugin and task != task_option:
            raise _fail(f"conflicting tasks: --plugin {task_from_plugin[1]} and --task {task_option}")
        task = task_option
    if not formats:
        formats.append(host.resolve(DEFAULT_FORMAT))
    return formats, task or "transcribe"


def _normalize_language(language: Optional[str]) -> Optional[str]:
    """A language code, or None for detection; raises Exit(2) for one Whisper does not know."""
    if language is None or language.lower() == "auto":
        return None
    try:
        from whispermedia.tokenizer import normalize_language
    except ImportError:
        return language
    try:
        return normalize_language(language)
    except ValueError as e:
        raise _fail(str(e)) from None


def _decoding_options(**given: Any) -> Dict[str, Any]:
    """The decoding options the user gave (None = not given, so the preset's and the library's
    defaults hold)."""
    options = {k: v for k, v in given.items() if v is not None}
    increment = options.pop("temperature_increment_on_fallback", None)
    if "temperature" in options:
        try:
            temps = tuple(float(t) for t in str(options["temperature"]).split(",") if t.strip())
        except ValueError:
            raise _fail(f"--temperature: expected numbers separated by commas: {options['temperature']!r}") from None
        options["temperature"] = temps[0] if len(temps) == 1 else temps
    if increment is not None:
        start = options.get("temperature", 0.0)
        if not isinstance(start, float):
            raise _fail("--temperature-increment-on-fallback needs one --temperature (the first of the schedule)")
        # openai's schedule: numpy.arange(start, 1.0 + 1e-6, increment)
        count = max(math.ceil((1.0 + 1e-6 - start) / increment), 1)
        options["temperature"] = tuple(start + i * increment for i in range(count))
    if "suppress_tokens" in options:
        try:
            [int(t) for t in options["suppress_tokens"].split(",") if t.strip()]
        except ValueError:
            raise _fail(f"--suppress-tokens: expected token ids separated by commas: {options['suppress_tokens']!r}") from None
    if "clip_timestamps" in options:
        try:
            [float(t) for t in options["clip_timestamps"].split(",") if t.strip()]
        except ValueError:
            raise _fail(f"--clip-timestamps: expected seconds separated by commas: {options['clip_timestamps']!r}") from None
    try:
        from whispermedia.options import TranscribeOptions

        TranscribeOptions.from_kwargs(**options)  # fail fast, before the model loads
    except (TypeError, ValueError) as e:
        raise _fail(f"invalid decoding options: {e}") from None
    return options


def _default_device() -> str:
    """cuda when torch sees a GPU, else cpu (the library itself defaults to the CPU)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _precheck_input(source: str) -> None:
    """Cheap checks that spare a model load for an input that cannot work."""
    if source == "-" or "://" in source:
        return  # stdin and URLs are the media layer's business
    path = Path(source)
    if not path.exists():
        raise MediaError("no such file", source)
    if path.is_dir():
        raise MediaError("is a directory", source)
    if path.stat().st_size == 0:
        raise MediaError("empty file (0 bytes)", source)


# ---------------------------------------------------------------------------------------------
# wm run


@cli.command("run", context_settings={"show_default": True})
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--plugin",
    "-p",
    "plugins",
    multiple=True,
    metavar="NAME",
    help="An output format (srt, vtt, txt, ...) or a task (transcribe, translate). "
    "Repeatable; commas also separate names. No format named: txt.",
)
@click.option("--model", "-m", default=DEFAULT_MODEL, metavar="NAME|PATH", help="Registry name, model file or folder.")
@click.option("--language", "-l", default=None, metavar="CODE|auto", help="Spoken language; auto or omitted: detect.")
@click.option("--task", default=None, metavar="NAME", help="transcribe or translate (any registered task).")
@click.option(
    "--output-dir",
    "-o",
    default=None,
    type=click.Path(file_okay=False),
    help="Write outputs here instead of beside each input.",
)
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist (otherwise such an input is skipped).")
@click.option("--audio-stream", default=None, type=click.IntRange(min=0), metavar="N", help="Audio stream index.")
@click.option("--device", default=None, type=click.Choice(["cpu", "cuda"]), help="Default: cuda when available.")
@click.option(
    "--compute-type",
    default="float32",
    show_default=True,
    type=click.Choice(list(COMPUTE_TYPES)),
    help="How the CPU computes: float32 is exact; the others round weights or activations for speed "
    "(docs/benchmarks.md, Compute types).",
)
@click.option(
    "--progress",
    "progress_mode",
    default="auto",
    type=click.Choice(["auto", "bar", "json", "none"]),
    help="auto: a bar when stderr is a terminal; json: JSON lines on stderr.",
)
@click.option(
    "--preset",
    default=None,
    type=click.Choice(list(PRESETS)),
    help="Decoding strategy (docs/cli.md): openai is the whisper command's defaults (beam 5, fallback, "
    "conditioning). Decoding options given beside it win.  [default: default]",
)
@click.option(
    "--language-per-region",
    is_flag=True,
    default=None,
    help="Detect the language of every window, not only the first, and transcribe each in its own.",
)
@click.option("--temperature", default=None, metavar="T[,T...]", help="Temperature, or a fallback schedule.")
@click.option(
    "--temperature-increment-on-fallback",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    metavar="X",
    help="With one --temperature T: the schedule T, T+X, ... up to 1 (openai's option).",
)
@click.option("--beam-size", default=None, type=click.IntRange(min=1), help="Beams at temperature 0.")
@click.option("--best-of", default=None, type=click.IntRange(min=1), help="Samples at temperature > 0.")
@click.option("--patience", default=None, type=click.FloatRange(min=0, min_open=True), help="Beam search patience.")
@click.option("--length-penalty", default=None, type=click.FloatRange(0, 1), help="Length penalty alpha.")
@click.option(
    "--condition-on-previous-text/--no-condition-on-previous-text",
    default=None,
    help="Prompt each window with the previous one's text.",
)
@click.option("--initial-prompt", default=None, metavar="TEXT", help="Prompt text for the first window.")
@click.option(
    "--carry-initial-prompt", is_flag=True, default=None, help="Put the initial prompt before every window's prompt."
)
@click.option("--prefix", default=None, metavar="TEXT", help="Text every window's transcript must start with.")
@click.option("--suppress-tokens", default=None, metavar="IDS", help="Token ids to suppress; -1: the model's set.")
@click.option(
    "--suppress-blank/--no-suppress-blank", default=None, help="Never start a window with a blank."
)
@click.option("--without-timestamps", is_flag=True, default=None, help="Decode text only (one segment a window).")
@click.option(
    "--max-initial-timestamp", default=None, type=click.FloatRange(min=0), metavar="S", help="Latest first timestamp."
)
@click.option(
    "--clip-timestamps", default=None, metavar="S,E,...", help="Only these stretches: start,end,start,end,... seconds."
)
@click.option("--word-timestamps", is_flag=True, default=None, help="Compute word timing.")
@click.option("--prepend-punctuations", default=None, metavar="CHARS", help="Merged with the next word.")
@click.option("--append-punctuations", default=None, metavar="CHARS", help="Merged with the previous word.")
@click.option(
    "--hallucination-silence-threshold",
    default=None,
    type=click.FloatRange(min=0),
    metavar="S",
    help="With word timing: skip silences longer than S around a likely hallucination.",
)
@click.option("--compression-ratio-threshold", default=None, type=float, help="Fall back above this gzip ratio.")
@click.option("--logprob-threshold", default=None, type=float, help="Fall back below this mean log-probability.")
@click.option("--no-speech-threshold", default=None, type=float, help="Silence when no-speech p exceeds this.")
@click.pass_context
def run_command(
    ctx: click.Context,
    inputs: Tuple[str, ...],
    plugins: Tuple[str, ...],
    model: str,
    language: Optional[str],
    task: Optional[str],
    output_dir: Optional[str],
    overwrite: bool,
    audio_stream: Optional[int],
    device: Optional[str],
    compute_type: str,
    progress_mode: str,
    **decoding: Any,
) -> None:
    """Transcribe (or translate) each FILE and write the requested outputs.

    Each output goes beside its input (or into --output-dir) and its path is printed on
    stdout. An input whose output exists is skipped unless --overwrite is given. A failing
    input does not stop the others; the exit code is the first failure's.
    """
    if progress_mode == "auto":
        progress_mode = "bar" if sys.stderr.isatty() else "none"
    reporter = _Reporter(progress_mode)
    with _warnings_to(reporter.warning):
        # everything that can be checked without the model is checked first
        try:
            formats, task_name = _resolve_plugins(_host(ctx), _split_names(plugins), task)
        except WhisperMediaError as e:
            raise _fail(str(e), e.exit_code) from None
        lang = _normalize_language(language)
        if decoding.get("language_per_region") and lang is not None:
            raise _fail("--language-per-region detects the language of every window: leave --language out (or auto)")
        if any(getattr(f, "needs_words", False) for f in formats) and decoding.get("word_timestamps") is None:
            decoding["word_timestamps"] = True
        options = _decoding_options(**decoding)
        code = _run_inputs(
            reporter,
            inputs,
            fmt_names=[f.name for f in formats],
            task=task_name,
            model=model,
            language=lang,
            output_dir=output_dir,
            overwrite=overwrite,
            audio_stream=audio_stream,
            device=device,
            compute_type=compute_type,
            options=options,
        )
    ctx.exit(code)


def _run_inputs(
    reporter: _Reporter,
    inputs: Sequence[str],
    *,
    fmt_names: Sequence[str],
    task: str,
    model: str,
    language: Optional[str],
    output_dir: Optional[str],
    overwrite: bool,
    audio_stream: Optional[int],
    device: Optional[str],
    options: Dict[str, Any],
    compute_type: str = "float32",
) -> int:
    """Process every input; returns the exit code (the first failure's, else 0)."""
    import whispermedia
    from whispermedia import output as wm_output

    first_failure = 0
    loaded: List[Any] = []  # the model, loaded once, on the first input that needs it
    claimed: Dict[Path, str] = {}  # output path -> the input that writes it in this run

    def fail(file: Optional[str], code: int, message: str, tb: Optional[str] = None) -> None:
        nonlocal first_failure
        reporter.error(file, code, message, tb)
        if not first_failure:
            first_failure = code

    if output_dir is not None:
        try:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            fail(None, EXIT_OUTPUT, f"{output_dir}: cannot create output folder: {e.strerror or e}")
            return first_failure

    for source in inputs:
        try:
            _precheck_input(source)
            targets = [(name, Path(wm_output.output_path(source, name, output_dir))) for name in fmt_names]
            problems = _target_problems([t for _, t in targets], claimed, overwrite)
            for problem in problems:
                fail(source, EXIT_OUTPUT, problem)
            if problems:
                continue  # skipped before any work: nothing of this input is written

            if not loaded:
                reporter.status(f"loading model {model}...")
                try:
                    loaded.append(whispermedia.load_model(model, device=device or _default_device(),
                                                          compute_type=compute_type))
                except WhisperMediaError as e:
                    # no input can be transcribed without the model: stop here
                    fail(None, e.exit_code, f"{e.path or model}: {e.message}")
                    return first_failure

            reporter.status(f"{Path(source).name}: reading audio...")

            def on_progress(p: Any, _source: str = source) -> None:
                reporter.progress(_source, p)

            transcript = whispermedia.transcribe(
                source,
                model=loaded[0],
                language=language,
                task=task,
                audio_stream=audio_stream,
                progress=on_progress,
                **options,
            )
            if language is None:
                info = transcript.info
                reporter.language(source, info.language, info.language_probability)
            if options.get("language_per_region"):
                reporter.regions(source, language_regions(transcript.segments))

            reporter.clear()  # the paths go to stdout, often the same terminal as the bar
            written: List[str] = []
            for name, target in targets:
                try:
                    path = wm_output.write(transcript, name, target, overwrite=overwrite)
                except WhisperMediaError as e:
                    fail(source, e.exit_code, f"{e.path or target}: {e.message}")
                    continue
                claimed[Path(path).resolve()] = source
                written.append(str(path))
                click.echo(str(path))
            reporter.done(source, written)
        except WhisperMediaError as e:
            fail(source, e.exit_code, f"{e.path or source}: {e.message}")
        except Exception as e:
            tb = traceback.format_exc() if _debug() else None
            hint = "" if tb else " (WM_DEBUG=1 shows the traceback)"
            fail(source, EXIT_INTERNAL, f"{source}: internal error: {_describe(e)}{hint}", tb)
    return first_failure


def _target_problems(targets: Sequence[Path], claimed: Dict[Path, str], overwrite: bool) -> List[str]:
    """Why an input's outputs must not be written (one message each), or nothing."""
    problems = []
    for target in targets:
        other = claimed.get(target.resolve())
        if other is not None:
            problems.append(f"{target}: also the output of {other} (use --output-dir or rename)")
        elif os.path.lexists(target) and not overwrite:
            problems.append(f"{target}: exists (use --overwrite)")
    return problems


# ---------------------------------------------------------------------------------------------
# wm doctor


def _section(fn: Callable[[], Any]) -> Any:
    """Run one doctor probe; a probe that fails reports its error instead of stopping doctor."""
    try:
        return fn()
    except Exception as e:
        if _debug():
            traceback.print_exc()
        return {"error": _describe(e)}


def _doctor_torch() -> Dict[str, Any]:
    import torch

    gpu = bool(torch.cuda.is_available())
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if gpu else []
    return {"version": torch.__version__, "cuda": torch.version.cuda, "gpu_available": gpu, "devices": devices}


def _doctor_backend() -> Dict[str, Any]:
    from whispermedia.ops import backend_info

    return _jsonable(dict(backend_info()))


def _doctor_model() -> Dict[str, Any]:
    from whispermedia.models import list_models

    entries = list_models()
    default = next((m for m in entries if m.default), None)
    if default is None:
        return {"error": "the registry names no default model"}
    return _as_dict(default)


def _doctor_plugins(ctx: click.Context) -> Dict[str, Any]:
    host = _host(ctx)
    return {
        "loaded": [p.name for p in host.plugins()],
        "failures": [_as_dict(f) for f in host.failures],
    }


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def doctor_command(ctx: click.Context, as_json: bool) -> None:
    """Report the environment: versions, GPU, compiled ops, default model, plugin failures."""
    report = {
        "whispermedia": _version(),
        "python": {
            "version": platform.python_version(),
            "executable": sys.executable,
            "platform": f"{platform.system()} {platform.machine()}",
        },
        "torch": _section(_doctor_torch),
        "extension": _section(_doctor_backend),
        "default_model": _section(_doctor_model),
        "plugins": _section(lambda: _doctor_plugins(ctx)),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for line in _doctor_lines(report):
        click.echo(line)


def _doctor_lines(r: Dict[str, Any]) -> Iterator[str]:
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
        yield f"model         {m['name']} (default): NOT installed; {m.get('install_command')}"

    p = r["plugins"]
    if err(p):
        yield f"plugins       unavailable: {err(p)}"
    else:
        yield f"plugins       {len(p['loaded'])} loaded, {len(p['failures'])} failed"
        for f in p["failures"]:
            yield f"  FAILED {_failure_line(f)}"


# ---------------------------------------------------------------------------------------------
# wm models / wm plugins


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def models_command(as_json: bool) -> None:
    """List the registry's models, installed or not, and how to install the missing ones."""
    from whispermedia.models import list_models

    entries = [_as_dict(m) for m in list_models()]
    if as_json:
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    width = max([len(e["name"]) for e in entries] + [4])
    for e in entries:
        mark = "*" if e.get("default") else " "
        state = "installed" if e.get("installed") else "missing  "
        click.echo(f"{mark} {e['name']:<{width}}  {state}  {e.get('description') or ''}")
        if not e.get("installed") and e.get("install_command"):
            click.echo(f"  {'':<{width}}  install: {e['install_command']}")
    click.echo("(* default; a model file or folder of your own also works: wm run --model PATH)")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List plugins with their hooks, the names --plugin accepts, and plugins that failed to load."""
    host = _host(ctx)
    plugins = [_as_dict(p) for p in host.plugins()]
    failures = [_as_dict(f) for f in host.failures]
    formats = [_named(f, "name", "extension", "help") for f in host.output_formats().values()]
    tasks = [_named(t, "name", "help") for t in host.tasks().values()]
    if as_json:
        report = {"plugins": plugins, "failures": failures, "output_formats": formats, "tasks": tasks}
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for p in plugins:
        origin = "built-in" if p.get("builtin") else f"{p.get('dist_name') or '?'} {p.get('version') or ''}".strip()
        click.echo(f"{p['name']}  ({origin})")
        hooks = p.get("hooks") or []
        if hooks:
            click.echo(f"    hooks: {', '.join(hooks)}")
    if formats:
        click.echo("output formats: " + ", ".join(f["name"] for f in formats))
    if tasks:
        click.echo("tasks: " + ", ".join(t["name"] for t in tasks))
    for f in failures:
        click.echo(f"FAILED {_failure_line(f)}")


def _failure_line(f: Dict[str, Any]) -> str:
    stage = f.get("stage")
    where = f" in {stage}" if stage and stage != "load" else ""
    return f"{f.get('name')} ({f.get('dist') or 'no distribution'}){where}: {f.get('error_text') or f.get('error')}"


def _named(obj: Any, *fields: str) -> Dict[str, Any]:
    return {f: _jsonable(getattr(obj, f, None)) for f in fields}


# ---------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point (``wm``) and ``python -m whispermedia``."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="wm")


if __name__ == "__main__":  # pragma: no cover
    main()
