"""Fidelity: our tokens against openai-whisper's, same weights, same options, clip by clip.

The weights are read once by our CTranslate2 reader and handed to both: our modules, and
openai-whisper's own ``Whisper`` class (float32), so any difference comes from the code paths,
not from the weights. Each side runs its own ``transcribe()`` with the same options: greedy
(``temperature=0``) by default, or any of openai's decoding options:

    python bench/fidelity.py --model base CLIP_OR_FOLDER...
    python bench/fidelity.py --model base --beam-size 5 tests/data/speech
    python bench/fidelity.py --model base --fallback tests/data/speech       # openai's temperatures
    python bench/fidelity.py --model base --word-timestamps tests/data/speech
    python bench/fidelity.py --model base --task translate tests/data/speech_multilingual
    python bench/fidelity.py --model tiny.en --initial-prompt "Kennedy." --carry-initial-prompt \\
        --clip-timestamps 0,4,4,11 tests/data/speech/jfk.flac

What is compared on every clip:

- the detected language (when ``--language`` is not given), and its probability from the first
  window (both sides' ``detect_language`` on the same mel);
- the tokens and the text (the whole transcript's, and the segment bounds);
- with ``--word-timestamps``: every word's start and end (``--tol``, 20 ms by default); the words
  of clips whose texts differ are not compared, and are counted apart.

Temperature fallback (``--fallback``, or ``--temperature`` with several values) samples at
temperatures above 0, and each side draws its own random numbers: a clip where either side fell
back is reported apart and not counted as a difference. With ``--seed N`` both sides start from
``torch.manual_seed(N)``; the samples are then often equal too, and the script says how many were.

``--write-golden FILE --case NAME`` stores openai's results as one case of a golden file (cases of
other names in the file are kept) for tests/test_fidelity.py, which checks them without the peer.

Needs openai-whisper beside our package (``pip install --no-deps openai-whisper`` and then
``numba tiktoken tqdm more-itertools``). Exit status 1 when a compared clip differs, or when
fewer than 95% of the words are within the tolerance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mp4", ".mkv", ".webm"}
# openai-whisper's default temperature schedule (its transcribe() and, with an increment of 0.2, its CLI)
OPENAI_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def clips_from(paths):
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
        else:
            yield p


def openai_model(checkpoint):
    from whisper.model import ModelDimensions, Whisper

    ref = Whisper(ModelDimensions(**dataclasses.asdict(checkpoint.dims)))
    ref.load_state_dict({k: v.float() for k, v in checkpoint.state_dict.items()})
    heads = torch.zeros(checkpoint.dims.n_text_layer, checkpoint.dims.n_text_head, dtype=torch.bool)
    for layer, head in checkpoint.alignment_heads or ():
        heads[layer, head] = True
    ref.register_buffer("alignment_heads", heads.to_sparse(), persistent=False)
    return ref.eval()


def load_both(model_name):
    """(our model, openai's model) on the same weights, read once."""
    from whispermedia.models import REGISTRY, _read_registry_checkpoint, build_model
    from whispermedia.weights import read_checkpoint

    checkpoint = (_read_registry_checkpoint(REGISTRY[model_name]) if model_name in REGISTRY
                  else read_checkpoint(Path(model_name)))
    return build_model(checkpoint, name=model_name), openai_model(checkpoint)


def options_from(args) -> dict:
    """The transcribe() keywords both sides get (openai's names), from the command line."""
    if args.fallback:
        temperature = OPENAI_TEMPERATURES
    elif args.temperature is not None:
        temps = tuple(float(t) for t in args.temperature.split(","))
        temperature = temps[0] if len(temps) == 1 else temps
    else:
        temperature = 0.0
    options = dict(temperature=temperature, condition_on_previous_text=args.condition)
    optional = dict(
        beam_size=args.beam_size, best_of=args.best_of, patience=args.patience, length_penalty=args.length_penalty,
        initial_prompt=args.initial_prompt, prefix=args.prefix, suppress_tokens=args.suppress_tokens,
        clip_timestamps=args.clip_timestamps, max_initial_timestamp=args.max_initial_timestamp,
        hallucination_silence_threshold=args.hallucination_silence_threshold,
        compression_ratio_threshold=args.compression_ratio_threshold, logprob_threshold=args.logprob_threshold,
        no_speech_threshold=args.no_speech_threshold,
    )
    options.update({k: v for k, v in optional.items() if v is not None})
    for flag in ("carry_initial_prompt", "without_timestamps", "word_timestamps"):
        if getattr(args, flag):
            options[flag] = True
    if not args.suppress_blank:
        options["suppress_blank"] = False
    if args.fallback and args.best_of is None:
        options["best_of"] = 5
    return options


def first_window_languages(ours, ref, audio):
    """(our guess, openai's (code, probability)) from the first window's mel, each side's own code."""
    import whisper

    from whispermedia import decoding, features

    if not ours.is_multilingual:
        return None, None
    mel = features.log_mel_spectrogram(torch.from_numpy(audio), ours.dims.n_mels, padding=features.N_SAMPLES)
    guess = decoding.detect_language(ours, features.pad_or_trim(mel, features.N_FRAMES))[0]
    ref_mel = whisper.log_mel_spectrogram(torch.from_numpy(audio), ref.dims.n_mels, padding=whisper.audio.N_SAMPLES)
    _, probs = ref.detect_language(whisper.pad_or_trim(ref_mel, 3000))
    code = max(probs, key=probs.get)
    return guess, (code, float(probs[code]))


def word_rows(segments_words):
    return [w for words in segments_words for w in words]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="+", help="audio/video files or folders of them")
    ap.add_argument("--model", default="base", help="registry name or CTranslate2 folder")
    ap.add_argument("--language", default=None, help="fixed language (default: detected by each side)")
    ap.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    ap.add_argument("--no-condition-on-previous-text", dest="condition", action="store_false",
                    help="do not condition each window on the previous text (openai's default is to)")
    ap.add_argument("--temperature", default=None, metavar="T[,T...]", help="one temperature or a schedule")
    ap.add_argument("--fallback", action="store_true",
                    help="openai's temperature fallback (0, 0.2, ... 1.0) with best_of 5 and its thresholds")
    ap.add_argument("--seed", type=int, default=None, help="torch.manual_seed before each side's transcribe")
    ap.add_argument("--beam-size", type=int)
    ap.add_argument("--best-of", type=int)
    ap.add_argument("--patience", type=float)
    ap.add_argument("--length-penalty", type=float)
    ap.add_argument("--initial-prompt")
    ap.add_argument("--carry-initial-prompt", action="store_true")
    ap.add_argument("--prefix")
    ap.add_argument("--suppress-tokens")
    ap.add_argument("--no-suppress-blank", dest="suppress_blank", action="store_false")
    ap.add_argument("--without-timestamps", action="store_true")
    ap.add_argument("--max-initial-timestamp", type=float)
    ap.add_argument("--clip-timestamps")
    ap.add_argument("--compression-ratio-threshold", type=float)
    ap.add_argument("--logprob-threshold", type=float)
    ap.add_argument("--no-speech-threshold", type=float)
    ap.add_argument("--word-timestamps", action="store_true")
    ap.add_argument("--hallucination-silence-threshold", type=float)
    ap.add_argument("--tol", type=float, default=0.02, help="word time tolerance, seconds (default 0.02)")
    ap.add_argument("--write-golden", type=Path, help="store openai's results in this golden file")
    ap.add_argument("--case", default=None, help="the case name in the golden file (default: derived)")
    args = ap.parse_args(argv)

    import whispermedia as wm

    ours, ref = load_both(args.model)
    options = options_from(args)
    common = dict(language=args.language, task=args.task, **options)

    golden_case = {"model": args.model, "options": {k: v for k, v in common.items() if v is not None}, "clips": {}}
    if args.seed is not None:
        golden_case["seed"] = args.seed
    rows = []
    totals = dict(same=0, fell_back=0, fell_back_same=0, lang_same=0, lang_checked=0,
                  words=0, words_close=0, words_exact=0, words_skipped=0)
    worst_word = 0.0
    for clip in clips_from(args.clips):
        audio = wm.load_audio(clip)  # one decode for both, so the input is identical
        if args.seed is not None:
            torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        expected = ref.transcribe(audio, fp16=False, verbose=None, **common)
        t_ref = time.perf_counter() - t0
        if args.seed is not None:
            torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        got = wm.transcribe(audio, model=ours, preset="openai-transcribe", **common)  # openai's transcribe() defaults
        t_ours = time.perf_counter() - t0

        ref_tokens = [t for s in expected["segments"] for t in s["tokens"]]
        our_tokens = [t for s in got.segments for t in s.tokens]
        equal = (ref_tokens == our_tokens and expected["text"] == got.text
                 and [[s["start"], s["end"]] for s in expected["segments"]] == [[s.start, s.end] for s in got.segments])
        fell_back = (any(s["temperature"] > 0 for s in expected["segments"])
                     or any(s.temperature > 0 for s in got.segments))
        if fell_back:
            totals["fell_back"] += 1
            totals["fell_back_same"] += equal
        else:
            totals["same"] += equal

        lang_note = ""
        if args.language is None:
            totals["lang_checked"] += 1
            guess, ref_guess = first_window_languages(ours, ref, audio)
            same_lang = expected["language"] == got.language
            if guess is not None:
                same_lang = same_lang and guess.language == ref_guess[0]
                lang_note = f" p {ref_guess[1]:.3f}/{guess.probability:.3f}"
            totals["lang_same"] += same_lang

        word_note = ""
        if args.word_timestamps:
            ref_words = word_rows(s.get("words", []) for s in expected["segments"])
            our_words = word_rows(s.words or () for s in got.segments)
            if equal and len(ref_words) == len(our_words):
                diffs = [max(abs(r["start"] - o.start), abs(r["end"] - o.end)) for r, o in zip(ref_words, our_words)]
                totals["words"] += len(diffs)
                totals["words_close"] += sum(d <= args.tol + 1e-9 for d in diffs)
                totals["words_exact"] += sum(d == 0 for d in diffs)
                worst_word = max([worst_word] + diffs)
                word_note = f" words {sum(d <= args.tol + 1e-9 for d in diffs)}/{len(diffs)}"
            else:
                totals["words_skipped"] += len(ref_words)
                word_note = " words not compared"

        rows.append((clip.name, equal, fell_back, expected["language"], got.language, len(ref_tokens),
                     t_ref, t_ours, lang_note + word_note))
        if not equal:
            print(f"DIFF {clip.name}{' (fell back: sampled)' if fell_back else ''}\n"
                  f"  openai: {expected['text']!r}\n  ours:   {got.text!r}", file=sys.stderr)
        entry = {
            "language": expected["language"],
            "text": expected["text"],
            "tokens": ref_tokens,
            "segments": [[s["start"], s["end"]] for s in expected["segments"]],
            "temperatures": [s["temperature"] for s in expected["segments"]],
        }
        if args.word_timestamps:
            entry["words"] = [[w["word"], w["start"], w["end"]] for w in ref_words]
        golden_case["clips"][clip_key(clip)] = entry

    print(f"model {args.model}, options {json.dumps(golden_case['options'], ensure_ascii=False)}")
    print(f"{'clip':28} {'same':5} {'lang ref/ours':14} {'tokens':>6} {'openai s':>9} {'ours s':>7} {'ratio':>6}")
    for name, equal, fb, lr, lo, n, tr, to, note in rows:
        same = ("yes" if equal else "NO") + ("*" if fb else "")
        print(f"{name[:28]:28} {same:5} {lr + '/' + lo:14} {n:6d} {tr:9.2f} {to:7.2f} {tr / to:6.2f}{note}")
    compared = len(rows) - totals["fell_back"]
    print(f"identical tokens and text: {totals['same']} of {compared} clips")
    ok = totals["same"] == compared
    if totals["fell_back"]:
        print(f"fell back to sampling (T > 0, marked *): {totals['fell_back']} of {len(rows)} clips, "
              f"not compared; of these, identical anyway: {totals['fell_back_same']}"
              + ("" if args.seed is not None else " (no --seed: each side's own random numbers)"))
    if totals["lang_checked"]:
        print(f"detected language equal: {totals['lang_same']} of {totals['lang_checked']} clips")
        ok = ok and totals["lang_same"] == totals["lang_checked"]
    if args.word_timestamps:
        n = totals["words"]
        share = totals["words_close"] / n if n else 1.0
        print(f"word times within {1000 * args.tol:.0f} ms: {totals['words_close']} of {n} words ({100 * share:.1f}%), "
              f"exactly equal: {totals['words_exact']}, largest difference {1000 * worst_word:.0f} ms"
              + (f"; {totals['words_skipped']} words of differing clips not compared" if totals["words_skipped"] else ""))
        ok = ok and share >= 0.95
    if args.write_golden:
        write_golden(args.write_golden, args.case or case_name(golden_case["options"]), golden_case)
    return 0 if ok else 1


def clip_key(clip: Path) -> str:
    """The clip's path relative to the repository (as the golden tests find it), else its name."""
    try:
        return clip.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return clip.name


def case_name(options: dict) -> str:
    parts = [f"{k}={v}" for k, v in sorted(options.items()) if k not in ("language", "task") or v]
    return ",".join(parts)


def write_golden(path: Path, case: str, data: dict) -> None:
    """Add (or replace) one case in a golden file: {"cases": {name: {model, options, clips}}}."""
    golden = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    golden.setdefault("made_by", "bench/fidelity.py --write-golden: openai-whisper's results, same weights")
    golden.setdefault("cases", {})[case] = data
    path.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"golden case {case!r} written to {path}")


if __name__ == "__main__":
    sys.exit(main())
