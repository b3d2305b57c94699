"""Many short files at once: our sequential path, our batched ``exact`` mode (``transcribe_many``)
and faster-whisper's ``BatchedInferencePipeline``, same weights, same settings, in one run.

    python bench/batched.py [--folder DIR] [--rounds 3] [--batch-size 8] [--beam-size 5]
                            [--systems ours-seq ours-batched fw-batched] [--ladder]

The folder (default ``/tmp/wm-batched-clips``, made once) holds at least 20 short English clips
with their reference texts: sentences spoken by espeak-ng (three voices, several speeds) when it
is installed, and the repository's three real recordings (tests/data/speech). Each system runs
in its own process (a fresh process per run: its peak memory is its own), the systems in a
rotated order every round (the machine is shared: medians and ratios, not single timings).
Timed: from the first file opened to the last transcript, the model already loaded and warmed
up on one clip. Reported per system: wall time, audio seconds per second, decoded tokens per
second (timestamp tokens included, every system counting the same way), peak resident memory
of the process, and the word error rate of all clips against their references (openai-whisper's
English normaliser; the word-level edit distance as jiwer computes it).

Settings: language ``en``, one temperature (0: beam search with ``--beam-size``, or greedy with
``--beam-size 0``), no conditioning, timestamps on, no word timing, no VAD and no hallucination
filter: what faster-whisper's batched pipeline can do. faster-whisper batches the chunks of one call, not files, so it is given
every clip in one call (the clips' audio end to end, one ``clip_timestamps`` entry per clip:
each clip is one chunk, as a file of its own would be), its best case. ``--ladder``: our default
fallback ladder instead (0, 0.2, ... 1.0, best_of 5, the thresholds), which only our two
systems run (faster-whisper's batched pipeline keeps the first temperature only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEECH = ROOT / "tests" / "data" / "speech"
SYSTEMS = ("ours-seq", "ours-batched", "fw-batched")

# Harvard sentences (IEEE 1969 recommended practice, public domain), two or three a clip.
SENTENCES = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living.",
    "A king ruled the state in the early days.", "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.", "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.", "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.", "Hop over the fence and plunge in.",
]
VOICES = ("en-us", "en", "en-us+m3")


def make_folder(folder: Path, n_clips: int = 21) -> None:
    """``n_clips`` espeak-ng clips (or none without espeak-ng) and the three real recordings,
    with ``references.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    refs = json.loads((SPEECH / "references.json").read_text())
    for name in refs:
        shutil.copy(SPEECH / name, folder / name)
    if shutil.which("espeak-ng"):
        i = 0
        for k in range(n_clips):
            take = 2 + k % 2
            text = " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(take))
            i += take
            name = f"harvard_{k:02d}.wav"
            subprocess.run(["espeak-ng", "-v", VOICES[k % len(VOICES)], "-s", str(140 + 10 * (k % 4)),
                            "-w", str(folder / name), text], check=True)
            refs[name] = text
    else:  # the real recordings again, trimmed differently: still real speech, fewer words
        print("espeak-ng is not installed: the folder repeats the real recordings", file=sys.stderr)
        for k in range(n_clips):
            name = sorted(r for r in json.loads((SPEECH / "references.json").read_text()))[k % 3]
            copy = f"copy_{k:02d}_{name}"
            shutil.copy(SPEECH / name, folder / copy)
            refs[copy] = refs[name]
    (folder / "references.json").write_text(json.dumps(refs, indent=1))


