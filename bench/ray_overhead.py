"""The overhead of ``wm run --ray`` against ``wm run`` on the same folder, on this machine.

    python bench/ray_overhead.py [--files 8] [--rounds 3] [--model tiny.en] [--ray-cpus 2]

Builds a folder of ``--files`` real-speech inputs (copies of tests/data/speech clips under
distinct names) and, in each round, alternating, times three whole commands (subprocesses,
wall clock, model load included):

- ``wm run``: this process's scheduler;
- ``wm run --ray local``: a cold one-machine Ray cluster started and stopped by the command
  (what a laptop user pays);
- ``wm run --ray`` on a warm cluster: this process starts a loopback cluster once
  (``ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False)``) and runs the
  command in-process (click's runner), so the job joins a running cluster (what a cluster user
  pays per job: the actors and their models are still started by each job).

Ray gets one actor with ``--ray-cpus`` CPUs (default 2, the torch threads ``wm run`` uses on a
2-core machine), so the ratio is scheduling overhead, not a different amount of compute. The
outputs of every command are compared byte for byte. Prints medians and the ratios to ``wm run``.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "data" / "speech"
CLIPS = ["jfk.flac", "arctic_a0007.flac", "arctic_a0009.flac"]
BIN = Path(sys.executable).parent


def timed(cmd, env=None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr}")
    return took


def same_tree(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        filecmp.cmp(a / n, b / n, shallow=False) for n in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--ray-cpus", type=float, default=2.0)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="wm-ray-bench-"))
    folder = work / "in"
    folder.mkdir()
    for i in range(args.files):
        clip = CLIPS[i % len(CLIPS)]
        shutil.copyfile(SPEECH / clip, folder / f"{i:03d}-{clip}")
    base = [str(BIN / "wm"), "run", "-m", args.model, "--device", "cpu", "--progress", "none", "-p", "srt"]
    ray_args = ["--ray-actors", "1", "--ray-cpus", f"{args.ray_cpus:g}"]
    # the same torch threads everywhere: Ray sets OMP_NUM_THREADS to an actor's CPUs itself
    env = {**os.environ, "RAY_ADDRESS": "", "OMP_NUM_THREADS": str(max(1, int(args.ray_cpus)))}
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    import ray
    from click.testing import CliRunner

    from whispermedia.cli import cli

    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, logging_level="WARNING")
    times = {"wm run": [], "--ray local (cold)": [], "--ray (warm cluster)": []}
    keys = dict(zip(times, ["wm", "cold", "warm"]))
    try:
        for r in range(args.rounds):
            for name in times:
                out = work / f"out-{keys[name]}-{r}"
                cmd = base + ["-o", str(out), str(folder)]
                if "local" in name:
                    times[name].append(timed(cmd + ["--ray=local"] + ray_args, env))
                elif "warm" in name:
                    started = time.perf_counter()
                    result = CliRunner().invoke(cli, cmd[1:] + ["--ray"] + ray_args, catch_exceptions=False)
                    times[name].append(time.perf_counter() - started)
                    if result.exit_code != 0:
                        raise SystemExit(f"failed ({result.exit_code}): {result.output}")
                else:
                    times[name].append(timed(cmd, env))
                reference = work / "out-wm-0"
                if not same_tree(reference, out):
                    raise SystemExit(f"{out} differs from {reference}")
                print(f"round {r + 1} {name:24s} {times[name][-1]:7.2f} s", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.files} files, model {args.model}, {args.rounds} rounds, outputs identical; "
          f"load average at the end: {os.getloadavg()[0]:.1f}")
    local = statistics.median(times["wm run"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} median {median:7.2f} s   ratio to wm run {median / local:5.2f}x")


if __name__ == "__main__":
    main()
