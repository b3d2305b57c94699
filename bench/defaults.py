"""Decoding defaults by measurement: word error rate and time of each decoding strategy.

    python bench/defaults.py [--model base] [--long MEDIA REFERENCE] [--clips FOLDER] [--repeat N]
                             [--seeds N] [--openai] [--only NAME,...]

Each strategy (``STRATEGIES`` below: openai-whisper's CLI defaults, its ``transcribe()`` defaults,
greedy with and without fallback and conditioning, beam search...) transcribes the long-form file
and the real clips with our pipeline, the model loaded once. The script prints, per strategy: the
WER on the long file and on the clips (openai-whisper's English normaliser, jiwer), the time of
the long file (median over ``--repeat`` rounds; the strategies alternate within each round, so
load on the machine hits them alike) and its ratio to greedy, and how many windows fell back to
sampling. Sampling makes a strategy with fallback depend on the random numbers: ``--seeds N``
runs such a strategy with ``torch.manual_seed(0..N-1)`` and reports the mean WER and its range.

``--openai`` also runs openai-whisper's own ``transcribe()`` with its CLI defaults on the same
weights (the reference's figure, with its own random numbers).

reference: lines starting with '#' are skipped; a line with tab-separated columns contributes its
last column (the layout of the long-form file's reference, see bench/long_form.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from fidelity import clips_from, load_both
from long_form import reference_text

ROOT = Path(__file__).resolve().parent.parent

# name -> (preset, options given beside it, what it is)
STRATEGIES = {
    "openai": ("openai", {}, "openai-whisper CLI defaults: beam 5, best_of 5, fallback, conditioning"),
    "openai-transcribe": ("openai-transcribe", {}, "openai-whisper transcribe() defaults: greedy, fallback, conditioning"),
    "greedy": ("greedy", {}, "greedy, no fallback, no conditioning"),
    "greedy+cond": ("greedy", dict(condition_on_previous_text=True), "greedy, conditioning, no fallback"),
    "greedy+fallback": ("greedy", dict(temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),
                        "greedy, fallback (best_of 5), no conditioning"),
    "beam5": ("greedy", dict(beam_size=5), "beam 5, no fallback, no conditioning"),
    "beam5+fallback": ("greedy", dict(beam_size=5, temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),
                       "beam 5, fallback (best_of 5), no conditioning"),
    # the cost of detecting the language per region (the language is then not given)
    "greedy+per-region": ("greedy", dict(language_per_region=True), "greedy, language detected per region"),
    "default+per-region": ("default", dict(language_per_region=True), "default preset, language detected per region"),
}
DEFAULT_ORDER = [n for n in STRATEGIES if "per-region" not in n]


def samples_random(options) -> bool:
    temps = options.temperature
    return any(t > 0 for t in temps)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="base")
    ap.add_argument("--long", nargs=2, type=Path, metavar=("MEDIA", "REFERENCE"),
                    default=[Path("/tmp/wm-long/long.mp4"), Path("/tmp/wm-long/reference.txt")])
    ap.add_argument("--clips", type=Path, default=ROOT / "tests" / "data" / "speech",
                    help="folder of real clips with references.json")
    ap.add_argument("--repeat", type=int, default=1, help="rounds over all strategies (time: median)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per strategy that samples on fallback")
    ap.add_argument("--openai", action="store_true", help="also openai-whisper's transcribe() with its CLI defaults")
    ap.add_argument("--only", default=None, help="comma-separated strategy names (default: all but the "
                    "per-region ones)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    import whispermedia as wm
    from whispermedia.options import TranscribeOptions

    normalise = EnglishTextNormalizer()
    names = args.only.split(",") if args.only else DEFAULT_ORDER
    ours, ref = load_both(args.model)
    media, reference_path = args.long
    long_audio = wm.load_audio(media)
    long_ref = normalise(reference_text(reference_path))
    references = json.loads((args.clips / "references.json").read_text(encoding="utf-8"))
    clips = [(c, wm.load_audio(c), references[c.name]) for c in clips_from([args.clips]) if c.name in references]
    clip_ref = normalise(" ".join(r for _, _, r in clips))
    duration = len(long_audio) / 16000

    results = {name: dict(times=[], wers=[], clip_wers=[], fallbacks=[], windows=[]) for name in names}
    for round_ in range(args.repeat):
        order = names if round_ % 2 == 0 else list(reversed(names))
        for name in order:
            preset, extra, _ = STRATEGIES[name]
            options = dict(extra)
            opts = TranscribeOptions.from_kwargs(preset=preset, **options)
            seeds = range(args.seeds) if samples_random(opts) else range(1)
            for seed in seeds:
                torch.manual_seed(seed)
                t0 = time.perf_counter()
                language = None if options.get("language_per_region") else "en"
                t = wm.transcribe(long_audio, model=ours, language=language, preset=preset, **options)
                elapsed = time.perf_counter() - t0
                r = results[name]
                if seed == 0:
                    r["times"].append(elapsed)
                if round_ == 0:
                    r["wers"].append(jiwer.wer(long_ref, normalise(t.text)))
                    r["fallbacks"].append(len({s.seek for s in t.segments if s.temperature > 0}))
                    r["windows"].append(len({s.seek for s in t.segments}))
                    torch.manual_seed(seed)
                    hyp = " ".join(wm.transcribe(a, model=ours, language=language, preset=preset, **options).text
                                   for _, a, _ in clips)
                    r["clip_wers"].append(jiwer.wer(clip_ref, normalise(hyp)))
                print(f"  {name:18} round {round_} seed {seed}: WER {100 * r['wers'][-1]:.2f}%  {elapsed:.1f} s",
                      file=sys.stderr, flush=True)

    openai_row = None
    if args.openai:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        out = ref.transcribe(long_audio, language="en", fp16=False, verbose=None, beam_size=5, best_of=5)
        elapsed = time.perf_counter() - t0
        hyp = " ".join(ref.transcribe(a, language="en", fp16=False, verbose=None, beam_size=5, best_of=5)["text"]
                       for _, a, _ in clips)
        openai_row = (jiwer.wer(long_ref, normalise(out["text"])), jiwer.wer(clip_ref, normalise(hyp)), elapsed,
                      len({s["seek"] for s in out["segments"] if s["temperature"] > 0}))

    base_time = statistics.median(results["greedy"]["times"]) if "greedy" in results else None
    print(f"\nmodel {args.model}; long file {media.name} ({duration:.0f} s), clips {len(clips)} from {args.clips}; "
          f"{args.repeat} round(s), {args.seeds} seed(s)")
    print("| strategy | what | WER long | WER clips | time long (s) | vs greedy | windows fallen back |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        r = results[name]
        wer = statistics.mean(r["wers"])
        spread = f" ({100 * min(r['wers']):.2f}-{100 * max(r['wers']):.2f})" if len(r["wers"]) > 1 else ""
        t = statistics.median(r["times"])
        ratio = f"{t / base_time:.2f}x" if base_time else ""
        fb = f"{statistics.mean(r['fallbacks']):.1f} of {statistics.mean(r['windows']):.0f}"
        print(f"| {name} | {STRATEGIES[name][2]} | {100 * wer:.2f}%{spread} | {100 * statistics.mean(r['clip_wers']):.2f}% "
              f"| {t:.1f} | {ratio} | {fb} |")
    if openai_row:
        w, cw, t, fb = openai_row
        ratio = f"{t / base_time:.2f}x" if base_time else ""
        print(f"| openai-whisper itself | its transcribe() with its CLI defaults | {100 * w:.2f}% | {100 * cw:.2f}% "
              f"| {t:.1f} | {ratio} | {fb} |")
    if args.json:
        args.json.write_text(json.dumps(dict(results=results, openai=openai_row), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
