"""The work of one input of ``wm run``: transcribe it and write its outputs. One code path.

``wm run`` calls ``work`` for each planned input in its own process; ``wm run --ray`` calls the
same ``work`` inside Ray actors (``whispermedia.ray``), so both write through the same plugins,
the same atomic writer and the same rules (an output that appeared since the plan is kept, not
clobbered). ``work`` never raises for a problem of the input: every failure is reported
through the reporter as it happens and returned in the ``Outcome`` with its exit code, so a
scheduler records it and goes on. Only ``KeyboardInterrupt`` (and process death) escape.
"""

from __future__ import annotations

import os
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple

from whispermedia.cli_render import EXIT_INTERNAL, EXIT_OUTPUT, EXIT_USAGE, describe, exit_code_for
from whispermedia.errors import OutputError, WhisperMediaError
from whispermedia.options import OptionError


@dataclass
class Job:
    """One input with work: the outputs to write (format, path) and those kept."""

    given: str
    writes: List[Tuple[str, Path]]
    kept: List[Path]
    opened: Any = None  # cli_inputs.Input once probed (the plan probes; a Ray actor opens it itself)
    replace: bool = False  # write over existing outputs (--overwrite, or --resume redoing the input)
    found: Any = None  # folders.Found
    fingerprint: Any = None  # manifest.Fingerprint, when already taken
    said: List[str] = field(default_factory=list)  # the detected language, once reported


@dataclass
class Outcome:
    """What ``work`` did: outputs written and kept, failures as (exit code, line), warnings."""

    written: List[str] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)
    errors: List[Tuple[int, str]] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    audio_seconds: Optional[float] = None
    seconds: float = 0.0
    stop_run: bool = False  # an option only the model could refuse: every input would fail alike


def work(plan: Any, job: Job, model: Any, reporter: Any, echo: Callable[[str], None], debug: bool = False,
         on_written: Optional[Callable[[str, Any], None]] = None, transcript: Any = None,
         made: Any = None) -> Outcome:
    """Transcribe ``job``'s input with ``model`` as ``plan`` (``cli_run.RunPlan``) says and write
    its outputs; ``echo`` gets each written path (wm run prints it on stdout), then
    ``on_written(path, transcript)`` is called with it. ``transcript``: the input's transcript
    made already (by the batch scheduler, from ``stream_of``), or the exception that stopped it:
    only the writing is left; ``made`` is then the scheduler's ``FileReport`` of it (the warnings
    it raised, shown already, and its decoding time), counted in the outcome."""
    outcome = Outcome(kept=[str(t) for t in job.kept])
    started = time.monotonic()
    if made is not None:
        outcome.warnings.extend(made.warnings)
        started -= made.seconds

    def fail(code: int, message: str, tb: Optional[str] = None) -> None:
        reporter.error(job.given, code, message, tb)
        outcome.errors.append((code, message))

    try:
        with _collecting_warnings(outcome.warnings):
            _transcribe_and_write(plan, job, model, reporter, echo, outcome, fail, on_written, transcript)
    except WhisperMediaError as e:
        fail(exit_code_for(e), f"{e.path or job.given}: {e.message}")
    except OptionError as e:  # only the model can tell (a token id outside its vocabulary)
        from whispermedia.cli_options import flag_of

        fail(EXIT_USAGE, e.render(flag_of))
        outcome.stop_run = True
    except Exception as e:
        tb = traceback.format_exc() if debug else None
        hint = "" if tb else " (WM_DEBUG=1 shows the traceback)"
        fail(EXIT_INTERNAL, f"{job.given}: internal error: {describe(e)}{hint}", tb)
    outcome.seconds = time.monotonic() - started
    return outcome


@contextmanager
def _collecting_warnings(into: List[str]) -> Iterator[None]:
    """Python warnings raised while one input is worked on, kept for its manifest record and
    still shown as before (the CLI turns them into ``wm: warning:`` lines)."""
    shown = warnings.showwarning
    with warnings.catch_warnings():  # also forgets which warnings were shown: each input says its own

        def show(message: Any, *args: Any, **kwargs: Any) -> None:
            into.append(str(message))
            shown(message, *args, **kwargs)

        warnings.showwarning = show
        yield


def _prepare(plan: Any, job: Job, reporter: Any) -> Tuple[Any, Any, Callable[[Any], None]]:
    """The job's audio, its audio stream and its progress callback (the stream reported)."""
    from whispermedia import cli_inputs

    source = job.given
    if job.opened is None:  # a Ray actor: the plan ran on another machine
        job.opened = cli_inputs.open_input(source, plan.audio_stream)
    opened = job.opened
    if opened.choice is not None and len(opened.choice.streams) > 1:
        reporter.stream(source, opened.choice)
    reporter.status(f"{Path(source).name}: reading audio...")
    audio_stream = None if opened.choice is None else opened.choice.index
    said = job.said  # the detected language, said as soon as a progress report carries it

    def progress(p: Any) -> None:
        if plan.options.language is None and not said and getattr(p, "language", None):
            said.append(p.language)
            reporter.language(source, p.language, p.language_probability)
        reporter.progress(source, p)

    return opened.audio, audio_stream, progress


def stream_of(plan: Any, job: Job, model: Any, reporter: Any) -> Any:
    """The job's ``TranscriptStream``, for the batch scheduler (``whispermedia.scheduler``),
    whose transcript then goes to ``work(..., transcript=)``."""
    import whispermedia

    audio, audio_stream, progress = _prepare(plan, job, reporter)
    return whispermedia.stream(audio, model=model, options=plan.options, audio_stream=audio_stream,
                               progress=progress)


def _transcribe_and_write(plan: Any, job: Job, model: Any, reporter: Any, echo: Callable[[str], None],
                          outcome: Outcome, fail: Callable[..., None],
                          on_written: Optional[Callable[[str, Any], None]], transcript: Any = None) -> None:
    import whispermedia
    from whispermedia import output as wm_output

    source = job.given
    if transcript is None:
        audio, audio_stream, progress = _prepare(plan, job, reporter)
        transcript = whispermedia.transcribe(audio, model=model, options=plan.options,
                                             audio_stream=audio_stream, progress=progress)
    elif isinstance(transcript, BaseException):
        raise transcript
    said = job.said
    outcome.audio_seconds = getattr(transcript.info, "duration", None)
    if plan.options.language is None and not said:
        info = transcript.info
        reporter.language(source, info.language, info.language_probability)
    if plan.options.language_per_region:
        reporter.regions(source, transcript.language_regions())

    reporter.clear()  # the paths go to stdout, often the same terminal as the bar
    replace = job.replace or plan.overwrite
    for name, target in job.writes:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)  # --output-dir: made when first written to
            path = wm_output.write(transcript, name, target, overwrite=replace)
        except OutputError as e:
            if not replace and os.path.lexists(target) and not target.is_dir():
                outcome.kept.append(str(target))  # appeared since the plan: kept, as planned ones are
                reporter.skipped(source, str(target))
                continue
            fail(EXIT_OUTPUT, f"{e.path or target}: {e.message}")
            continue
        except OSError as e:
            fail(EXIT_OUTPUT, f"{target.parent}: cannot create output folder: {e.strerror or e}")
            continue
        except WhisperMediaError as e:
            fail(exit_code_for(e), f"{e.path or target}: {e.message}")
            continue
        outcome.written.append(str(path))
        echo(str(path))
        if on_written is not None:
            on_written(str(path), transcript)
    reporter.done(source, outcome.written, outcome.kept)
