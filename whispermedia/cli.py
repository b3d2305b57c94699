"""The ``wm`` command: a thin client of the public API.

The library never prints; this module holds the commands and ``whispermedia.cli_render``
renders. Conventions every command keeps:

- stdout carries results only (``wm run`` prints one written path per line), so scripts can
  capture it; everything else goes to stderr.
- A problem with one input is one stderr line, ``wm: <path>: <problem>``, with no traceback;
  ``wm run`` goes on with the other inputs and exits with the first failure's code
  (``cli_render.EXIT_CODES``, docs/cli.md).
- A bug (an exception that is not a ``WhisperMediaError``) exits 1; its traceback is shown
  only with ``WM_DEBUG=1``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import click

from whispermedia.cli_options import (GroupedCommand, GroupedOption, batch_option_params, batch_options_from_cli, flag_of,
                                      options_from_cli, transcribe_option_params)
from whispermedia.cli_render import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Reporter,
    describe,
    doctor_lines,
    exit_code_for,
    failure_line,
    fields_of,
    jsonable,
    record,
)
from whispermedia.cli_run import Run, RunPlan
from whispermedia.constants import DEFAULT_MODEL
from whispermedia.errors import PluginError, WhisperMediaError
from whispermedia.layout.settings import check_shot_changes, needs_word_timestamps
from whispermedia.options import COMPUTE_TYPES, OptionError, TranscribeOptions
from whispermedia.run_options import run_option_names, run_option_params, run_options_from_cli
from whispermedia.speech import backend_for

DEFAULT_FORMAT = "txt"
# openai-whisper's --output_format all: every format it writes
_OPENAI_ALL_FORMATS = ("txt", "vtt", "srt", "tsv", "json")


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
            with _warnings_to(lambda m: click.echo(f"wm: warning: {m}", err=True)):
                _host(ctx).register_commands(scratch)
        except Exception as e:  # a broken plugin must not break wm
            click.echo(f"wm: plugin commands unavailable: {describe(e)} (see 'wm plugins')", err=True)
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
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except Exception as e:  # a bug: one line, or the traceback with WM_DEBUG=1
            if _debug():
                raise
            raise _fail(f"internal error: {describe(e)} (WM_DEBUG=1 shows the traceback)", EXIT_INTERNAL) from e


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
# wm run: resolving what to do before anything heavy happens


def _split_names(values: Sequence[str]) -> List[str]:
    names: List[str] = []
    for value in values:
        for name in (n.strip() for n in value.split(",")):
            if name == "all":  # openai-whisper's --output_format all
                names.extend(_OPENAI_ALL_FORMATS)
            elif name:
                names.append(name)
    return names


def _resolve_plugins(host: "PluginHost", names: Sequence[str],
                     task_option: Optional[str]) -> Tuple[List["OutputFormat"], str]:
    """``--plugin`` names -> (output formats, task name); raises Exit(2) on a bad name."""
    from whispermedia.registry import Task

    tasks = dict(host.tasks())
    known = ", ".join(sorted(set(host.output_formats()) | set(tasks))) or "(none)"
    formats: List[Any] = []
    task_from_plugin: Optional[Tuple[str, str]] = None  # (task name, plugin name as typed)
    for name in names:
        try:
            obj = host.resolve(name)
        except PluginError:
            raise _fail(f"unknown plugin '{name}' (known: {known})") from None
        if isinstance(obj, Task):
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


def _stream_request(value: Optional[str]) -> Any:
    from whispermedia.audio_streams import parse_request

    try:
        return parse_request(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _default_device() -> str:
    """cuda when torch sees a GPU, else cpu (the library itself defaults to the CPU)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------------------------------
# wm run


@cli.command("run", cls=GroupedCommand, context_settings={"show_default": True})
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--plugin",
    "-p",
    "plugins",
    multiple=True,
    metavar="NAME",
    cls=GroupedOption,
    group="output",
    help="An output format (srt, vtt, txt, ...) or a task (transcribe, translate). "
    "Repeatable; commas also separate names. No format named: txt.",
)
@click.option(
    "--output-dir",
    "-o",
    default=None,
    type=click.Path(file_okay=False),
    cls=GroupedOption,
    group="output",
    help="Write outputs here instead of beside each input.",
)
@click.option("--overwrite", is_flag=True, cls=GroupedOption, group="output",
              help="Replace outputs that exist (otherwise such an input is skipped).")
