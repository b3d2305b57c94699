"""One long file: our sequential loop, our ``regions`` batch mode (the file cut at speech pauses
into parts decoded side by side) and faster-whisper's ``BatchedInferencePipeline``, same weights,
same settings, in one run.

    python bench/batched_long.py [--minutes 10] [--rounds 2] [--batch-size 8] [--beam-size 5]
                                 [--systems ours-seq ours-regions fw-batched] [--preset default]
                                 [--condition] [--region-seconds 60]

The file (``/tmp/wm-long-<minutes>.wav``, made once, with its reference text) is long-form
speech with the pauses of real talk: utterances of one to three Harvard sentences spoken by
espeak-ng (three voices, four speeds) and the repository's three real recordings, in turn,
separated by pauses of 0.4 to 8 s over room tone (-60 dBFS pink noise). Each system runs in its
own process, the systems rotated every round; timed from the file opened to the transcript,
the model loaded and warmed up. Reported: wall time, audio seconds per second, tokens per
second, peak resident memory, WER against the reference (openai-whisper's English normaliser),
and the utterances lost (an utterance with under half of its words found in the transcript's
words that fall in its time span, for ours; a missed utterance costs the WER too).

Settings: language ``en``, our VAD and hallucination defence on (our defaults; faster-whisper's
batched pipeline runs its own Silero VAD, as it must to batch one file), one temperature (0:
beam search with ``--beam-size``, greedy with ``--beam-size 0``), no conditioning (faster-whisper's
batched pipeline has none). ``--preset NAME``: our preset as it is instead (the ladder, its
conditioning), our two systems only; ``--condition``: with conditioning on previous text.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEECH = ROOT / "tests" / "data" / "speech"
sys.path.insert(0, str(HERE))

from batched import SENTENCES, VOICES, peak_rss, word_error_rate  # noqa: E402

SYSTEMS = ("ours-seq", "ours-regions", "fw-batched")
SR = 16000
PAUSES = (0.4, 1.2, 0.7, 3.0, 0.5, 8.0, 1.0, 2.0, 0.6, 5.0)


def _samples(path: Path) -> np.ndarray:
    import whispermedia as wm

    return wm.load_audio(str(path))


def make_file(path: Path, minutes: float) -> None:
    """The long file and ``<path>.json``: its reference text and each utterance's (start, end, text)."""
    import shutil
    import tempfile

    if not shutil.which("espeak-ng"):
        raise SystemExit("bench/batched_long.py needs espeak-ng (apt-get install espeak-ng)")
    refs = json.loads((SPEECH / "references.json").read_text())
    real = sorted(refs)
    rng = np.random.default_rng(13)
    pieces, utterances, t, k, s = [], [], 0.0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        while t < minutes * 60:
            if k % 5 == 4:  # every fifth utterance a real recording
                name = real[(k // 5) % len(real)]
                audio, text = _samples(SPEECH / name), refs[name]
            else:
                take = 1 + k % 3
                text = " ".join(SENTENCES[(s + j) % len(SENTENCES)] for j in range(take))
                s += take
                wav = Path(tmp) / f"u{k}.wav"
                subprocess.run(["espeak-ng", "-v", VOICES[k % len(VOICES)], "-s", str(140 + 10 * (k % 4)),
                                "-w", str(wav), text], check=True)
                audio = _samples(wav)
            pause = PAUSES[k % len(PAUSES)]
            pieces.append(audio)
            utterances.append((round(t, 3), round(t + len(audio) / SR, 3), text))
            t += len(audio) / SR
            pieces.append(np.zeros(int(pause * SR), np.float32))
            t += pause
            k += 1
    audio = np.concatenate(pieces)
    pink = np.cumsum(rng.normal(size=audio.shape[0])).astype(np.float32)
    pink -= np.convolve(pink, np.ones(801) / 801, mode="same").astype(np.float32)  # a brown-ish bed, no drift
    pink *= 10 ** (-60 / 20) / max(1e-9, float(np.sqrt(np.mean(pink ** 2))))
    audio = np.clip(audio + pink, -1, 1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())
    path.with_suffix(".json").write_text(json.dumps({"utterances": utterances}, indent=1))


def our_options(beam_size: int, preset: str = "", condition: bool = False):
    """Our systems' ``TranscribeOptions``: ``preset`` as it is, or one temperature with
    ``beam_size`` beams (0: greedy); language en, conditioning on previous text as asked."""
    import whispermedia as wm

    if preset:
        return wm.TranscribeOptions.from_kwargs(preset=preset, language="en", condition_on_previous_text=condition)
    return wm.TranscribeOptions.from_kwargs(language="en", temperature=(0.0,), beam_size=beam_size or None,
                                            condition_on_previous_text=condition)


def worker(system: str, path: Path, batch_size: int, beam_size: int, preset: str, condition: bool,
           region_seconds: float, ct2_dir: Path) -> dict:
    beam = beam_size or None
    if system.startswith("ours"):
        import torch

        import whispermedia as wm

        model = wm.load_model("base")
        opts = our_options(beam_size, preset, condition)
        wm.transcribe(str(SPEECH / "jfk.flac"), model=model, options=opts)  # warm-up
        torch.manual_seed(0)
        start = time.perf_counter()
        if system == "ours-seq":
            result = wm.transcribe(str(path), model=model, options=opts)
        else:
            ((_, result),) = list(wm.transcribe_many([str(path)], model=model, options=opts, batch_size=batch_size,
                                                     batch_mode="regions", region_seconds=region_seconds))
            if isinstance(result, Exception):
                raise result
        wall = time.perf_counter() - start
        segments = [(s.start, s.end, s.text) for s in result.segments]
        tokens = sum(len(s.tokens) for s in result.segments)
        parts = len(result.info.parts or ()) or 1
    else:
        from faster_whisper import BatchedInferencePipeline, WhisperModel
        from faster_whisper.audio import decode_audio

        model = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=os.cpu_count() or 1)
        pipe = BatchedInferencePipeline(model)
        kwargs = dict(language="en", beam_size=beam or 1, without_timestamps=False, vad_filter=True,
                      batch_size=batch_size, word_timestamps=False)
        list(pipe.transcribe(decode_audio(str(SPEECH / "jfk.flac")), **kwargs)[0])  # warm-up
        start = time.perf_counter()
        out = list(pipe.transcribe(decode_audio(str(path)), **kwargs)[0])
        wall = time.perf_counter() - start
        segments = [(s.start, s.end, s.text) for s in out]
        tokens = sum(len(s.tokens) for s in out)
        parts = 0
    return {"system": system, "wall": wall, "tokens": tokens, "segments": segments, "parts": parts,
            "peak_rss": peak_rss()}


def lost_utterances(utterances, segments, norm) -> int:
    """Utterances with under half of their words among the words of the segments overlapping them."""
    lost = 0
    for a, b, text in utterances:
        words = norm(text).split()
        heard = norm(" ".join(t for s, e, t in segments if s < b + 0.5 and e > a - 0.5)).split()
        found = sum(1 for w in words if w in heard)
        lost += found < len(words) / 2
    return lost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--beam-size", type=int, default=5, help="0: greedy")
    ap.add_argument("--preset", default="", help="our preset as it is (our systems only)")
    ap.add_argument("--condition", action="store_true", help="condition on previous text")
    ap.add_argument("--region-seconds", type=float, default=60.0)
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--ct2-dir", type=Path, default=Path("/tmp/wm-model-base"))
    ap.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = Path(f"/tmp/wm-long-{args.minutes:g}.wav")
    if args.worker:
        print(json.dumps(worker(args.worker, path, args.batch_size, args.beam_size, args.preset, args.condition,
                                args.region_seconds, args.ct2_dir)))
        return
    if not path.with_suffix(".json").is_file():
        make_file(path, args.minutes)
    if "fw-batched" in args.systems:
        from decode import ct2_folder

        ct2_folder("base", args.ct2_dir)
    utterances = json.loads(path.with_suffix(".json").read_text())["utterances"]
    with wave.open(str(path)) as w:
        audio_s = w.getnframes() / w.getframerate()
    setting = (f"preset {args.preset}" if args.preset else
               ("beam " + str(args.beam_size) if args.beam_size else "greedy"))
    print(f"{audio_s:.0f} s of audio, {len(utterances)} utterances; batch size {args.batch_size}, {setting}, "
          f"conditioning {'on' if args.condition else 'off'}, region-seconds {args.region_seconds:g}; "
          f"{args.rounds} rounds, systems rotated")
    runs = {s: [] for s in args.systems}
    for r in range(args.rounds):
        order = args.systems[r % len(args.systems):] + args.systems[:r % len(args.systems)]
        for s in order:
            cmd = [sys.executable, __file__, "--worker", s, "--minutes", str(args.minutes), "--batch-size",
                   str(args.batch_size), "--beam-size", str(args.beam_size), "--preset", args.preset,
                   "--region-seconds", str(args.region_seconds), "--ct2-dir", str(args.ct2_dir)]
            if args.condition:
                cmd.append("--condition")
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            runs[s].append(res)
            print(f"  round {r + 1} {s:13} {res['wall']:7.1f} s", flush=True)

    from whisper.normalizers import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    ref = norm(" ".join(u[2] for u in utterances))
    base = statistics.median(x["wall"] for x in runs[args.systems[0]])
    print(f"\n| system | wall (median) | x {args.systems[0]} | audio s/s | tokens/s | peak RSS | WER | "
          f"utterances lost | parts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in args.systems:
        wall = statistics.median(x["wall"] for x in runs[s])
        first = runs[s][0]
        hyp = norm(" ".join(t for _, _, t in first["segments"]))
        wer = word_error_rate(ref, hyp)
        rss = max(x["peak_rss"] for x in runs[s]) / 2**20
        lost = lost_utterances(utterances, first["segments"], norm)
        print(f"| {s} | {wall:.1f} s | {base / wall:.2f} | {audio_s / wall:.1f} | {first['tokens'] / wall:.1f} | "
              f"{rss:.0f} MiB | {100 * wer:.2f}% | {lost} of {len(utterances)} | {first['parts'] or '-'} |")
    for s in args.systems:
        same = all(x["segments"] == runs[s][0]["segments"] for x in runs[s])
        print(f"{s}: the same transcript every round: {same}")


if __name__ == "__main__":
    main()
