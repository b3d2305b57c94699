"""Word timestamps side by side: whispermedia against openai-whisper, same weights, greedy.

    python bench/word_timing.py [--model base] [--clip FILE ...] [--tol 0.02]

For each clip, both transcribe with ``temperature=0.0, word_timestamps=True`` (openai with
``fp16=False``), and the script prints: whether the texts are equal, how many words each has,
the share of words whose start and end are both within ``--tol`` seconds of openai's, the
share that are exactly equal, the largest difference, and whether the segment bounds agree.

A second table isolates the timing step from decoding: both ``find_alignment``s run on the
same text tokens (openai's first window) and the same audio, and the word times are compared.

Clips: the files under tests/data/speech/ when there are any, otherwise (or with --synth as
well) speech synthesised with espeak-ng into a temporary folder. The openai model receives our
registry weights as float32 and our alignment heads as its mask.

"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fidelity import openai_model

ROOT = Path(__file__).resolve().parent.parent
SPEECH_DIR = ROOT / "tests" / "data" / "speech"
AUDIO_EXT = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mp4", ".mkv", ".webm"}

SYNTH = {
    "short": "The quick brown fox jumps over the lazy dog.",
    "sentences": ("Hello there. My name is Alice, and I live in Paris! "
                  "Do you know what time it is? It is half past seven in the morning."),
    "quotes": ('He said, "I will be there at noon." Then he left (without a word) and never came back. '
               "Well, that's life: sometimes people leave."),
    "numbers": "In 1969, three astronauts flew to the moon; the trip took about 3 days and 4 hours.",
    # SSML breaks: long pauses, where the clamping of words after a pause applies
    "pauses": ('<speak>Good evening. <break time="4s"/> Tonight we talk about music. <break time="6s"/> '
               'First, a question: who wrote the song? <break time="3s"/> Nobody knows. '
               '<break time="8s"/> Thank you.</speak>'),
    "long": " ".join([
        "Once upon a time, in a small village by the sea, there lived an old fisherman.",
        "Every morning he would wake before sunrise, walk down to the harbour, and prepare his boat.",
        "The villagers often wondered why he kept working at his age.",
        "He would only smile and say that the sea was his oldest friend.",
        "One winter, a terrible storm struck the coast, and many boats were lost.",
        "When the weather finally cleared, the fisherman rowed out alone to search for survivors.",
        "He found two young sailors clinging to a broken mast, cold and exhausted.",
        "He brought them home, wrapped them in blankets, and fed them warm soup.",
        "From that day on, the sailors visited him every summer and helped him mend his nets.",
        "And when he finally grew too old to sail, they took his boat out in his honour.",
    ]),
}


def synthesize(folder: Path) -> list:
    clips = []
    for name, text in SYNTH.items():
        path = folder / f"{name}.wav"
        args = ["espeak-ng", "-w", str(path)]
        if name == "long":
            args += ["-g", "12"]  # longer pauses between words, past 30 s: several windows
        if text.startswith("<speak>"):
            args += ["-m"]
        subprocess.run(args + [text], check=True, capture_output=True)
        clips.append(path)
    return clips


def ours_transcribe(model, audio, **kw):
    from whispermedia import pipeline

    return pipeline.transcribe(audio, model=model, preset="openai-transcribe", **kw)  # openai's defaults


def compare_words(ref_words, our_words, tol):
    n = min(len(ref_words), len(our_words))
    within = exact = 0
    max_diff = 0.0
    for a, b in zip(ref_words, our_words):
        d = max(abs(a["start"] - b.start), abs(a["end"] - b.end))
        max_diff = max(max_diff, d)
        within += d <= tol + 1e-9
        exact += a["start"] == b.start and a["end"] == b.end and a["word"] == b.word
    return n, within, exact, max_diff


def same_token_alignment(ow, ours, audio, ref_result, tol):
    """Both find_alignment on openai's first-window text tokens and the same window."""
    import whisper.audio as wa
    import whisper.timing as wt
    from whisper.tokenizer import get_tokenizer
    from whispermedia.timing import find_alignment

    lang = ref_result["language"]
    first = [s for s in ref_result["segments"] if s["seek"] == 0]
    text = [t for s in first for t in s["tokens"] if t < 50257 + (0 if ow.is_multilingual else -1)]
    if not text:
        return None
    num_frames = min(wa.N_FRAMES, len(audio) // wa.HOP_LENGTH)
    mel_full = wa.log_mel_spectrogram(audio, ow.dims.n_mels, padding=wa.N_SAMPLES)
    mel = wa.pad_or_trim(mel_full[:, :num_frames], wa.N_FRAMES)
    otok = get_tokenizer(ow.is_multilingual, num_languages=ow.num_languages, language=lang, task="transcribe")
    ref = wt.find_alignment(ow, otok, text, mel, num_frames)
    our_tok = ours.tokenizer.with_language_and_task(lang, "transcribe")
    with torch.no_grad():  # the same mel window for both: only the timing step differs
        feats = ours.embed_audio(torch.as_tensor(mel)[None])
    mine = find_alignment(ours, our_tok, text, feats, num_frames)
    n = min(len(ref), len(mine))
    same = sum(a.word == b.word and float(a.start) == b.start and float(a.end) == b.end for a, b in zip(ref, mine))
    close = sum(abs(a.start - b.start) <= tol + 1e-9 and abs(a.end - b.end) <= tol + 1e-9 for a, b in zip(ref, mine))
    pmax = max((abs(a.probability - b.probability) for a, b in zip(ref, mine)), default=0.0)
    return len(ref), len(mine), same, close, n, pmax


def rules_fuzz(trials: int, seed: int = 0):
    """openai's and our ``add_word_timestamps`` on the same random alignments and segments.

    ``find_alignment`` is replaced in both by one that returns a prepared alignment, so only
    the rules differ: long-word capping, punctuation merging, rounding, the segment bounds.
    Returns (trials, trials whose segments and words are exactly equal, first mismatch).
    """
    import whisper.timing as wt
    from whispermedia import timing
    from whispermedia.types import Segment

    rng = np.random.default_rng(seed)
    pool = [" Hello", " world", "ing", ".", ",", "!", "?", " (", ")", ' "', '"', " -", " it", "'s", "。", ":"]
    eot = 50257

    class Tok:  # what add_word_timestamps asks of the tokenizer when alignment is given
        pass

    tok = Tok()
    tok.eot = eot
    saved = (wt.find_alignment, timing.find_alignment)
    equal = 0
    first_bad = None
    try:
        for trial in range(trials):
            n_words = int(rng.integers(0, 14))
            t = float(rng.integers(0, 200)) / 50
            words = []
            for _ in range(n_words):
                t += float(rng.choice([0, 0, 0.02, 0.5, 3.0], p=[.5, .2, .1, .1, .1]))
                length = float(rng.choice([0, 0.02, 0.1, 0.3, 0.8, 2.5], p=[.1, .1, .3, .3, .1, .1]))
                words.append((str(rng.choice(pool)), [int(x) for x in rng.integers(0, 1000, rng.integers(1, 4))],
                              np.float64(round(t, 2)), np.float64(round(t + length, 2)), float(rng.random())))
                t += length
            total = sum(len(w[1]) for w in words)
            all_tokens = [tk for w in words for tk in w[1]]
            n_seg = int(rng.integers(1, 4))
            cuts = sorted(int(c) for c in rng.integers(0, total + 1, n_seg - 1)) if total else [0] * (n_seg - 1)
            bounds = [0, *cuts, total]
            seek = int(rng.integers(0, 5)) * 1000
            offset = seek / 100
            segs = []
            for k in range(n_seg):
                start = offset + float(rng.integers(0, 1500)) / 50
                end = start + float(rng.integers(0, 400)) / 50
                toks = [50365, *all_tokens[bounds[k]:bounds[k + 1]], 50400]
                segs.append(Segment(id=k, seek=seek, start=start, end=end, text="x", tokens=tuple(toks),
                                    temperature=0.0, avg_logprob=0.0, compression_ratio=1.0, no_speech_prob=0.0))
            last_speech = float(rng.choice([0.0, offset, offset + 5.0]))

            wt.find_alignment = lambda *a, **k: [wt.WordTiming(w, list(tk), s, e, p) for w, tk, s, e, p in words]
            timing.find_alignment = lambda *a, **k: [timing.WordTiming(w, tuple(tk), s, e, p)
                                                     for w, tk, s, e, p in words]
            ref = [dict(seek=s.seek, start=s.start, end=s.end, tokens=list(s.tokens)) for s in segs]
            wt.add_word_timestamps(segments=ref, model=None, tokenizer=tok, mel=None, num_frames=3000,
                                   last_speech_timestamp=last_speech)
            mine, _ = timing.add_word_timestamps(segs, None, tok, None, 3000, "\"'“¿([{-",
                                                 "\"'.。,，!！?？:：”)]}、", last_speech)
            a = [(r["start"], r["end"], [(w["word"], w["start"], w["end"], w["probability"]) for w in r["words"]])
                 for r in ref]
            b = [(m.start, m.end, [(w.word, w.start, w.end, w.probability) for w in m.words]) for m in mine]
            if a == b:
                equal += 1
            elif first_bad is None:
                first_bad = (trial, a, b)
    finally:
        wt.find_alignment, timing.find_alignment = saved
    return trials, equal, first_bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="base")
    ap.add_argument("--clip", action="append", default=[], help="audio file (repeatable)")
    ap.add_argument("--synth", action="store_true", help="add espeak-ng clips even when speech files exist")
    ap.add_argument("--tol", type=float, default=0.02, help="seconds (default 0.02)")
    ap.add_argument("--hallucination-silence-threshold", type=float, default=None)
    ap.add_argument("--rules", type=int, default=20000, help="random trials of the word rules (0: none)")
    args = ap.parse_args()

    if args.rules:
        trials, equal, bad = rules_fuzz(args.rules)
        print(f"add_word_timestamps rules on {trials} random alignments: {equal}/{trials} exactly equal")
        if bad is not None:
            print(f"    first mismatch, trial {bad[0]}:\n    openai: {bad[1]}\n    ours:   {bad[2]}")
    import whisper
    from whispermedia.models import load_model

    torch.manual_seed(0)
    ours = load_model(args.model)
    from whispermedia.models import REGISTRY, _read_registry_checkpoint

    ow = openai_model(_read_registry_checkpoint(REGISTRY[args.model]))  # our alignment heads as its mask

    clips = [Path(c) for c in args.clip]
    if not clips and SPEECH_DIR.is_dir():
        clips = sorted(p for p in SPEECH_DIR.iterdir() if p.suffix.lower() in AUDIO_EXT)
    tmp = tempfile.TemporaryDirectory()
    if not clips or args.synth:
        clips += synthesize(Path(tmp.name))

    extra = {}
    if args.hallucination_silence_threshold is not None:
        extra["hallucination_silence_threshold"] = args.hallucination_silence_threshold
    print(f"model {args.model}, alignment heads {list(ours.alignment_heads)}, tolerance {args.tol * 1000:.0f} ms")
    header = (f"{'clip':<28} {'dur':>6} {'text=':>5} {'words':>9} {'within':>7} {'exact':>7} "
              f"{'maxdiff':>8} {'seg=':>5} {'t_oai':>6} {'t_ours':>6}")
    print(header)
    totals = [0, 0, 0]
    rows_same = []
    for clip in clips:
        audio = whisper.load_audio(str(clip))
        t0 = time.perf_counter()
        ref = ow.transcribe(audio, temperature=0.0, word_timestamps=True, fp16=False, **extra)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        mine = ours_transcribe(ours, audio, temperature=0.0, word_timestamps=True, **extra)
        t_ours = time.perf_counter() - t0

        ref_words = [w for s in ref["segments"] for w in s["words"]]
        our_words = [w for s in mine.segments for w in (s.words or ())]
        n, within, exact, max_diff = compare_words(ref_words, our_words, args.tol)
        seg_equal = [(round(s["start"], 6), round(s["end"], 6)) for s in ref["segments"]] == \
                    [(round(s.start, 6), round(s.end, 6)) for s in mine.segments]
        totals[0] += n
        totals[1] += within
        totals[2] += exact
        words = f"{len(ref_words)}/{len(our_words)}"
        print(f"{clip.name:<28} {len(audio) / 16000:6.1f} {str(ref['text'] == mine.text):>5} {words:>9} "
              f"{within / max(n, 1):7.1%} {exact / max(n, 1):7.1%} {max_diff:8.3f} {str(seg_equal):>5} "
              f"{t_ref:6.2f} {t_ours:6.2f}")
        if ref["text"] != mine.text:
            print(f"    openai: {ref['text']!r}\n    ours:   {mine.text!r}")
        rows_same.append((clip.name, same_token_alignment(ow, ours, audio, ref, args.tol)))
    print(f"{'all':<28} {'':>6} {'':>5} {totals[0]:>9} {totals[1] / max(totals[0], 1):7.1%} "
          f"{totals[2] / max(totals[0], 1):7.1%}")

    print("\nfind_alignment on the same text tokens and window (openai's first window):")
    print(f"{'clip':<28} {'words':>9} {'exact':>7} {'within':>7} {'max |dp|':>9}")
    for name, r in rows_same:
        if r is None:
            print(f"{name:<28} (no text)")
            continue
        n_ref, n_mine, same, close, n, pmax = r
        print(f"{name:<28} {f'{n_ref}/{n_mine}':>9} {same / max(n, 1):7.1%} {close / max(n, 1):7.1%} {pmax:9.2e}")


if __name__ == "__main__":
    main()
