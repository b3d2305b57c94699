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

A folder given as an input is first expanded into its files (``whispermedia.folders``, with
``RunOptions``' ``--recursive``/``--include``/``--exclude``); with ``--manifest`` each input's
record is appended as it ends (``whispermedia.manifest``), and with ``--resume`` the inputs an
earlier run recorded as done are left out of the plan. The work of one input is
``cli_worker.work``, the same function ``--ray`` runs in Ray actors (``whispermedia.ray``).
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import click

from whispermedia import cli_inputs, folders
from whispermedia.cli_render import (EXIT_INPUT, EXIT_INTERNAL, EXIT_OUTPUT, EXIT_USAGE, Reporter, describe,
                                     exit_code_for, record)
from whispermedia.cli_worker import Job as _Job
from whispermedia.cli_worker import Outcome, stream_of, work
from whispermedia.errors import OutputError, WhisperMediaError
from whispermedia.cli_options import flag_of
from whispermedia.manifest import DONE, FAILED, SKIPPED, Manifest, Record, Resume, fingerprint, options_sha256
from whispermedia.options import OptionError, TranscribeOptions
from whispermedia.run_options import RunOptions
from whispermedia.batch_options import BatchOptions


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
    batch: BatchOptions = BatchOptions()  # streams decoded at once (--batch-size, --batch-mode)


def plan_settings(plan: RunPlan) -> Dict[str, Any]:
    """What shapes an input's outputs (the manifest's options hash is over this)."""
    settings = {"formats": list(plan.formats), "model": plan.model, "compute_type": plan.compute_type,
                "audio_stream": plan.audio_stream, "options": record(plan.options)}
    regions = plan.batch.region_length(plan.options)
    if regions is not None:  # regions mode changes the text; exact mode never does
        settings["regions"] = regions
    return settings


class Run:
    """One ``wm run``: ``all(inputs)`` returns the exit code."""

    def __init__(self, plan: RunPlan, reporter: Reporter, device_default: Callable[[], str], debug: bool,
                 run_options: Optional[RunOptions] = None):
        self.plan = plan
        self.run_options = run_options or RunOptions()
        self.options_hash = options_sha256(plan_settings(plan))
        self.manifest: Optional[Manifest] = None
        self.resume: Optional[Resume] = None
        self.resumed: List[str] = []  # inputs done earlier (--resume): not redone
        self.records: List[Record] = []  # what this run recorded, in order
        self.failures: Dict[str, List[Tuple[int, str]]] = {}  # input -> its failures (code, line)
        self.reporter = reporter
        self.device_default = device_default
        self.debug = debug
        self.first_failure = 0
        self.stopped = False  # an option only the model could refuse: no further input is tried
        self.folders = cli_inputs.Folders()
        self.claimed: Dict[Path, str] = {}  # output path -> the input that writes (or keeps) it

    def fail(self, file: Optional[str], code: int, message: str, tb: Optional[str] = None) -> None:
        self.reporter.error(file, code, message, tb)
        if file is not None:
            self.failures.setdefault(file, []).append((code, message))
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
        if self.run_options.ray is not None:
            from whispermedia import ray as wm_ray

            wm_ray.import_ray()  # MissingDependency (exit 2) before anything, as a missing format extra
        found, problems = folders.expand(inputs, self.run_options.recursive, self.run_options.include,
                                         self.run_options.exclude, out_dir)
        for folder, why in problems:
            self.fail(folder, EXIT_INPUT, f"{folder}: {why}")
        if not self._open_manifest():
            return self.first_failure
        jobs: List[_Job] = []
        try:
            for item in found:
                job = self._guarded(item.path, lambda _s, item=item: self._plan_one(item))
                if job is not None:
                    jobs.append(job)
                elif item.path in self.failures:
                    self._record(item.path, FAILED)
            if self.resume is not None:
                self.reporter.resumed(self.resumed, self.resume.path)
            if jobs and self.run_options.ray is not None:
                try:
                    wm_ray.run(self, jobs)
                except wm_ray.ClusterError as e:  # nothing was worked on: the inputs have no record
                    self.fail(None, EXIT_USAGE, str(e))
            elif jobs:
                self._work_all(jobs, self._load_model())
        finally:
            for job in jobs:
                if job.opened is not None:
                    job.opened.close()
            if self.manifest is not None:
                self.manifest.close()
        return self.first_failure

    # -- the manifest ----------------------------------------------------------------------
    def _open_manifest(self) -> bool:
        """Read ``--resume``'s file and open the manifest for appending; False (reported) when not possible."""
        opts = self.run_options
        try:
            if opts.resume is not None:
                self.resume = Resume(opts.resume)
            if opts.manifest_path is not None:
                self.manifest = Manifest(opts.manifest_path)
        except OSError as e:
            where = e.filename or opts.manifest_path or opts.resume
            self.fail(None, EXIT_OUTPUT, f"{where}: cannot use the manifest: {e.strerror or e}")
            return False
        return True

    def _record(self, given: str, status: str, outcome: Optional[Outcome] = None, fp: Any = None,
                error: Optional[Tuple[int, str]] = None, worker: str = "local") -> Optional[Record]:
        """Append ``given``'s record to the manifest (when there is one)."""
        if self.manifest is None:
            return None
        errors = list(outcome.errors if outcome is not None else self.failures.get(given, []))
        if error is not None:
            errors.append(error)
        first = errors[0] if errors else None
        entry = Record(
            path=given if given == cli_inputs.STDIN else os.path.abspath(given),
            status=FAILED if first is not None else status,
            options_sha256=self.options_hash,
            input_sha256=getattr(fp, "sha256", None),
            audio_seconds=None if outcome is None else outcome.audio_seconds,
            seconds=0.0 if outcome is None else round(outcome.seconds, 3),
            outputs=tuple(os.path.abspath(p) for p in outcome.written) if outcome is not None else (),
            kept=tuple(os.path.abspath(p) for p in outcome.kept) if outcome is not None else (),
            warnings=tuple(outcome.warnings) if outcome is not None else (),
            error=None if first is None else {"code": first[0], "message": first[1]},
            size=getattr(fp, "size", None),
            mtime_ns=getattr(fp, "mtime_ns", None),
            worker=worker,
        )
        self.manifest.write(entry)
        self.records.append(entry)
        return entry

    def fingerprint_of(self, job: _Job) -> Any:
        """The input's content hash for its record (regular files only: a FIFO is read once)."""
        if self.manifest is None or job.fingerprint is not None:
            return job.fingerprint
        if os.path.isfile(job.given):
            try:
                job.fingerprint = fingerprint(job.given)
            except OSError:
                pass
        return job.fingerprint

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
    def _targets(self, item: folders.Found) -> List[Tuple[str, Path]]:
        """(format, output path) of each format, for an input named or found in a folder."""
        plan = self.plan
        if item.root is None:
            return [(name, cli_inputs.output_target(item.path, name, plan.output_dir)) for name in plan.formats]
        from whispermedia.plugins import get_host

        host = get_host()
        targets = []
        for name in plan.formats:
            target = item.output_folder(plan.output_dir) / item.output_name(host.output_format(name).extension)
            if os.path.abspath(target) == os.path.abspath(item.path):
                raise OutputError(f"the {name} output would replace the input itself", str(target))
            targets.append((name, target))
        return targets

    def _plan_one(self, item: folders.Found) -> Optional[_Job]:
        """The input's job, or None when it has nothing to write (all kept, done earlier) or failed."""
        plan, source = self.plan, item.path
        cli_inputs.check_given(source)
        targets = self._targets(item)
        if self.resume is not None:
            earlier = self.resume.finished(source, self.options_hash)
            if earlier is not None:
                for _, target in targets:
                    self.claimed[Path(os.path.abspath(target))] = source
                self.resumed.append(source)
                if self.manifest is not None and os.path.abspath(self.manifest.path) != os.path.abspath(self.resume.path):
                    self.manifest.write(earlier)  # the new manifest is complete on its own
                return None
        replace = plan.overwrite or self.resume is not None  # resuming: what exists is stale or partial
        problems: List[str] = []
        job = _Job(source, [], [], replace=replace, found=item)
        for name, target in targets:
            other = self.claimed.get(Path(os.path.abspath(target)))
            if other is not None:
                problems.append(f"{target}: also the output of {other} (use --output-dir or rename)")
            elif target.is_dir():
                problems.append(f"{target}: is a directory")
            elif os.path.lexists(target) and not replace:
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
            self._record(source, SKIPPED, Outcome(kept=[str(t) for t in job.kept]), self.fingerprint_of(job))
            return None
        if self.run_options.ray is None:  # on Ray, probing is the cluster's first stage
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
            self._model_error = (exit_code_for(e), f"{e.path or plan.model}: {e.message}")
            self.fail(None, *self._model_error)
            return None

    _model_error: Optional[Tuple[int, str]] = None

    def _work_all(self, jobs: List[_Job], model: Any) -> None:
        """Transcribe the jobs one by one, or ``--batch-size`` at a time through the scheduler
        (``whispermedia.scheduler``: each transcript the same, sampling from the same seed for
        every file either way), writing each one's outputs as it finishes."""
        if model is None:  # every input with work fails with the model
            for job in jobs:
                self._record(job.given, FAILED, error=self._model_error)
            return
        import torch

        from whispermedia.model import Whisper
        from whispermedia.scheduler import Scheduler, auto_batch_size, rows_per_stream

        batch = self.plan.batch
        rows = rows_per_stream(self.plan.options)
        size = 1
        # a stand-in model (tests) goes through transcribe(), one file at a time
        region_seconds = batch.region_length(self.plan.options)
        regions = region_seconds is not None and isinstance(model, Whisper)
        if (len(jobs) > 1 or regions) and isinstance(model, Whisper):
            size = batch.batch_size or auto_batch_size(model, rows)
            if not regions:  # regions mode: the parts of one file fill the streams
                size = min(len(jobs), size)
        if size <= 1 and not regions:
            for job in jobs:
                torch.manual_seed(batch.seed)  # what the scheduler's per-file generator starts from
                self._work(job, model)
                if self.stopped:
                    break  # the same options would fail on every input
            return
        fps = {id(job): self.fingerprint_of(job) for job in jobs}  # before the work, as _work takes it
        by_key = {id(job): job for job in jobs}
        scheduler = Scheduler(model, size, rows, seed=batch.seed, region_seconds=region_seconds, reports=True)
        results = scheduler.run((id(job), lambda job=job: stream_of(self.plan, job, model, self.reporter))
                                for job in jobs)
        try:
            for key, transcript in results:
                job = by_key[key]
                outcome = work(self.plan, job, model, self.reporter, click.echo, self.debug, self._after_write,
                               transcript=transcript, made=scheduler.report(key))
                self.finish(job.given, outcome, fps[key])
                if self.stopped:
                    break
        finally:
            results.close()

    def _work(self, job: _Job, model: Any) -> None:
        fp = self.fingerprint_of(job)  # before the work: the record's hash is of the bytes transcribed
        outcome = work(self.plan, job, model, self.reporter, click.echo, self.debug, self._after_write)
        self.finish(job.given, outcome, fp)

    def finish(self, given: str, outcome: Outcome, fp: Any, worker: str = "local") -> None:
        """One input's outcome (from this process or a Ray actor): failures counted, record appended."""
        for code, _ in outcome.errors:
            if not self.first_failure:
                self.first_failure = code
        self.failures.setdefault(given, []).extend(outcome.errors)
        self.stopped = self.stopped or outcome.stop_run
        self._record(given, DONE, outcome, fp, worker=worker)

    def _after_write(self, path: str, transcript: Any) -> None:
        plan = self.plan
        if plan.qc:
            from whispermedia.cli_qc import qc_summary

            summary = qc_summary(path, transcript)
            if summary:
                click.echo(f"wm: {path}: qc: {summary}", err=True)
