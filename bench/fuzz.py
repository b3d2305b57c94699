"""A long fuzz run: mutated media and model files, only documented errors allowed.

The same harness as tests/test_fuzz.py (tests/fuzzing.py: seeds made with PyAV and the tiny
made-up model, byte and JSON mutations, one worker process, a per-case time bound and a
memory ceiling), with more cases. Prints the outcome counts per kind and every case that broke
a rule (an undocumented exception, a hang, a memory blow-up, a dead worker); exits 1 if any.

    python bench/fuzz.py                          # 5000 media, 1500 model, 100 tokenizer cases
    python bench/fuzz.py --seed 16 --only media --start 123 --media 1   # replay one case
    python bench/fuzz.py --finite-check base      # what refusing NaN/inf weights costs at load
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzzing  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--media", type=int, default=5000)
    ap.add_argument("--model", type=int, default=1500)
    ap.add_argument("--tokenizer", type=int, default=100)
    ap.add_argument("--only", choices=fuzzing.KINDS)
    ap.add_argument("--start", type=int, default=0, help="first case index")
    ap.add_argument("--case-seconds", type=float, default=20.0, help="a case slower than this is a hang")
    ap.add_argument("--max-rss-mb", type=int, default=1536, help="the worker's memory ceiling")
    ap.add_argument("--finite-check", metavar="MODEL", help="only time the non-finite weight check on MODEL")
    args = ap.parse_args()
    if args.finite_check:
        return time_finite_check(args.finite_check)
    counts = {"media": args.media, "model": args.model, "tokenizer": args.tokenizer}
    bad = 0
    with tempfile.TemporaryDirectory(prefix="wm-fuzz-") as tmp:
        workdir = Path(tmp)
        fuzzing.prepare(workdir)
        print(f"seed {args.seed}")
        print(f"{'kind':<10} {'cases':>6} {'seconds':>8} {'slowest s':>9} {'peak MB':>8}  outcomes")
        for kind in fuzzing.KINDS:
            if (args.only and kind != args.only) or counts[kind] <= 0:
                continue
            t0 = time.perf_counter()
            r = fuzzing.run_cases(kind, args.seed, counts[kind], workdir, start=args.start,
                                  case_seconds=args.case_seconds, max_rss=args.max_rss_mb << 20)
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))
            print(f"{kind:<10} {r.cases:>6} {time.perf_counter() - t0:>8.1f} {r.slowest:>9.2f} "
                  f"{r.peak_rss >> 20:>8}  {outcomes}")
            for line in r.bad:
                print(f"  BAD {kind} case {line}")
            bad += len(r.bad)
    print(f"{bad} cases broke a rule")
    return 1 if bad else 0


def time_finite_check(name: str) -> int:
    """The load-time NaN/inf check (``weights.check_finite``) on a registry model's weights, one
    thread, median of 7, against the whole load (``load_model``) once."""
    import statistics

    import torch

    from whispermedia.models import REGISTRY, _read_registry_checkpoint, load_model
    from whispermedia.weights import check_finite

    torch.set_num_threads(1)
    checkpoint = _read_registry_checkpoint(REGISTRY[name])
    tensors = checkpoint.state_dict
    n = sum(t.numel() for t in tensors.values())
    dtype = next(iter(tensors.values())).dtype
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        check_finite(tensors, name)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    load_model(name)
    load = time.perf_counter() - t0
    print(f"{name}: {n / 1e6:.1f} M {str(dtype).replace('torch.', '')} weights; check_finite median "
          f"{statistics.median(times) * 1000:.0f} ms (1 thread); load_model {load:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
