"""What bounds batched decoding on this machine: the encoder's cost per window by threads and
batch, the memory bandwidth a decoder step's cross-attention gets, and (``--folder``) where the
time of a batched run over a folder of short files goes.

    python bench/batch_limits.py [--model base] [--batch-size 8] [--beam-size 0]
                                 [--folder /tmp/wm-batched-clips] [--long /tmp/wm-long-10.wav]

Printed: seconds per 30-second window of the encoder (``embed_audio``) on 1 and on all threads,
one window a call and four, and whether the output's bits depend on either; and
``cross_attention`` for one query row over a window's K/V (one decoder step of one greedy
stream, one layer): with the same K/V every call (in cache) and cycling through 48 windows'
K/V (from memory, as a batch of streams reads them), on 1 and on all threads, as ms a call and
GB/s of K/V read. Medians of repeated calls; the machine is shared, so ranges matter more than
digits.

``--folder``: ``transcribe_many`` over the folder's files (bench/batched.py's settings: greedy,
or ``--beam-size`` beams; ``exact`` mode) with the scheduler's parts timed: the encoder's
seconds on each thread, and the decoder thread's own seconds (each part's time less the parts
timed inside it) in batched steps, prompt steps, cross-attention K/V, the streams' own logic
and opening files; what is left of the decoder thread's wall time is waiting for a window. The
sum over both threads against wall x cores says how busy the machine was. ``--long``: the same
for one long file in ``regions`` mode (bench/batched_long.py's file and settings: our VAD and
hallucination defence on).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import threading
import time
from pathlib import Path

import torch

SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"


def timed(fn, repeat: int) -> float:
    fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="base")
    ap.add_argument("--folder", type=Path, help="also time a batched run over this folder (bench/batched.py's)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--beam-size", type=int, default=0, help="0: greedy")
    ap.add_argument("--long", type=Path, help="also time a regions-mode run of this file (bench/batched_long.py's)")
    args = ap.parse_args()

    import whispermedia as wm

    model = wm.load_model(args.model)
    cores = torch.get_num_threads()
    d = model.dims
    mel = torch.randn(4, d.n_mels, 2 * d.n_audio_ctx, generator=torch.Generator().manual_seed(0))
    print(f"encoder of {args.model}, seconds per window:")
    outputs = {}
    with torch.no_grad():
        for threads in sorted({1, cores}):
            torch.set_num_threads(threads)
            for batch in (1, 4):
                seconds = timed(lambda: model.embed_audio(mel[:batch]), 3) / batch
                outputs[threads, batch] = model.embed_audio(mel[:batch])[:1]
                print(f"  {threads} thread(s), {batch} window(s) a call: {seconds:.3f} s")
        torch.set_num_threads(cores)
    same = all(torch.equal(o, outputs[1, 1]) for o in outputs.values())
    print(f"  the first window's features bit-identical across threads and batches: {same}")

    cross_attention_bandwidth(d, cores)
    if args.folder is not None:
        names = sorted(json.loads((args.folder / "references.json").read_text()))
        profile_run(model, [str(args.folder / n) for n in names], args.batch_size, args.beam_size, "exact")
    if args.long is not None:
        profile_run(model, [str(args.long)], args.batch_size, args.beam_size, "regions")


def cross_attention_bandwidth(d, cores: int) -> None:
    """``cross_attention`` over one window's K/V, in cache and from memory (the docstring)."""
    from whispermedia import ops

    heads, head_dim = d.n_text_head, d.n_text_state // d.n_text_head
    q = torch.randn(1, heads, 1, head_dim)
    kv_bytes = 2 * heads * d.n_audio_ctx * head_dim * 4
    print(f"cross_attention, one query row over one window's K/V ({kv_bytes / 1e6:.1f} MB a layer):")
    for sets in (1, 48):
        ks = [torch.randn(1, heads, d.n_audio_ctx, head_dim) for _ in range(sets)]
        vs = [torch.randn(1, heads, d.n_audio_ctx, head_dim) for _ in range(sets)]

        def sweep():
            for k, v in zip(ks, vs):
                ops.cross_attention(q, k, v, head_dim ** -0.5)

        for threads in sorted({1, cores}):
            torch.set_num_threads(threads)
            per_call = timed(sweep, max(3, 96 // sets)) / sets
            where = "in cache   " if sets == 1 else "from memory"
            print(f"  {where} {threads} thread(s): {per_call * 1e3:.3f} ms a call, {kv_bytes / per_call / 1e9:.1f} GB/s")
        torch.set_num_threads(cores)


def profile_run(model, files, batch_size: int, beam_size: int, mode: str) -> None:
    """Where a batched run's time goes (the module's docstring)."""
    import whispermedia as wm
    from whispermedia import batched, decoding, scheduler

    # the benchmarks' own settings (this script's folder is on sys.path: it runs as a script)
    if mode == "exact":
        from batched import our_options

        opts = our_options(beam_size)
    else:
        from batched_long import our_options

        opts = our_options(beam_size)
    wm.transcribe(files[0] if mode == "exact" else str(SPEECH / "jfk.flac"), model=model, options=opts)  # warm-up

    own = collections.defaultdict(float)  # (thread, part) -> seconds, less the parts timed inside
    calls = collections.Counter()
    local = threading.local()
    patched = []

    def timed_part(owner, name: str, part: str) -> None:
        fn = getattr(owner, name)

        def wrapper(*a, **k):
            stack = local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                took = time.perf_counter() - start
                inner = stack.pop()
                if stack:
                    stack[-1] += took
                thread = "encoder worker" if threading.current_thread().name.startswith("wm-encoder") else "decoder thread"
                own[thread, part] += took - inner
                calls[part] += 1

        patched.append((owner, name, fn))
        setattr(owner, name, wrapper)

    timed_part(model, "embed_audio", "encoder")
    timed_part(batched.BatchedInference, "step", "batched steps")
    timed_part(decoding.LogitsRequest, "serve", "prompt steps")
    timed_part(batched.SlotPool, "fill_cross", "cross-attention K/V")
    timed_part(scheduler.Scheduler, "_advance", "the streams' own logic")
    timed_part(scheduler.Scheduler, "_open", "opening files")
    try:
        start = time.perf_counter()
        results = dict(wm.transcribe_many(files, model=model, options=opts, batch_size=batch_size, batch_mode=mode))
        wall = time.perf_counter() - start
    finally:
        for owner, name, fn in patched:
            if owner is model:
                del model.embed_audio  # the instance attribute: the class's method again
            else:
                setattr(owner, name, fn)
    failed = [f for f, r in results.items() if isinstance(r, Exception)]
    if failed:
        raise results[failed[0]]
    cores = torch.get_num_threads()
    what = f"{len(files)} files of {Path(files[0]).parent}" if len(files) > 1 else files[0]
    print(f"batched run over {what} (batch size {batch_size}, "
          f"{'beam ' + str(beam_size) if beam_size else 'greedy'}, {mode}): {wall:.2f} s on {cores} cores")
    busy = sum(own.values())
    decoder_busy = sum(v for (t, _), v in own.items() if t == "decoder thread")
    for (thread, part), seconds in sorted(own.items()):
        print(f"  {thread:14} {part:24} {seconds:6.2f} s  ({calls[part]} calls)")
    print(f"  decoder thread waiting for a window   {max(0.0, wall - decoder_busy):6.2f} s")
    print(f"  busy: {busy:.1f} core-seconds of {wall * cores:.1f} ({100 * busy / (wall * cores):.0f}%); "
          f"encoder {calls['encoder'] and sum(v for (t, p), v in own.items() if p == 'encoder') / calls['encoder']:.3f} s a window")


if __name__ == "__main__":
    main()