def clips(folder: Path):
    refs = json.loads((folder / "references.json").read_text())
    return [str(folder / name) for name in sorted(refs)], refs


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words: the word-level edit distance
    (jiwer's WER, without the dependency)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024
    return 0


# -- one system in its own process -------------------------------------------------------------

def our_options(beam_size: int, ladder: bool = False):
    """Our systems' ``TranscribeOptions`` (the module's docstring; ``beam_size`` 0: greedy)."""
    import whispermedia as wm

    # no VAD and no hallucination filter: faster-whisper's side runs with vad_filter=False
    off = {k: v for k, v in dict(vad="off", suppress_hallucinations=False).items()
           if k in {f.name for f in dataclasses.fields(wm.TranscribeOptions)}}
    if ladder:
        return wm.TranscribeOptions.from_kwargs(language="en", **off)
    return wm.TranscribeOptions.from_kwargs(language="en", temperature=(0.0,), beam_size=beam_size or None,
                                            condition_on_previous_text=False, **off)


def worker(system: str, folder: Path, batch_size: int, beam_size: int, ladder: bool, ct2_dir: Path) -> dict:
    files, _ = clips(folder)
    beam = beam_size or None
    if system.startswith("ours"):
        import torch

        import whispermedia as wm

        model = wm.load_model("base")
        opts = our_options(beam_size, ladder)
        torch.manual_seed(0)
        wm.transcribe(files[0], model=model, options=opts)  # warm-up
        start = time.perf_counter()
        if system == "ours-seq":
            results = {}
            for f in files:
                torch.manual_seed(0)  # each file from the same seed, as transcribe_many does
                results[f] = wm.transcribe(f, model=model, options=opts)
        else:
            results = dict(wm.transcribe_many(files, model=model, options=opts, batch_size=batch_size,
                                              batch_mode="exact"))
        wall = time.perf_counter() - start
        for f, r in results.items():
            if isinstance(r, Exception):
                raise r
        texts = {Path(f).name: results[f].text for f in files}
        tokens = sum(len(s.tokens) for r in results.values() for s in r.segments)
    else:
        import numpy as np
        from faster_whisper import BatchedInferencePipeline, WhisperModel
        from faster_whisper.audio import decode_audio

        model = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=os.cpu_count() or 1)
        pipe = BatchedInferencePipeline(model)
        kwargs = dict(language="en", beam_size=beam or 1, without_timestamps=False, vad_filter=False,
                      batch_size=batch_size, word_timestamps=False)
        list(pipe.transcribe(decode_audio(files[0]), **kwargs)[0])  # warm-up
        start = time.perf_counter()
        audios = [decode_audio(f) for f in files]
        bounds, t = [], 0.0
        for a in audios:
            bounds.append({"start": t, "end": t + len(a) / 16000})
            t += len(a) / 16000
        segments = list(pipe.transcribe(np.concatenate(audios), clip_timestamps=bounds, **kwargs)[0])
        wall = time.perf_counter() - start
        texts = {}
        for f, b in zip(files, bounds):
            mine = [s for s in segments if b["start"] - 0.01 <= s.start < b["end"] - 0.01]
            texts[Path(f).name] = "".join(s.text for s in mine).strip()
        tokens = sum(len(s.tokens) for s in segments)
    return {"system": system, "wall": wall, "tokens": tokens, "texts": texts, "peak_rss": peak_rss()}


def run_worker(args, system: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", system, "--folder", str(args.folder), "--batch-size",
           str(args.batch_size), "--beam-size", str(args.beam_size), "--ct2-dir", str(args.ct2_dir)]
    if args.ladder:
        cmd.append("--ladder")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, default=Path("/tmp/wm-batched-clips"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--beam-size", type=int, default=5, help="0: greedy")
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--ladder", action="store_true", help="our default fallback ladder (our systems only)")
    ap.add_argument("--ct2-dir", type=Path, default=Path("/tmp/wm-model-base"))
    ap.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.folder, args.batch_size, args.beam_size, args.ladder,
                                args.ct2_dir)))
        return
    if not (args.folder / "references.json").is_file():
        make_folder(args.folder)
    if "fw-batched" in args.systems:
        sys.path.insert(0, str(HERE))
        from decode import ct2_folder

        ct2_folder("base", args.ct2_dir)
    files, refs = clips(args.folder)
    audio_s = 0.0
    import av

    for f in files:
        with av.open(f) as c:
            audio_s += float(c.duration or 0) / 1e6
    print(f"{len(files)} clips, {audio_s:.1f} s of audio; batch size {args.batch_size}, "
          f"{'ladder' if args.ladder else ('beam ' + str(args.beam_size) if args.beam_size else 'greedy')}; "
          f"{args.rounds} rounds, systems rotated")
    runs = {s: [] for s in args.systems}
    for r in range(args.rounds):
        order = args.systems[r % len(args.systems):] + args.systems[:r % len(args.systems)]
        for s in order:
            res = run_worker(args, s)
            runs[s].append(res)
            print(f"  round {r + 1} {s:13} {res['wall']:7.1f} s", flush=True)

    from whisper.normalizers import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    names = sorted(refs)
    ref_text = norm(" ".join(refs[n] for n in names))
    base = statistics.median(x["wall"] for x in runs[args.systems[0]])
    print(f"\n| system | wall (median) | x {args.systems[0]} | audio s/s | tokens/s | peak RSS | WER |")
    print("|---|---|---|---|---|---|---|")
    for s in args.systems:
        wall = statistics.median(x["wall"] for x in runs[s])
        tokens = runs[s][0]["tokens"]
        hyp = norm(" ".join(runs[s][0]["texts"][n] for n in names))
        wer = word_error_rate(ref_text, hyp)
        rss = max(x["peak_rss"] for x in runs[s]) / 2**20
        print(f"| {s} | {wall:.1f} s | {base / wall:.2f} | {audio_s / wall:.1f} | {tokens / wall:.1f} | "
              f"{rss:.0f} MiB | {100 * wer:.2f}% |")
    if "ours-seq" in runs and "ours-batched" in runs:
        same = all(a["texts"] == b["texts"] for a in runs["ours-seq"] for b in runs["ours-batched"])
        print(f"\nours-batched texts identical to ours-seq: {same}")


if __name__ == "__main__":
    main()