@click.option(
    "--progress",
    "progress_mode",
    default="auto",
    type=click.Choice(["auto", "bar", "json", "none"]),
    cls=GroupedOption,
    group="output",
    help="auto: a bar when stderr is a terminal; json: JSON lines on stderr.",
)
@click.option("--model", "-m", default=DEFAULT_MODEL, metavar="NAME|PATH", cls=GroupedOption, group="input",
              help="Registry name, model file or folder.")
@click.option("--audio-stream", default=None, callback=lambda ctx, param, value: _stream_request(value),
              metavar="N|lang:TAG", cls=GroupedOption, group="input",
              help="Audio stream: an index (0-based among audio streams) or a language tag (lang:eng). "
              "Default: the stream flagged default, else the first.")
@click.option("--device", default=None, type=click.Choice(["cpu", "cuda"]), cls=GroupedOption, group="input",
              help="Default: cuda when available.")
@click.option(
    "--compute-type",
    default="float32",
    type=click.Choice(list(COMPUTE_TYPES)),
    cls=GroupedOption,
    group="input",
    help="How the CPU computes: float32 is exact; the others round weights or activations for speed "
    "(docs/benchmarks.md, Compute types).",
)
# openai-whisper's spellings of the run's own options (hidden; docs/cli.md lists them)
@click.option("--output_format", "openai_formats", multiple=True, hidden=True)
@click.option("--output_dir", "openai_output_dir", default=None, hidden=True, type=click.Path(file_okay=False))
@click.option("--fp16", "openai_fp16", default=None, hidden=True)  # accepted and ignored: the dtype follows the model
@click.pass_context
def run_command(ctx: click.Context, inputs: Tuple[str, ...], plugins: Tuple[str, ...], output_dir: Optional[str],
                overwrite: bool, progress_mode: str, model: str, audio_stream: Optional[int], device: Optional[str],
                compute_type: str, openai_formats: Tuple[str, ...], openai_output_dir: Optional[str],
                openai_fp16: Optional[str], **option_values: Any) -> None:
    """Transcribe (or translate) each FILE and write the requested outputs.

    Each output goes beside its input (or into --output-dir) and its path is printed on
    stdout. An output that exists is kept (a skip, exit 0) unless --overwrite is given. FILE
    '-' is stdin (outputs stdin.<ext>, in --output-dir or here). Every input is checked before
    the model loads; a failing input does not stop the others; the exit code is the first
    failure's. A FILE that is a folder gives its media files (Folders, manifest and Ray).
    """
    run_values = {name: option_values.pop(name) for name in run_option_names()}
    try:
        run_options = run_options_from_cli(run_values)
    except ValueError as e:
        raise _fail(str(e)) from None
    if progress_mode == "auto":
        progress_mode = "bar" if sys.stderr.isatty() else "none"
    reporter = Reporter(progress_mode)
    from whispermedia.output import check_format

    with _warnings_to(reporter.warning):
        # everything that can be checked without the model is checked first
        try:
            names = _split_names(plugins + openai_formats)
            formats, task_name = _resolve_plugins(_host(ctx), names, option_values.get("task"))
            for fmt in formats:  # a format that needs a missing extra fails before any model loads
                check_format(fmt)
        except WhisperMediaError as e:
            raise _fail(str(e), exit_code_for(e)) from None
        settled: Dict[str, Any] = {"task": task_name}
        if any(f.needs_words for f in formats):
            settled["word_timestamps"] = True
        try:
            batch = batch_options_from_cli(option_values)
            options = options_from_cli(option_values, **settled)
            if any(f.uses_layout for f in formats):
                check_shot_changes(options)
                if needs_word_timestamps(options):
                    # the layout engine breaks cues between words (docs/cli.md, "Subtitle layout")
                    options = options_from_cli(option_values, **{**settled, "word_timestamps": True})
        except OptionError as e:
            raise _fail(e.render(flag_of)) from None
        try:  # an unknown --vad name is the command line's mistake, found before any input is read
            backend_for(options)
        except WhisperMediaError as e:
            raise _fail(str(e), exit_code_for(e)) from None
        plan = RunPlan(formats=tuple(f.name for f in formats), model=model, device=device,
                       compute_type=compute_type, options=options, output_dir=output_dir or openai_output_dir,
                       overwrite=overwrite, audio_stream=audio_stream, qc=run_options.qc, batch=batch)
        try:
            code = Run(plan, reporter, _default_device, _debug(), run_options).all(inputs)
        except WhisperMediaError as e:  # --ray without the ray extra
            raise _fail(str(e), exit_code_for(e)) from None
    ctx.exit(code)


