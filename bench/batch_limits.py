"""What bounds batched decoding on this machine: the encoder's cost per window by threads and
batch, and the memory bandwidth a decoder step's cross-attention gets.

    python bench/batch_limits.py [--model base]

Printed: seconds per 30-second window of the encoder (``embed_audio``) on 1 and on all threads,
one window a call and four, and whether the output's bits depend on either; and
``cross_attention`` for one query row over a window's K/V (one decoder step of one greedy
stream, one layer): with the same K/V every call (in cache) and cycling through 48 windows'
K/V (from memory, as a batch of streams reads them), on 1 and on all threads, as ms a call and
GB/s of K/V read. Medians of repeated calls; the machine is shared, so ranges matter more than
digits.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


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
    args = ap.parse_args()

    import whispermedia as wm
    from whispermedia import ops

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


if __name__ == "__main__":
    main()
