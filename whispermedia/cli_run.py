"""``wm run``, after its command line is settled: plan every input, then do the work.

1. **Plan** (no model): each input is checked (``cli_inputs.check_given``), each of its outputs
   placed (``cli_inputs.output_target``). An output that exists is *kept* (a skip, reported,
   not a failure) unless ``--overwrite``; an output that is a folder, that another input of the
   run writes, or whose folder takes no files is a failure of that input. An input with at
   least one output to write is opened and probed (``cli_inputs.open_input``), its audio
   stream chosen. Every failure is reported here, before any model loads.
2. **Work**: when some input has work, the model is loaded, once, and each such input is
   transcribed and its missing outputs written atomically.

The exit code is the first failure's (``cli_render.EXIT_*``); skips never count.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import click

from whispermedia import cli_inputs
from whispermedia.batch_options import BatchOptions
from whispermedia.cli_render import EXIT_INTERNAL, EXIT_OUTPUT, EXIT_USAGE, Reporter, describe, exit_code_for
from whispermedia.errors import OutputError, WhisperMediaError
from whispermedia.cli_options import flag_of
from whispermedia.options import OptionError, TranscribeOptions


@dataclass(frozen=True)
class RunPlan:
    """Everything ``wm run`` settled before the first input: what to write, with which model
    and options."""

    formats: Tuple[str, ...]  # output format names
    model: str  # registry name or path
    device: Optional[str]  # None: cuda when available
    compute_type: str
    options: TranscribeOptions
    output_dir: Optional[str]
    overwrite: bool
    audio_stream: Any  # None, an index, or "lang:<tag>" (audio_streams.parse_request)
    qc: bool = False  # print the QC summary of each subtitle file written (wm qc)
    batch: BatchOptions = BatchOptions()  # files decoded at once (--batch-size)


@dataclass
class _Job:
    """One input with work: the outputs to write (format, path) and those kept."""

    given: str
    writes: List[Tuple[str, Path]]
    kept: List[Path]
    opened: Optional[cli_inputs.Input] = None
    said: List[str] = field(default_factory=list)  # the detected language, once reported


class Run:
    """One ``wm run``: ``all(inputs)`` returns the exit code."""

    def __init__(self, plan: RunPlan, reporter: Reporter, device_default: Callable[[], str], debug: bool):
        self.plan = plan
        self.reporter = reporter
        self.device_default = device_default
        self.debug = debug
        self.first_failure = 0
        self.stopped = False  # an option only the model could refuse: no further input is tried
        self.folders = cli_inputs.Folders()
        self.claimed: Dict[Path, str] = {}  # output path -> the input that writes (or keeps) it

    def fail(self, file: Optional[str], code: int, message: str, tb: Optional[str] = None) -> None:
        self.reporter.error(file, code, message, tb)
        if not self.first_failure:
            self.first_failure = code

    def all(self, inputs: Sequence[str]) -> int:
        if sum(1 for s in inputs if s == cli_inputs.STDIN) > 1:
            self.fail(None, EXIT_USAGE, "-: stdin can be read once: name it once")
            return self.first_failure
        out_dir = self.plan.output_dir
        if out_dir is not None:
            why = self._output_dir_problem(Path(out_dir))
            if why is not None:  # no input could be written: say it once, before anything
                self.fail(None, EXIT_OUTPUT, f"{out_dir}: {why}")
                return self.first_failure
        jobs = [job for job in (self._guarded(source, self._plan_one) for source in inputs) if job is not None]
        try:
            if jobs:
                model = self._load_model()
                if model is not None:
                    self._work_all(jobs, model)
        finally:
            for job in jobs:
                if job.opened is not None:
                    job.opened.close()
        return self.first_failure

    def _output_dir_problem(self, out_dir: Path) -> Optional[str]:
        if out_dir.exists() and not out_dir.is_dir():
            return "not a folder (--output-dir needs one)"
        return self.folders.problem(out_dir)

    def _guarded(self, source: str, step: Callable[[str], Any]) -> Any:
        """``step(source)``; its library errors (and bugs) reported as ``source``'s failure."""
        try:
            return step(source)
        except WhisperMediaError as e:
            self.fail(source, exit_code_for(e), f"{e.path or source}: {e.message}")
        except OptionError as e:  # only the model can tell (a token id outside its vocabulary)
            self.fail(source, EXIT_USAGE, e.render(flag_of))
            self.stopped = True
        except Exception as e:
            tb = traceback.format_exc() if self.debug else None
            hint = "" if tb else " (WM_DEBUG=1 shows the traceback)"
            self.fail(source, EXIT_INTERNAL, f"{source}: internal error: {describe(e)}{hint}", tb)
        return None

    # -- 1. plan -------------------------------------------------------------------------
    def _plan_one(self, source: str) -> Optional[_Job]:
        """The input's job, or None when it has nothing to write (all kept) or failed."""
        plan = self.plan
        cli_inputs.check_given(source)
        targets = [(name, cli_inputs.output_target(source, name, plan.output_dir)) for name in plan.formats]
        problems: List[str] = []
        job = _Job(source, [], [])
        for name, target in targets:
            other = self.claimed.get(Path(os.path.abspath(target)))
            if other is not None:
                problems.append(f"{target}: also the output of {other} (use --output-dir or rename)")
            elif target.is_dir():
                problems.append(f"{target}: is a directory")
            elif os.path.lexists(target) and not plan.overwrite:
                job.kept.append(target)
            else:
                why = self.folders.problem(target.parent)
                if why is not None:
                    problems.append(f"{target}: {why}")
                else:
                    job.writes.append((name, target))
        for problem in problems:
            self.fail(source, EXIT_OUTPUT, problem)
        if problems:
            return None  # nothing of this input is written
        for _, target in targets:
            self.claimed[Path(os.path.abspath(target))] = source
        for target in job.kept:
            self.reporter.skipped(source, str(target))
        if not job.writes:
            self.reporter.done(source, [], [str(t) for t in job.kept])
            return None
        job.opened = cli_inputs.open_input(source, plan.audio_stream)  # probed: bad media fails here
        return job

    # -- 2. work -------------------------------------------------------------------------
    def _load_model(self) -> Any:
        import whispermedia

        plan = self.plan
        self.reporter.status(f"loading model {plan.model}...")
        try:
            return whispermedia.load_model(plan.model, device=plan.device or self.device_default(),
                                           compute_type=plan.compute_type)
        except WhisperMediaError as e:
            self.fail(None, exit_code_for(e), f"{e.path or plan.model}: {e.message}")
            return None

    def _work_all(self, jobs: List[_Job], model: Any) -> None:
        """Transcribe the jobs one by one, or ``--batch-size`` at a time through the scheduler
        (each transcript the same: sampling starts from the same seed for every file either
        way), writing each one's outputs as it finishes."""
        import torch

        from whispermedia.model import Whisper
        from whispermedia.scheduler import Scheduler, auto_batch_size, rows_per_stream

        batch = self.plan.batch
        rows = rows_per_stream(self.plan.options)
        size = 1
        if len(jobs) > 1 and isinstance(model, Whisper):  # a stand-in model goes through transcribe()
            size = min(len(jobs), batch.batch_size or auto_batch_size(model, rows))
        if size <= 1:
            for job in jobs:
                torch.manual_seed(batch.seed)  # the scheduler's per-file generator, for transcribe()
                self._guarded(job.given, lambda _s, job=job: self._write(job, self._transcribe(job, model)))
                if self.stopped:
                    break  # the same options would fail on every input
            return
        by_key = {id(job): job for job in jobs}
        scheduler = Scheduler(model, size, rows, seed=batch.seed)
        results = scheduler.run((id(job), lambda job=job: self._stream(job, model)) for job in jobs)
        try:
            for key, result in results:
                job = by_key[key]
                self._guarded(job.given, lambda _s, job=job, result=result: self._write(job, result))
                if self.stopped:
                    break
        finally:
            results.close()

    def _transcribe(self, job: _Job, model: Any) -> Any:
        import whispermedia

        audio, audio_stream, progress = self._prepare(job)
        return whispermedia.transcribe(audio, model=model, options=self.plan.options, audio_stream=audio_stream,
                                       progress=progress)

    def _stream(self, job: _Job, model: Any) -> Any:
        import whispermedia

        audio, audio_stream, progress = self._prepare(job)
        return whispermedia.stream(audio, model=model, options=self.plan.options, audio_stream=audio_stream,
                                   progress=progress)

    def _prepare(self, job: _Job) -> Tuple[Any, Any, Callable[[Any], None]]:
        """The job's audio, its audio stream and its progress callback, the stream reported."""
        plan, source, opened = self.plan, job.given, job.opened
        if opened.choice is not None and len(opened.choice.streams) > 1:
            self.reporter.stream(source, opened.choice)
        self.reporter.status(f"{Path(source).name}: reading audio...")
        audio_stream = None if opened.choice is None else opened.choice.index
        said = job.said  # the detected language, said as soon as a progress report carries it

        def progress(p: Any) -> None:
            if plan.options.language is None and not said and getattr(p, "language", None):
                said.append(p.language)
                self.reporter.language(source, p.language, p.language_probability)
            self.reporter.progress(source, p)

        return opened.audio, audio_stream, progress

    def _write(self, job: _Job, transcript: Any) -> None:
        """Write the job's outputs of ``transcript`` (an exception: the job's failure, raised)."""
        from whispermedia import output as wm_output

        if isinstance(transcript, BaseException):
            raise transcript
        plan, source = self.plan, job.given
        if plan.options.language is None and not job.said:
            info = transcript.info
            self.reporter.language(source, info.language, info.language_probability)
        if plan.options.language_per_region:
            self.reporter.regions(source, transcript.language_regions())

        self.reporter.clear()  # the paths go to stdout, often the same terminal as the bar
        written: List[str] = []
        kept = [str(t) for t in job.kept]
        for name, target in job.writes:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)  # --output-dir: made when first written to
                path = wm_output.write(transcript, name, target, overwrite=plan.overwrite)
            except OutputError as e:
                if not plan.overwrite and os.path.lexists(target) and not target.is_dir():
                    kept.append(str(target))  # appeared since the plan: kept, as planned ones are
                    self.reporter.skipped(source, str(target))
                    continue
                self.fail(source, EXIT_OUTPUT, f"{e.path or target}: {e.message}")
                continue
            except OSError as e:
                self.fail(source, EXIT_OUTPUT, f"{target.parent}: cannot create output folder: {e.strerror or e}")
                continue
            except WhisperMediaError as e:
                self.fail(source, exit_code_for(e), f"{e.path or target}: {e.message}")
                continue
            written.append(str(path))
            click.echo(str(path))
            if plan.qc:
                from whispermedia.cli_qc import qc_summary

                summary = qc_summary(str(path), transcript)
                if summary:
                    click.echo(f"wm: {path}: qc: {summary}", err=True)
        self.reporter.done(source, written, kept)
