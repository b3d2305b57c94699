"""Voice activity detection speed: our native Silero network against the silero-vad package's
own per-window loop, on one CPU thread.

    python bench/vad_speed.py                 # 10 minutes of audio, median of 5 runs
    python bench/vad_speed.py --minutes 60

The audio is tests/data/speech/jfk.flac alternating with noise (the network's cost does not
depend on what it hears). Ours: ``whispermedia.silero.speech_probabilities`` (the convolutional
front end batched over every window of a 60 s block, the LSTM recurrence inside one ATen call).
The package: ``load_silero_vad()`` called window by window, as its ``get_speech_timestamps``
does, in a subprocess (importing it sets torch's thread count for the whole process; here both
run on one thread anyway). Prints wall and CPU seconds (on a shared machine the CPU time is the
steadier figure: one thread, so CPU time is the time the work needs) and times real time, and the
largest probability difference between the two.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

PACKAGE = textwrap.dedent("""
    import sys, time, numpy as np, torch
    from silero_vad import load_silero_vad
    torch.set_num_threads(1)
    x = torch.from_numpy(np.load(sys.argv[1]))
    model = load_silero_vad()
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        probs = [model(x[i:i + 512], 16000).item() for i in range(0, len(x), 512)]
    print(time.perf_counter() - t0, time.process_time() - c0)
    np.save(sys.argv[2], np.array(probs, dtype=np.float32))
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import torch

    from whispermedia import silero
    from whispermedia.media import load_audio

    torch.set_num_threads(1)
    jfk = load_audio(str(ROOT / "tests" / "data" / "speech" / "jfk.flac"))
    rng = np.random.default_rng(0)
    unit = np.concatenate([jfk, 0.01 * rng.standard_normal(len(jfk))]).astype(np.float32)
    n = int(args.minutes * 60 * 16000)
    audio = np.tile(unit, n // len(unit) + 1)[:n // 512 * 512]
    seconds = len(audio) / 16000
    silero.speech_probabilities(audio[:16000 * 10])  # load and warm up
    times, cpu = [], []
    for _ in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = silero.speech_probabilities(audio)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t_ours, c_ours = statistics.median(times), statistics.median(cpu)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/a.npy", audio)
        out = subprocess.run([sys.executable, "-c", PACKAGE, f"{tmp}/a.npy", f"{tmp}/p.npy"], check=True,
                             capture_output=True, text=True).stdout
        t_pkg, c_pkg = map(float, out.split()[-2:])
        theirs = np.load(f"{tmp}/p.npy")
    print(f"{seconds / 60:.1f} min of audio, one thread")
    print(f"  ours (batched front end): wall {t_ours:7.3f} s {seconds / t_ours:6.0f}x real time; "
          f"CPU {c_ours:7.3f} s {seconds / c_ours:6.0f}x (median of {args.runs})")
    print(f"  silero-vad's own loop   : wall {t_pkg:7.3f} s {seconds / t_pkg:6.0f}x real time; "
          f"CPU {c_pkg:7.3f} s {seconds / c_pkg:6.0f}x (one run)")
    print(f"  ours is {t_pkg / t_ours:.1f}x faster (wall), {c_pkg / c_ours:.1f}x (CPU); "
          f"largest probability difference {np.abs(ours - theirs).max():.2e}")


if __name__ == "__main__":
    main()
