"""Harvest each model's typical non-speech outputs into whispermedia/nonspeech_phrases.py.

    python bench/harvest_nonspeech.py --models base tiny.en

Generates its own non-speech (the generators of bench/nonspeech_corpus.py with other seeds,
levels and pitches, so the corpus the defaults are scored on is not the one the list was learnt
from), decodes every clip greedily (the ``greedy`` preset: one pass at temperature 0; the fallback
ladder's samples at higher temperatures are too random to list) with voice activity detection
and the defence off (what the model says when it is made to listen to non-speech), and keeps
every segment text, normalised (``hallucination.normalize``), of at most 12 words. The list is
applied only to segments the VAD or the log-probability already doubt (whispermedia.hallucination).
"""

from __future__ import annotations

import argparse
import pprint
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import nonspeech_corpus as nc  # noqa: E402

MAX_WORDS = 12
OUT = ROOT / "whispermedia" / "nonspeech_phrases.py"


def harvest_clips():
    """(name, samples) of the harvest set: 10 s each, seeds 5000+."""
    gens = []
    for exponent in (0.0, 1.0, 2.0):
        for level in (-60, -40, -28, -15):
            gens.append((f"noise{exponent}_{level}", nc.noise(exponent, level)))
    for freq, level in ((50.0, -30), (60.0, -45), (180.0, -25)):
        gens.append((f"hum{freq}", nc.hum(freq, level)))
    for freq, level, beep in ((523, -22, 0), (880, -28, 0.3), (250, -20, 0), (1800, -35, 0.6)):
        gens.append((f"tone{freq}", nc.tone(freq, level, beep)))
    for kind in ("chords", "arpeggio", "melody"):
        for timbre, tempo, beat in (("pluck", 90, True), ("organ", 130, False), ("pluck", 70, False)):
            gens.append((f"{kind}_{timbre}_{tempo}", nc.music(kind, -21, timbre, tempo, beat)))
        gens.append((f"{kind}_bed", nc.music(kind, -26, "organ", 115, True, -38)))
    for rate, level, regular in ((2, -22, True), (40, -38, False)):
        gens.append((f"clicks{rate}", nc.clicks(rate, level, regular)))
    for level in (-58, -44, -33):
        gens.append((f"room{level}", nc.room_tone(level)))
    for i, (name, gen) in enumerate(gens):
        yield name, gen(np.random.default_rng(5000 + i), 10 * nc.SR).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["base", "tiny.en"])
    args = ap.parse_args()
    import torch

    import whispermedia as wm
    from whispermedia.hallucination import normalize
    from whispermedia.nonspeech_phrases import PHRASES

    torch.set_num_threads(1)
    clips = list(harvest_clips())
    phrases = {k: list(v) for k, v in PHRASES.items()}
    for name in args.models:
        model = wm.load_model(name)
        seen: Counter = Counter()
        for clip, audio in clips:
            try:
                t = wm.transcribe(audio, model=model, preset="greedy", vad="off", suppress_hallucinations=False,
                                  language=None if model.is_multilingual else "en")
            except wm.MediaError as e:  # too quiet to detect a language from: nothing decoded
                print(f"{name} {clip}: {e}")
                continue
            for s in t.segments:
                text = normalize(s.text)
                if text and len(text.split()) <= MAX_WORDS:
                    seen[text] += 1
            print(f"{name} {clip}: {t.text.strip()[:60]!r}", flush=True)
        phrases[name] = sorted(seen)
        print(f"{name}: {len(seen)} phrases from {len(clips)} clips: {seen.most_common(10)}")
    text = OUT.read_text()
    head = text[:text.index("PHRASES = ")]
    tail = text[text.index("\n\ndef phrases_for"):]
    OUT.write_text(head + "PHRASES = " + pprint.pformat(phrases, width=100, compact=True) + "\n" + tail)


if __name__ == "__main__":
    main()
