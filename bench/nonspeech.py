"""Words written where nobody speaks: each system's defaults over the generated non-speech corpus.

    python bench/nonspeech.py /tmp/wm-nonspeech --systems ours --model base
    python bench/nonspeech.py /tmp/wm-nonspeech --systems openai fw fw-vad --model base

The corpus is ``bench/nonspeech_corpus.py``'s (made in the folder when it is missing). Systems,
each with its own defaults and the same weights (our reader's checkpoint handed to openai-whisper's
modules; faster-whisper reads the CTranslate2 folder, assembled as bench/decode.py does):

- ``ours``: ``wm.transcribe(clip, model=...)``, nothing else given (VAD and the defence on); a clip
  refused as holding no usable audio (digital silence) writes nothing, as ``wm run`` writes nothing;
- ``ours-novad``: the same with ``vad="off"`` and ``suppress_hallucinations=False`` (the engine
  before issue 10);
- ``openai``: openai-whisper's ``transcribe(clip)`` (its defaults: greedy, fallback, conditioning);
- ``fw``: faster-whisper's ``WhisperModel.transcribe(clip)`` (beam 5, no VAD);
- ``fw-vad``: the same with ``vad_filter=True`` (its Silero VAD, its defaults).

A clip "has words" when the text holds a letter or a digit. Prints the count per system and per
kind, and writes every clip's text to ``--out`` (JSON) so a count can be checked by eye.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

_WORDY = re.compile(r"\w", re.UNICODE)


def has_words(text: str) -> bool:
    return bool(_WORDY.search(text or ""))


def load_clip(path: Path) -> np.ndarray:
    from whispermedia.media import load_audio

    return load_audio(str(path))


def runner(system: str, model: str):
    """clip path -> (text, suppressed count) for one system."""
    if system in ("ours", "ours-novad"):
        import whispermedia as wm
        from whispermedia.errors import MediaError

        loaded = wm.load_model(model)
        extra = dict(vad="off", suppress_hallucinations=False) if system == "ours-novad" else {}

        def run(path):
            try:
                t = wm.transcribe(str(path), model=loaded, **extra)
            except MediaError:  # refused as holding no usable audio: nothing is written
                return "", 0
            return t.text, len(t.info.suppressed or ())
        return run
    if system == "openai":
        from fidelity import load_both

        _, ref = load_both(model)

        def run(path):
            return ref.transcribe(load_clip(path), fp16=False, verbose=None)["text"], 0
        return run
    if system in ("fw", "fw-vad"):
        from decode import ct2_folder
        from faster_whisper import WhisperModel

        folder = ct2_folder(model, Path(f"/tmp/wm-ct2-{model}"))
        fw = WhisperModel(str(folder), device="cpu", compute_type="float32", cpu_threads=1)

        def run(path):
            segments, _ = fw.transcribe(load_clip(path), vad_filter=(system == "fw-vad"))
            return "".join(s.text for s in segments), 0
        return run
    raise SystemExit(f"unknown system {system!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--systems", nargs="+", default=["ours"])
    ap.add_argument("--model", default="base")
    ap.add_argument("--out", type=Path, default=None, help="JSON of every clip's text (default: beside the corpus)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # the systems compared on one thread each
    if not (args.folder / "corpus.json").is_file():
        from nonspeech_corpus import make

        make(args.folder)
    index = json.loads((args.folder / "corpus.json").read_text())
    results = {}
    for system in args.systems:
        run = runner(system, args.model)
        rows, t0 = [], time.perf_counter()
        for clip in index:
            text, suppressed = run(args.folder / clip["file"])
            rows.append(dict(clip, text=text, words=has_words(text), suppressed=suppressed))
        seconds = time.perf_counter() - t0
        results[system] = rows
        worded = [r for r in rows if r["words"]]
        print(f"{system:11s} {args.model:8s} clips with words: {len(worded):3d} / {len(rows)} "
              f"({100 * (1 - len(worded) / len(rows)):.1f}% clean)  {seconds:6.0f} s"
              + (f"  suppressions recorded: {sum(r['suppressed'] for r in rows)}" if system == "ours" else ""),
              flush=True)
        kinds = {}
        for r in worded:
            kinds.setdefault(r["kind"], []).append(r["text"].strip()[:40])
        for kind, texts in kinds.items():
            print(f"    {kind}: {len(texts)}  e.g. {texts[0]!r}")
    out = args.out or args.folder / f"results_{args.model}_{'_'.join(args.systems)}.json"
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
