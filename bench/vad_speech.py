"""Real speech does not pay for the VAD, and non-speech is skipped, not decoded.

    python bench/vad_speech.py --model base              # WER with and without the VAD
    python bench/vad_speech.py --model base --cost       # and the cost of a minute of non-speech

Part 1, long-form speech with long pauses: the repo's English clips (tests/data/speech, each
twice, 36 s of speech) joined by pauses of 0.7 to 20 s, in three beds: room tone (-60 dBFS
pink noise), a music bed (-30 dBFS chords with a beat, under the speech too) and a noise bed
(-35 dBFS pink noise, under the speech too). Each is transcribed with the defaults (VAD and
defence on) and with ``vad="off", suppress_hallucinations=False`` (the engine before them), with
word timestamps. Printed: WER against the references (openai-whisper's English normaliser),
the utterances whose words were lost (an utterance's recall more than 20 points under the
no-VAD run's), and the words not wholly inside one detected speech region widened by
``vad_pad``.

Part 2 (``--cost``): wall time of ``wm.transcribe`` with the defaults on 60 s of speech (the
clips end to end with short pauses) and on 60 s of non-speech (music over noise), median of 3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "data" / "speech"
sys.path.insert(0, str(ROOT / "bench"))

import nonspeech_corpus as nc  # noqa: E402

SR = 16000
PAUSES = [0.7, 6.0, 2.0, 12.0, 1.2, 20.0, 4.0]
ORDER = ["jfk.flac", "arctic_a0007.flac", "arctic_a0009.flac", "arctic_a0009.flac", "jfk.flac",
         "arctic_a0007.flac"]


def wer(ref: list, hyp: list) -> float:
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))


def recall(ref: list, hyp: list) -> float:
    pool = list(hyp)
    hit = 0
    for w in ref:
        if w in pool:
            pool.remove(w)
            hit += 1
    return hit / max(1, len(ref))


def long_form(bed: str, arrangement: int = 0):
    """(samples, [(start, end, reference text)]) of the speech with pauses in ``bed``;
    ``arrangement`` > 0 shuffles the clips' order and the pauses (seeded)."""
    from whispermedia.media import load_audio

    refs = json.loads((SPEECH / "references.json").read_text())
    rng = np.random.default_rng(7 + arrangement)
    order, pauses = list(ORDER), list(PAUSES)
    if arrangement:
        rng.shuffle(order)
        rng.shuffle(pauses)
    pieces, spans, t = [], [], 0.0
    for i, name in enumerate(order):
        pause = np.zeros(int(pauses[i % len(pauses)] * SR))
        speech = load_audio(str(SPEECH / name))
        pieces += [pause, speech]
        t += len(pause) / SR
        spans.append((t, t + len(speech) / SR, refs[name]))
        t += len(speech) / SR
    pieces.append(np.zeros(int(3.0 * SR)))
    x = np.concatenate(pieces)
    if bed == "room":
        x = x + nc.noise(1.0, -60)(rng, len(x))
    elif bed == "music":
        x = x + nc.music("chords", -30, "organ", 100, True)(rng, len(x))
    elif bed == "noise":
        x = x + nc.noise(1.0, -35)(rng, len(x))
    return x.astype(np.float32), spans


def part1(model, norm, arrangements: int, overrides: dict) -> None:
    import whispermedia as wm

    print("| bed, arrangement | WER, VAD off | WER, defaults (VAD on) | utterances lost | "
          "words outside a region ± pad | suppressed |")
    print("|---|---|---|---|---|---|")
    errors = {"off": 0.0, "on": 0.0}
    total = 0
    for bed, k in [(b, k) for k in range(arrangements) for b in ("room", "music", "noise")]:
        audio, spans = long_form(bed, k)
        ref = norm(" ".join(s[2] for s in spans)).split()
        off = wm.transcribe(audio, model=model, language="en", word_timestamps=True, vad="off",
                            suppress_hallucinations=False)
        on = wm.transcribe(audio, model=model, language="en", word_timestamps=True, **overrides)
        pad = on.info.options.vad_pad
        regions = [(r.start - pad, r.end + pad) for r in on.info.speech]
        words = [w for s in on.segments for w in (s.words or ())]
        # strict: the whole word inside one region widened by the padding (so a word DTW stretches
        # over a pause between two regions counts as outside too)
        outside = [w for w in words if not any(a <= w.start and w.end <= b for a, b in regions)]
        lost = 0
        for a, b, text in spans:  # each utterance's recall from the words timed inside it
            r_on, r_off = ([x for s in t.segments for w in (s.words or ()) if a - 1 <= w.start <= b + 1
                            for x in norm(w.word).split()] for t in (on, off))
            uref = norm(text).split()
            lost += recall(uref, r_on) < recall(uref, r_off) - 0.2
        w_off, w_on = wer(ref, norm(off.text).split()), wer(ref, norm(on.text).split())
        errors["off"] += w_off * len(ref)
        errors["on"] += w_on * len(ref)
        total += len(ref)
        print(f"| {bed}, {k} | {100 * w_off:.2f}% | {100 * w_on:.2f}% | {lost} of {len(spans)} | "
              f"{len(outside)} of {len(words)} | {len(on.info.suppressed or ())} |", flush=True)
        for w in outside:
            print(f"    outside: {w.word!r} {w.start:.2f}-{w.end:.2f}")
    print(f"| all ({total} words) | {100 * errors['off'] / total:.2f}% | {100 * errors['on'] / total:.2f}% | | | |")


def part2(model) -> None:
    import whispermedia as wm
    from whispermedia.media import load_audio

    rng = np.random.default_rng(3)
    clips = [load_audio(str(SPEECH / n)) for n in ORDER]
    pieces = []
    while sum(map(len, pieces)) < 60 * SR:
        for c in clips:
            pieces += [c, np.zeros(int(0.5 * SR))]
    speech = np.concatenate(pieces)[:60 * SR].astype(np.float32)
    music = (nc.music("melody", -24, "pluck", 110, True)(rng, 60 * SR)
             + nc.noise(1.0, -40)(rng, 60 * SR)).astype(np.float32)
    times = {"speech": [], "non-speech": []}
    for _ in range(3):
        for name, audio in (("speech", speech), ("non-speech", music)):
            t0 = time.perf_counter()
            t = wm.transcribe(audio, model=model, language="en")
            times[name].append(time.perf_counter() - t0)
            if name == "non-speech":
                assert not t.text.strip(), t.text
    a, b = statistics.median(times["speech"]), statistics.median(times["non-speech"])
    print(f"a minute of speech: {a:.2f} s; a minute of non-speech: {b:.2f} s; ratio {b / a:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="base")
    ap.add_argument("--cost", action="store_true", help="also part 2, the cost of non-speech")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--arrangements", type=int, default=1, help="clip orders and pauses, each in every bed")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="options of the VAD-on run besides the defaults (vad_pad=0.4 ...)")
    args = ap.parse_args()
    import torch
    from whisper.normalizers import EnglishTextNormalizer

    import whispermedia as wm

    torch.set_num_threads(args.threads)
    model = wm.load_model(args.model)
    from whispermedia.options import TranscribeOptions, parse_option

    overrides = {k: parse_option(TranscribeOptions, k, v) for k, v in (s.split("=", 1) for s in args.set)}
    part1(model, EnglishTextNormalizer(), args.arrangements, overrides)
    if args.cost:
        part2(model)


if __name__ == "__main__":
    main()
