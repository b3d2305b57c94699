"""``wm run --ray``: the same run, scheduled on a Ray cluster with Ray Data.

The driver (``wm run`` itself, ``cli_run.Run``) plans as always: folders expanded, outputs
placed, kept ones skipped, ``--resume``'s finished inputs left out. The planned inputs become
a Ray Data pipeline:

1. rows: one per input, its **path** and where each output goes (never the file's bytes: a
   10 GB video would otherwise go through the object store);
2. ``probe``: cheap CPU tasks open each file's container headers (``cli_inputs.open_input``),
   add the probed facts (duration, the audio stream chosen, container, frame rate) and, with a
   manifest, the SHA-256 of its bytes. Bad media becomes an error in the row, not a failure;
3. ``_Transcriber``: actors (``compute=ActorPoolStrategy(size=N)``), each holding one loaded
   model, ``batch_size=1`` (one input per call), a GPU each (or ``--ray-gpus`` of one) when the
   cluster has GPUs. Each runs ``cli_worker.work``, the function ``wm run`` itself calls: the
   same plugins, the same atomic writer, the same rules. It returns the outcome as a row;
4. the driver takes the rows as they stream in and, for each, prints the written paths,
   reports the errors, and appends the manifest record, as ``wm run`` does.

Faults: an input that fails (bad media, a plugin that raises) is an outcome with its error and
exit code, never a failed job. An actor that dies (a crash in native code, the OOM killer) is
replaced and its calls are resubmitted: Ray Data's own defaults for actor pools
(``max_restarts=-1``, ``max_task_retries=-1``; setting them is a deprecated ``**ray_remote_args``
in Ray 2.60). "Retried once" is counted here: each actor call first registers the attempt
with a small ``_Attempts`` actor, and a third attempt at an input (it killed two actors) is not
made: the input comes back as failed (exit code 1), and the job goes on.

Ray versions: ``compute=ActorPoolStrategy(size=N)`` is the argument since Ray 2.51 (which
deprecated ``concurrency``); from 2.9 to 2.50 ``concurrency=N`` was the undeprecated one, so
``_pool`` passes whichever the installed Ray takes without a warning. The floor is 2.10
(``from_items(override_num_blocks=)``). Tested on the Ray installed by ``.ci/test-needs``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from whispermedia.cli_render import EXIT_INPUT, EXIT_INTERNAL, exit_code_for
from whispermedia.cli_worker import Job, Outcome, work
from whispermedia.errors import MissingDependency, WhisperMediaError
from whispermedia.manifest import Fingerprint, fingerprint
from whispermedia.run_options import RAY_DEFAULT, RAY_LOCAL

INSTALL = "pip install 'whispermedia[ray]'"
#: the oldest Ray this module supports (see the module docstring)
RAY_FLOOR = (2, 10)
#: CPUs each probe task asks for: none (it reads container headers: I/O, not compute), so an
#: actor pool that takes every CPU cannot starve the probes; the pool size caps them instead
PROBE_CPUS = 0
#: test hook: "<file name>=<marker path>[;...]": the actor dies (os._exit) on that input once,
#: the first time the marker can be created (no marker: every time), so tests can kill actors mid-job
FAULT_ENV = "WM_RAY_TEST_EXIT_ONCE"


class ClusterError(WhisperMediaError):
    """The Ray cluster cannot be joined or started (``wm run`` exits 2: the address is wrong, the
    cluster is down, or its authentication token is not this machine's)."""


def import_ray() -> Any:
    """The ``ray`` module with Ray Data; ``MissingDependency`` naming the extra when absent or too old."""
    try:
        import ray
        import ray.data  # noqa: F401 (ray without [data] lacks pandas/pyarrow)
    except ImportError as e:
        raise MissingDependency(f"--ray needs Ray Data, from the ray extra: {INSTALL} ({e})") from None
    if ray_version(ray) < RAY_FLOOR:
        raise MissingDependency(f"--ray needs Ray >= {'.'.join(map(str, RAY_FLOOR))} (installed: {ray.__version__}): "
                                f"{INSTALL}")
    return ray


def ray_version(ray: Any) -> Tuple[int, int]:
    parts = (ray.__version__.split(".") + ["0", "0"])[:2]
    return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in parts)  # type: ignore[return-value]


