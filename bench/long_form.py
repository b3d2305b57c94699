"""Long-form check: ``wm run --plugin srt`` on a recording against openai-whisper, same weights.

Runs our CLI exactly as a user would (a subprocess writing an SRT), reads the SRT back, runs
openai-whisper's own ``transcribe()`` on the same weights and the same options, and prints each
side's word error rate against a reference transcript, both texts normalised with openai-whisper's
English normaliser.

    python bench/long_form.py talk.mp4 reference.txt [--model base] [--greedy]

reference.txt: the spoken text; lines starting with '#' are skipped, and a line with tab-separated
columns contributes its last column (the layout of tests/data/make_fixtures.sh's long file).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fidelity import openai_model


def reference_text(path: Path) -> str:
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            words.append(line.split("\t")[-1])
    return " ".join(words)


def srt_text(path: Path) -> str:
    """The cue texts of an SRT, in order (numbers and timing lines dropped)."""
    cues = re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip())
    return " ".join(" ".join(cue.splitlines()[2:]) for cue in cues)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("media", type=Path)
    ap.add_argument("reference", type=Path)
    ap.add_argument("--model", default="base")
    ap.add_argument("--greedy", action="store_true",
                    help="temperature 0 without fallback and without conditioning on previous text")
    args = ap.parse_args(argv)

    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    import whispermedia as wm
    from whispermedia.models import REGISTRY, _read_registry_checkpoint

    normalise = EnglishTextNormalizer()
    reference = normalise(reference_text(args.reference))
    options = dict(temperature=0.0, condition_on_previous_text=False) if args.greedy else {}

    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "whispermedia", "run", "--plugin", "srt", "--model", args.model,
               "--language", "en", "--output-dir", out, "--progress", "none",
               "--vad", "off", "--no-suppress-hallucinations"]  # openai-whisper decodes everything too
        if args.greedy:
            cmd += ["--preset", "greedy"]
        t0 = time.perf_counter()
        subprocess.run(cmd + [str(args.media)], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        t_ours = time.perf_counter() - t0
        ours = srt_text(Path(out) / (args.media.stem + ".srt"))

    ref_model = openai_model(_read_registry_checkpoint(REGISTRY[args.model]))
    audio = wm.load_audio(args.media)
    t0 = time.perf_counter()
    theirs = ref_model.transcribe(audio, language="en", fp16=False, verbose=None, **options)["text"]
    t_theirs = time.perf_counter() - t0

    wer_ours = jiwer.wer(reference, normalise(ours))
    wer_theirs = jiwer.wer(reference, normalise(theirs))
    duration = len(audio) / 16000
    print(f"{args.media.name}: {duration:.0f} s, model {args.model}, "
          f"{'greedy, no fallback, no conditioning' if args.greedy else 'default options of each'}")
    print(f"  wm run --plugin srt : WER {100 * wer_ours:5.2f}%   {t_ours:6.1f} s (process, model load included)")
    print(f"  openai-whisper      : WER {100 * wer_theirs:5.2f}%   {t_theirs:6.1f} s (transcribe() alone)")
    print(f"  difference          : {100 * (wer_ours - wer_theirs):+5.2f} points; "
          f"texts {'identical' if normalise(ours) == normalise(theirs) else 'differ'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
