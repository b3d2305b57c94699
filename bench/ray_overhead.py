"""The overhead of ``wm run --ray`` against ``wm run`` on the same folder, on this machine.

    python bench/ray_overhead.py [--files 8] [--rounds 3] [--model tiny.en] [--ray-cpus 2]

Builds a folder of ``--files`` real-speech inputs (copies of tests/data/speech clips under
distinct names) and, in each round, alternating, times three whole commands (subprocesses,
wall clock, model load included):

- ``wm run``: this process's scheduler;
- ``wm run --ray local``: a cold one-machine Ray cluster started and stopped by the command
  (what a laptop user pays);
- ``wm run --ray 127.0.0.1:PORT``: a warm cluster started once with ``ray start --head`` on the
  loopback address (what a cluster user pays per job).

Ray gets one actor with ``--ray-cpus`` CPUs (default 2, the torch threads ``wm run`` uses on a
2-core machine), so the ratio is scheduling overhead, not a different amount of compute. The
outputs of every command are compared byte for byte. Prints medians and the ratios to ``wm run``.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import secrets
import shutil
import socket
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = free_port()
    # the warm cluster's own token (Ray 2.60 authenticates every connection), for it and its clients
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    subprocess.run([str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
                   check=True, capture_output=True, env=env, timeout=300)
    times = {"wm run": [], "--ray local (cold)": [], "--ray HOST:PORT (warm)": []}
    keys = dict(zip(times, ["wm", "cold", "warm"]))
    try:
        for r in range(args.rounds):
            for name in times:
                out = work / f"out-{keys[name]}-{r}"
                cmd = base + ["-o", str(out), str(folder)]
                if "local" in name:
                    cmd += ["--ray=local"] + ray_args
                elif "warm" in name:
                    cmd += [f"--ray=127.0.0.1:{port}"] + ray_args
                times[name].append(timed(cmd, env))
                reference = work / "out-wm-0"
                if not same_tree(reference, out):
                    raise SystemExit(f"{out} differs from {reference}")
                print(f"round {r + 1} {name:24s} {times[name][-1]:7.2f} s", flush=True)
    finally:
        subprocess.run([str(BIN / "ray"), "stop"], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.files} files, model {args.model}, {args.rounds} rounds, outputs identical")
    local = statistics.median(times["wm run"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} median {median:7.2f} s   ratio to wm run {median / local:5.2f}x")


if __name__ == "__main__":
    main()