run_command.params.extend(transcribe_option_params())
run_command.params.extend(batch_option_params())
run_command.params.extend(run_option_params())


# ---------------------------------------------------------------------------------------------
# wm doctor


def _section(fn: Callable[[], Any]) -> Any:
    """Run one doctor probe; a probe that fails reports its error instead of stopping doctor."""
    try:
        return fn()
    except Exception as e:
        if _debug():
            traceback.print_exc()
        return {"error": describe(e)}


def _doctor_torch() -> Dict[str, Any]:
    import torch

    gpu = bool(torch.cuda.is_available())
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if gpu else []
    return {"version": torch.__version__, "cuda": torch.version.cuda, "gpu_available": gpu, "devices": devices}


def _doctor_backend() -> Dict[str, Any]:
    from whispermedia.ops import backend_info

    return jsonable(dict(backend_info()))


def _doctor_model() -> Dict[str, Any]:
    from whispermedia.model_registry import list_models

    entries = list_models()
    default = next((m for m in entries if m.default), None)
    if default is None:
        return {"error": "the registry names no default model"}
    return _with_install_argv(record(default))


def _doctor_plugins(ctx: click.Context) -> Dict[str, Any]:
    host = _host(ctx)
    return {
        "loaded": [p.name for p in host.plugins()],
        "failures": [record(f) for f in host.failures],
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
    for line in doctor_lines(report):
        click.echo(line)


# ---------------------------------------------------------------------------------------------
# wm models / wm plugins


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def models_command(as_json: bool) -> None:
    """List the registry's models, installed or not, and how to install the missing ones."""
    from whispermedia.model_registry import list_models

    entries = [_with_install_argv(record(m)) for m in list_models()]
    if as_json:
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    width = max([len(e["name"]) for e in entries] + [4])
    for e in entries:
        mark = "*" if e.get("default") else " "
        state = "installed" if e.get("installed") else "missing  "
        click.echo(f"{mark} {e['name']:<{width}}  {state}  {e.get('description') or ''}")
        if not e.get("installed") and e.get("install_command"):
            click.echo(f"  {'':<{width}}  install: {shlex.join(e['install_command'])}")
    click.echo("(* default; a model file or folder of your own also works: wm run --model PATH)")


def _with_install_argv(entry: Dict[str, Any]) -> Dict[str, Any]:
    """A model record whose ``install_command`` is an argv list (``subprocess.run`` takes it as
    it is): the registry's text, without its shell comment (the alternative packages are the
    record's ``packages``)."""
    text = entry.get("install_command")
    if isinstance(text, str):
        entry = {**entry, "install_command": shlex.split(text, comments=True)}
    return entry


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List plugins with their hooks, the names --plugin and --vad accept, and plugins that failed to load."""
    host = _host(ctx)
    plugins = [record(p) for p in host.plugins()]
    failures = [record(f) for f in host.failures]
    formats = [fields_of(f, "name", "extension", "help") for f in host.output_formats().values()]
    tasks = [fields_of(t, "name", "help") for t in host.tasks().values()]
    vads = [fields_of(b, "name", "help") for b in host.speech_backends().values()]
    if as_json:
        report = {"plugins": plugins, "failures": failures, "output_formats": formats, "tasks": tasks,
                  "speech_backends": vads}
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
    if vads:
        click.echo("voice activity detectors (--vad): " + ", ".join(b["name"] for b in vads))
    for f in failures:
        click.echo(f"FAILED {failure_line(f)}")


# ---------------------------------------------------------------------------------------------
# commands that live in their own modules

from whispermedia.cli_probe import probe_command  # noqa: E402 (attached after the group exists)

cli.add_command(probe_command)


# ---------------------------------------------------------------------------------------------


from whispermedia.cli_qc import qc_command  # noqa: E402 (wm qc, in its own module)

cli.add_command(qc_command)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point (``wm``) and ``python -m whispermedia``."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="wm")


if __name__ == "__main__":  # pragma: no cover
    main()
