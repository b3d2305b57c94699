"""Fidelity: our tokens against openai-whisper's, same weights, same options, clip by clip.

The weights are read once by our CTranslate2 reader and handed to both: our modules, and
openai-whisper's own ``Whisper`` class (float32), so any difference comes from the code paths,
not from the weights. Greedy decoding by default; the openai side runs its own ``transcribe()``.

    python bench/fidelity.py --model base CLIP_OR_FOLDER...
    python bench/fidelity.py --model base tests/data/speech --write-golden tests/golden/tokens_base.json

Needs openai-whisper beside our package (``pip install --no-deps openai-whisper`` and then
``numba tiktoken tqdm more-itertools``). Exit status 1 when any clip's tokens differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mp4", ".mkv", ".webm"}


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="+", help="audio/video files or folders of them")
    ap.add_argument("--model", default="base", help="registry name or CTranslate2 folder")
    ap.add_argument("--language", default=None, help="fixed language (default: detected by each side)")
    ap.add_argument("--no-condition-on-previous-text", dest="condition", action="store_false",
                    help="do not condition each window on the previous text (openai's default is to)")
    ap.add_argument("--write-golden", type=Path, help="write openai's tokens as a golden file for the tests")
    args = ap.parse_args(argv)


    import whispermedia as wm
    from whispermedia.models import REGISTRY, _read_registry_checkpoint, build_model
    from whispermedia.weights import read_checkpoint

    checkpoint = (_read_registry_checkpoint(REGISTRY[args.model]) if args.model in REGISTRY
                  else read_checkpoint(Path(args.model)))
    ours = build_model(checkpoint, name=args.model)
    ref = openai_model(checkpoint)
    options = dict(temperature=0.0, condition_on_previous_text=args.condition)

    golden = {"model": args.model, "options": options, "clips": {}}
    same = 0
    rows = []
    for clip in clips_from(args.clips):
        audio = wm.load_audio(clip)  # one decode for both, so the input is identical
        t0 = time.perf_counter()
        expected = ref.transcribe(audio, language=args.language, fp16=False, verbose=None, **options)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = wm.transcribe(audio, model=ours, language=args.language, **options)
        t_ours = time.perf_counter() - t0
        ref_tokens = [t for s in expected["segments"] for t in s["tokens"]]
        our_tokens = [t for s in got.segments for t in s.tokens]
        equal = ref_tokens == our_tokens and expected["text"] == got.text
        same += equal
        rows.append((clip.name, equal, expected["language"], got.language, len(ref_tokens), t_ref, t_ours))
        if not equal:
            print(f"DIFF {clip.name}\n  openai: {expected['text']!r}\n  ours:   {got.text!r}", file=sys.stderr)
        golden["clips"][clip.name] = {
            "language": expected["language"],
            "text": expected["text"],
            "tokens": ref_tokens,
            "segments": [[s["start"], s["end"]] for s in expected["segments"]],
        }

    print(f"{'clip':32} {'same':5} {'lang ref/ours':14} {'tokens':>6} {'openai s':>9} {'ours s':>7} {'ratio':>6}")
    for name, equal, lr, lo, n, tr, to in rows:
        print(f"{name[:32]:32} {'yes' if equal else 'NO':5} {lr + '/' + lo:14} {n:6d} {tr:9.2f} {to:7.2f} {tr / to:6.2f}")
    print(f"identical tokens and text: {same} of {len(rows)} clips")
    if args.write_golden:
        args.write_golden.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"golden tokens written to {args.write_golden}")
    return 0 if same == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