def connect(ray: Any, address: str) -> bool:
    """Join (or start) the cluster; True when this call started Ray (and must shut it down).

    An already initialised Ray (a test's cluster, a script's own ``ray.init``) is used as it is.
    ``local`` starts a one-machine cluster on the loopback address with no dashboard, so it opens
    no port on the network."""
    if ray.is_initialized():
        return False
    quiet = dict(logging_level="WARNING", log_to_driver=True)
    try:
        if address == RAY_LOCAL:
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, **quiet)
        elif address == RAY_DEFAULT:
            ray.init(**quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ClusterError(f"--ray {address}: cannot join or start the Ray cluster: {first}") from None
    return True


def _pool(ray: Any, size: int, actors: bool) -> Dict[str, Any]:
    """The map argument that fixes the pool size, in the spelling the installed Ray takes."""
    if ray_version(ray) >= (2, 51):
        strategy = ray.data.ActorPoolStrategy if actors else ray.data.TaskPoolStrategy
        return {"compute": strategy(size=size)}
    return {"concurrency": size}


# -- the stages (they run in Ray workers) --------------------------------------------------------

def probe(row: Dict[str, Any], audio_stream: Any, hash_inputs: bool) -> Dict[str, Any]:
    """Stage 2: the row with its probed media facts (a JSON text in ``probe``)."""
    from whispermedia import cli_inputs

    facts: Dict[str, Any] = {}
    try:
        opened = cli_inputs.open_input(row["path"], audio_stream)
        try:
            info = opened.source.probe()
            choice = opened.choice
            facts.update(audio_stream=None if choice is None else choice.index,
                         duration=None if info is None else info.duration,
                         container=None if info is None else info.container,
                         has_video=None if info is None else info.has_video,
                         frame_rate=None if info is None or info.frame_rate is None else str(info.frame_rate))
        finally:
            opened.close()
        if hash_inputs:
            fp = fingerprint(row["path"])
            facts.update(sha256=fp.sha256, size=fp.size, mtime_ns=fp.mtime_ns)
    except WhisperMediaError as e:
        facts["error"] = [exit_code_for(e), f"{e.path or row['path']}: {e.message}"]
    except OSError as e:
        facts["error"] = [EXIT_INPUT, f"{row['path']}: cannot read the file: {e.strerror or e}"]
    return {**row, "probe": json.dumps(facts)}


class _Quiet:
    """The reporter an actor's ``work`` gets: the driver reports, from the returned outcome."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


#: attempts at one input before it is given up (the first, and one retry after its actor died)
ATTEMPTS = 2


class _Attempts:
    """How often each input was started (a Ray actor: it outlives the transcribers that die)."""

    def __init__(self) -> None:
        self.started: Dict[int, int] = {}

    def start(self, i: int) -> int:
        self.started[i] = self.started.get(i, 0) + 1
        return self.started[i]


class _Transcriber:
    """Stage 3: one loaded model per actor; ``__call__`` works on a batch of rows (of one)."""

    def __init__(self, plan: Any, device: str, debug: bool, attempts: Any, cwd: str):
        import whispermedia

        self.plan, self.debug, self.attempts = plan, debug, attempts
        # in the driver's folder (when this node has it), inputs are opened by the paths the
        # driver was given, so what a format writes of the path (JSON's info.source) is
        # byte for byte wm run's; elsewhere the absolute paths are used
        self.as_given = os.path.isdir(cwd)
        if self.as_given:
            os.chdir(cwd)
        self.node = _node_id()
        self.model, self.model_error = None, None
        try:
            self.model = whispermedia.load_model(plan.model, device=device, compute_type=plan.compute_type)
        except WhisperMediaError as e:  # every input says it, the job goes on to the end
            self.model_error = (exit_code_for(e), f"{e.path or plan.model}: {e.message}")

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[Any]]:
        ids, results = [], []
        for i in range(len(batch["id"])):
            row = {key: batch[key][i] for key in batch}
            ids.append(int(row["id"]))
            results.append(json.dumps(self._one(row)))
        return {"id": ids, "result": results}

    def _one(self, row: Dict[str, Any]) -> Dict[str, Any]:
        facts = json.loads(str(row["probe"]))
        spec = json.loads(str(row["job"]))
        path = str(row["given"]) if self.as_given else str(row["path"])
        outcome = Outcome(kept=list(spec["kept"]))
        attempt = _ray().get(self.attempts.start.remote(int(row["id"])))
        if facts.get("error"):
            outcome.errors.append(tuple(facts["error"]))
        elif attempt > ATTEMPTS:
            outcome.errors.append((EXIT_INTERNAL, f"{path}: the Ray worker died on this input {ATTEMPTS} times "
                                                  "(a crash in native code, out of memory, or killed); "
                                                  "not tried again"))
        elif self.model_error is not None:
            outcome.errors.append(self.model_error)
        else:
            _fault_for_tests(path)
            job = Job(path, [(name, Path(target)) for name, target in spec["writes"]],
                      [Path(k) for k in spec["kept"]], replace=bool(spec["replace"]))
            with warnings.catch_warnings():
                warnings.showwarning = lambda *args, **kwargs: None  # collected in the outcome; the driver says them
                try:
                    outcome = work(self.plan, job, self.model, _Quiet(), lambda _path: None, self.debug)
                finally:
                    if job.opened is not None:
                        job.opened.close()
        return {"written": outcome.written, "kept": outcome.kept, "errors": outcome.errors,
                "warnings": outcome.warnings, "audio_seconds": outcome.audio_seconds,
                "seconds": outcome.seconds, "stop_run": outcome.stop_run, "probe": facts, "node": self.node}


def _ray() -> Any:
    import ray

    return ray


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # not in a Ray worker (a direct call in a test)
        return "?"


def _fault_for_tests(path: str) -> None:
    for spec in os.environ.get(FAULT_ENV, "").split(";"):
        name, _, marker = spec.partition("=")
        if not name or Path(path).name != name:
            continue
        if marker:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return  # died once already: this is the retry
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
        os._exit(17)  # as a segfault or the OOM killer would: no exception, no cleanup


# -- the driver ---------------------------------------------------------------------------------

def sizes(ray: Any, options: Any, inputs: int, device: Optional[str] = None) -> Tuple[int, float, float]:
    """(actors, GPUs per actor, CPUs per actor) for the cluster as it is now (``device`` "cpu":
    no GPU asked for unless --ray-gpus says so)."""
    resources = ray.cluster_resources()
    gpus, cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
    wants_gpu = gpus >= 1 and device != "cpu"
    per_gpu = options.ray_gpus if options.ray_gpus is not None else (1.0 if wants_gpu else 0.0)
    per_cpu = options.ray_cpus
    if options.ray_actors is not None:
        actors = options.ray_actors
    elif per_gpu > 0:
        actors = max(1, int(gpus // per_gpu))
    else:  # leave a CPU's worth for the probe tasks, the driver and Ray itself
        actors = max(1, int(math.floor((cpus - 1) / per_cpu)))
    return max(1, min(actors, inputs)), per_gpu, per_cpu


def run(driver: Any, jobs: List[Job]) -> None:
    """Work on ``jobs`` on Ray for ``driver`` (``cli_run.Run``), which reports and records each outcome."""
    ray = import_ray()
    started = connect(ray, driver.run_options.ray)
    try:
        with warnings.catch_warnings():
            # Ray 2.60 warns about its own deprecated DataContext fields each time it copies its
            # context for an execution: nothing wm passes (a deprecated argument of ours is
            # attributed to this module, not to ray.data.context, and is still shown)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
            for job, outcome, fp, node in outcomes(ray, driver, jobs):
                report(driver, job, outcome)
                driver.finish(job.given, outcome, fp, worker=f"ray:{node}")
    finally:
        if started:
            ray.shutdown()


def outcomes(ray: Any, driver: Any, jobs: List[Job]) -> Iterator[Tuple[Job, Outcome, Optional[Fingerprint], str]]:
    """Each job's outcome as the cluster finishes it (any order); inputs lost to actors that died
    twice come last, as failures."""
    plan = driver.plan
    actors, per_gpu, per_cpu = sizes(ray, driver.run_options, len(jobs), plan.device)
    device = plan.device or ("cuda" if per_gpu > 0 else "cpu")
    rows = [{"id": i, "path": os.path.abspath(job.given), "given": str(job.given),
             "job": json.dumps({"writes": [[name, os.path.abspath(t)] for name, t in job.writes],
                                "kept": [os.path.abspath(k) for k in job.kept], "replace": job.replace})}
            for i, job in enumerate(jobs)]
    context = ray.data.DataContext.get_current()
    saved = (context.max_errored_blocks, context.enable_progress_bars)
    context.max_errored_blocks = -1  # a block lost for any other reason is ours to record, not a failed job
    context.enable_progress_bars = False  # wm's own lines on stderr
    data_log = logging.getLogger("ray.data")
    saved_level = data_log.level
    data_log.setLevel(logging.ERROR)  # "Starting execution of Dataset ...": wm says what happens
    attempts = ray.remote(num_cpus=0)(_Attempts).remote()
    seen = set()
    try:
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))  # one input per block: retried alone
        ds = ds.map(probe, fn_kwargs={"audio_stream": plan.audio_stream, "hash_inputs": driver.manifest is not None},
                    num_cpus=PROBE_CPUS, **_pool(ray, max(2, actors), actors=False))
        ds = ds.map_batches(_Transcriber, batch_size=1, num_cpus=per_cpu, num_gpus=per_gpu or None,
                            fn_constructor_kwargs={"plan": plan, "device": device, "debug": driver.debug,
                                                   "attempts": attempts, "cwd": os.getcwd()},
                            **_pool(ray, actors, actors=True))
        for row in ds.iter_rows():
            i = int(row["id"])
            seen.add(i)
            result = json.loads(row["result"])
            facts = result["probe"]
            fp = Fingerprint(facts["sha256"], facts["size"], facts["mtime_ns"]) if facts.get("sha256") else None
            outcome = Outcome(written=[_as_planned(jobs[i], p) for p in result["written"]],
                              kept=[_as_planned(jobs[i], p) for p in result["kept"]],
                              errors=[(int(c), str(m)) for c, m in result["errors"]],
                              warnings=list(result["warnings"]), audio_seconds=result["audio_seconds"],
                              seconds=float(result["seconds"]), stop_run=bool(result["stop_run"]))
            yield jobs[i], outcome, fp, result["node"]
    finally:
        context.max_errored_blocks, context.enable_progress_bars = saved
        data_log.setLevel(saved_level)
        ray.kill(attempts)
    for i, job in enumerate(jobs):
        if i not in seen:
            message = f"{job.given}: lost by the Ray job (no outcome came back; see the Ray logs)"
            yield job, Outcome(errors=[(EXIT_INTERNAL, message)]), None, "?"


def _as_planned(job: Job, path: str) -> str:
    """An output path as the plan named it (the actor got it absolute)."""
    for _, target in job.writes:
        if os.path.abspath(target) == path:
            return str(target)
    for target in job.kept:
        if os.path.abspath(target) == path:
            return str(target)
    return path


def report(driver: Any, job: Job, outcome: Outcome) -> None:
    """What ``wm run`` says of an input worked on in this process, said for one worked on Ray."""
    import click

    reporter = driver.reporter
    for message in outcome.warnings:
        reporter.warning(message)
    for path in outcome.written:
        click.echo(path)
    planned_kept = {str(k) for k in job.kept}
    for path in outcome.kept:
        if path not in planned_kept:  # appeared since the plan (a retried input's first attempt)
            reporter.skipped(job.given, path)
    for code, message in outcome.errors:
        reporter.error(job.given, code, message)
    reporter.done(job.given, outcome.written, outcome.kept)
