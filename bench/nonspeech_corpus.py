"""A generated corpus of audio where nobody speaks: what a transcriber must write no words on.

``python bench/nonspeech_corpus.py DIR`` writes the clips (16 kHz mono 16-bit WAV, about 60 MB
at the default size) and ``DIR/corpus.json`` (each clip's name, kind and seconds). Nothing is
committed: the clips are made from seeded random numbers, so every run writes the same files.

Kinds (``CLIPS``): digital silence; white, pink and brown noise at several levels; mains hum
with harmonics; steady and beeping tones; sweeps; chords, arpeggios and melodies on a
plucked/organ timbre, with and without a beat; clicks and impulses; room tone (low-passed pink
noise, a faint hum, the odd knock); and music under noise. Most clips are 5-10 s (the cost of
running several systems over them on a CPU), a few 30 and 60 s.
"""

from __future__ import annotations

import argparse
import json
import wave
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

SR = 16000
Gen = Callable[[np.random.Generator, int], np.ndarray]  # (rng, n_samples) -> float samples


def _db(level_dbfs: float) -> float:
    return 10.0 ** (level_dbfs / 20.0)


def _normalize(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``level_dbfs`` (full scale = 1.0)."""
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) or 1.0
    return x * (_db(level_dbfs) / rms)


def _colored(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), by shaping a spectrum."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1]
    spec *= f ** (-exponent / 2.0)
    return np.fft.irfft(spec, n)


def noise(exponent: float, level: float) -> Gen:
    return lambda rng, n: _normalize(_colored(rng, n, exponent), level)


def silence() -> Gen:
    return lambda rng, n: np.zeros(n)


def hum(freq: float, level: float, harmonics: int = 5) -> Gen:
    def make(rng, n):
        t = np.arange(n) / SR
        x = sum(np.sin(2 * np.pi * freq * k * t + rng.uniform(0, 6.28)) / k for k in range(1, harmonics + 1))
        return _normalize(x, level)
    return make


def tone(freq: float, level: float, beep: float = 0.0) -> Gen:
    """A sine; ``beep`` > 0: on for ``beep`` seconds, off for as long."""
    def make(rng, n):
        t = np.arange(n) / SR
        x = np.sin(2 * np.pi * freq * t)
        if beep:
            x *= (np.floor(t / beep) % 2 == 0)
        return x * _db(level) * np.sqrt(2)
    return make


def sweep(f0: float, f1: float, level: float) -> Gen:
    def make(rng, n):
        t = np.arange(n) / SR
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1]))
        return np.sin(phase) * _db(level) * np.sqrt(2)
    return make


def _note(freq: float, n: int, timbre: str) -> np.ndarray:
    t = np.arange(n) / SR
    if timbre == "pluck":  # decaying harmonics
        x = sum(np.sin(2 * np.pi * freq * k * t) * 0.6 ** k for k in range(1, 7)) * np.exp(-3.0 * t)
    else:  # organ: steady odd and even harmonics, soft attack and release
        x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3, 4, 6))
        ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
        x = x * ramp
    return x


_SCALE = [0, 2, 4, 5, 7, 9, 11, 12]


def music(kind: str, level: float, timbre: str = "pluck", tempo: float = 100.0, beat: bool = False,
          bed: float = None) -> Gen:
    """Chords (``chords``), broken chords (``arpeggio``) or a random melody (``melody``) in a
    major key; ``beat``: a kick/hat pattern under it; ``bed``: noise at this dBFS under it."""
    def make(rng, n):
        out = np.zeros(n)
        step = int(SR * 60.0 / tempo)
        root = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        for i, at in enumerate(range(0, n, step)):
            length = min(step * (4 if kind == "chords" else 1), n - at)
            if kind == "chords":
                if i % 4:
                    continue
                degree = [0, 5, 7, 3][(i // 4) % 4]
                freqs = [root * 2 ** ((_SCALE[(degree + k) % 7] + 12 * ((degree + k) // 7)) / 12) for k in (0, 2, 4)]
            elif kind == "arpeggio":
                freqs = [root * 2 ** (_SCALE[(i * 2) % 8] / 12)]
            else:
                freqs = [root * 2 ** (_SCALE[int(rng.integers(0, 8))] / 12) * (2 if rng.random() < 0.3 else 1)]
            for f in freqs:
                out[at:at + length] += _note(f, length, timbre)
            if beat:
                k = min(int(0.15 * SR), n - at)
                tt = np.arange(k) / SR
                if i % 2 == 0:  # kick: a falling sine
                    out[at:at + k] += 1.5 * np.sin(2 * np.pi * (60 + 80 * np.exp(-30 * tt)) * tt) * np.exp(-20 * tt)
                else:  # hat: a burst of noise
                    out[at:at + k] += 0.5 * rng.standard_normal(k) * np.exp(-60 * tt)
        out = _normalize(out, level)
        if bed is not None:
            out += _normalize(_colored(rng, n, 1.0), bed)
        return out
    return make


def clicks(rate: float, level: float, regular: bool) -> Gen:
    """Impulses ``rate`` a second (a clock tick when ``regular``, crackle when not)."""
    def make(rng, n):
        x = np.zeros(n)
        count = max(1, int(rate * n / SR))
        at = (np.arange(count) * (n // count)) if regular else rng.integers(0, n, count)
        for a in at:
            k = min(80, n - a)
            x[a:a + k] += rng.choice([-1, 1]) * np.exp(-np.arange(k) / 8.0)
        return x * _db(level) * 3
    return make


def room_tone(level: float) -> Gen:
    """Low-passed pink noise, a faint 50 Hz hum and the odd soft knock."""
    def make(rng, n):
        x = _colored(rng, n, 1.5)
        x = _normalize(x, level) + hum(50.0, level - 15, 3)(rng, n)
        for a in rng.integers(0, n, max(1, n // (SR * 4))):
            k = min(400, n - a)
            x[a:a + k] += _db(level + 6) * np.sin(2 * np.pi * 120 * np.arange(k) / SR) * np.exp(-np.arange(k) / 60)
        return x
    return make


def _durations(i: int) -> float:
    """Most clips short, every 10th 30 s, every 25th 60 s."""
    if i % 25 == 24:
        return 60.0
    if i % 10 == 9:
        return 30.0
    return 5.0 + (i % 3) * 2.5


def clips() -> List[Tuple[str, str, Gen]]:
    """(name, kind, generator) of every clip, in a fixed order."""
    out: List[Tuple[str, str, Gen]] = [("silence", "silence", silence()) for _ in range(4)]
    for exponent, name in ((0.0, "white"), (1.0, "pink"), (2.0, "brown")):
        for level in (-70, -55, -45, -35, -25, -18, -12):
            out.append((f"{name}{-level}", f"{name} noise", noise(exponent, level)))
    for freq in (50.0, 60.0):
        for level in (-50, -35, -20):
            out.append((f"hum{int(freq)}_{-level}", "hum", hum(freq, level)))
    for freq, level, beep in ((440, -20, 0), (1000, -30, 0), (100, -25, 0), (3000, -40, 0), (440, -20, 0.5),
                              (1000, -25, 0.2), (425, -20, 1.0), (2600, -35, 0.1), (697, -25, 0.15), (1400, -45, 0)):
        out.append((f"tone{freq}_{-level}_{beep}", "tone", tone(freq, level, beep)))
    for f0, f1, level in ((100, 4000, -25), (50, 8000, -30), (4000, 200, -20), (300, 600, -25)):
        out.append((f"sweep{f0}_{f1}", "sweep", sweep(f0, f1, level)))
    for kind in ("chords", "arpeggio", "melody"):
        for timbre in ("pluck", "organ"):
            for tempo, beat, level in ((80, False, -20), (120, True, -18), (150, False, -30), (100, True, -25)):
                out.append((f"{kind}_{timbre}_{tempo}_{int(beat)}", f"music: {kind}",
                            music(kind, level, timbre, tempo, beat)))
    for kind, bed in (("chords", -35), ("melody", -30), ("arpeggio", -40), ("melody", -45)):
        out.append((f"{kind}_bed{-bed}", "music under noise", music(kind, -22, "pluck", 110, True, bed)))
    for rate, level, regular in ((1, -20, True), (4, -30, True), (20, -40, False), (3, -25, False), (60, -45, False)):
        out.append((f"clicks{rate}_{int(regular)}", "clicks", clicks(rate, level, regular)))
    for level in (-65, -60, -55, -50, -48, -45, -42, -39, -36, -30):
        out.append((f"room{-level}", "room tone", room_tone(level)))
    for level in (-96, -90):  # dither: the quietest thing a 16-bit file holds
        out.append((f"dither{-level}", "silence", noise(0.0, level)))
    for freq, level in ((100.0, -30), (120.0, -40), (50.0, -60)):
        out.append((f"hum{int(freq)}_{-level}", "hum", hum(freq, level)))
    for kind, timbre, bed in (("chords", "organ", -30), ("melody", "organ", -40), ("arpeggio", "organ", -30),
                              ("chords", "pluck", -50), ("melody", "pluck", -25), ("arpeggio", "pluck", -35)):
        out.append((f"{kind}_{timbre}_bed{-bed}", "music under noise", music(kind, -24, timbre, 90, False, bed)))
    for level, rate in ((-35, 200), (-45, 500)):  # rain-like crackle
        out.append((f"crackle{rate}", "clicks", clicks(rate, level, False)))
    return out


def write_wav(path: Path, x: np.ndarray) -> None:
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def make(folder: Path) -> List[Dict]:
    """Write every clip into ``folder`` (skipping those already there) and the index; the index."""
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for i, (name, kind, gen) in enumerate(clips()):
        seconds = _durations(i)
        path = folder / f"{i:03d}_{name}.wav"
        if not path.exists():
            write_wav(path, gen(np.random.default_rng(1000 + i), int(seconds * SR)))
        index.append(dict(file=path.name, kind=kind, seconds=seconds))
    (folder / "corpus.json").write_text(json.dumps(index, indent=1))
    return index


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    index = make(ap.parse_args().folder)
    kinds: Dict[str, int] = {}
    for c in index:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    print(f"{len(index)} clips, {sum(c['seconds'] for c in index) / 60:.1f} min: "
          + ", ".join(f"{k} {v}" for k, v in kinds.items()))


if __name__ == "__main__":
    main()
