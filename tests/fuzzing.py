"""A bounded fuzzer for the media layer and the model readers (tests/test_fuzz.py, bench/fuzz.py).

Seeds: small media files written with PyAV from a tone made here (WAV, MP4, M4A, Ogg/Opus,
FLAC, MP3), and the tiny made-up model of ``checkpoint_writers`` (``model.bin`` and
``config.json``) with a copy of a real ``tokenizer.json`` beside it. Each case applies 1 to 4
byte-level mutations (flips, boundary values in 1/2/4-byte fields, truncation, runs of 0x00
or 0xFF, insertions, duplicated slices; half of them aimed at the first 512 bytes, where the
headers are) or, for JSON, a structural one (a value of another type, nesting 100,000 deep,
numbers past any range), chosen by ``random.Random(f"{seed}:{kind}:{index}")``, so a case is
reproduced from its seed, kind and index alone.

Each case runs in one worker process (so a crash is seen as such, not as a failed test
process) that reports one JSON line per case: the outcome (``ok`` or the exception's type
and message) and the worker's resident memory. The parent enforces a per-case time bound and
a memory ceiling (it kills a worker that exceeds either and reports the case), and checks
that only the documented errors come out: ``MediaError`` for media, ``ModelError`` for models.

    python tests/fuzzing.py --worker KIND SEED START COUNT WORKDIR   (what the parent runs)
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
KINDS = ("media", "model", "tokenizer")
MEDIA_SEEDS = ("wav", "mp4", "m4a", "ogg", "flac", "mp3")
MODEL_FILES = ("model.bin", "config.json")
ALLOWED = {"media": ("MediaError",), "model": ("ModelError",), "tokenizer": ("ModelError",)}

_BOUNDARY = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


# --- seeds -----------------------------------------------------------------------------------

def write_media_seeds(folder: Path, seconds: float = 0.6) -> Dict[str, Path]:
    """One small file per container/codec, from a 440 Hz + 1.1 kHz tone (made here)."""
    import av
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    plan = {"wav": ("wav", "pcm_s16le", 16000), "mp4": ("mp4", "aac", 44100), "m4a": ("ipod", "aac", 22050),
            "ogg": ("ogg", "libopus", 48000), "flac": ("flac", "flac", 16000), "mp3": ("mp3", "libmp3lame", 22050)}
    paths = {}
    for name, (fmt, codec, rate) in plan.items():
        path = folder / f"seed.{name}"
        t = np.arange(int(rate * seconds)) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1100 * t)).astype(np.float32)
        with av.open(str(path), "w", format=fmt) as out:
            stream = out.add_stream(codec, rate=rate, layout="mono")
            # PyAV's encoder converts the format and re-frames the samples to the codec's own
            for first in range(0, len(samples), 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, first:first + 1024], format="flt", layout="mono")
                frame.sample_rate = rate
                frame.pts = first
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        paths[name] = path
    return paths


def write_model_seed(folder: Path) -> Path:
    """The tiny made-up CTranslate2 model (narrow layers: about 1 MB) with a copy of the base
    model's real ``tokenizer.json``, or tiny.en's, beside it when one is installed."""
    sys.path.insert(0, str(HERE))
    from checkpoint_writers import random_state_dict, write_ct2

    from whispermedia.models import _fallback_tokenizer
    from whispermedia.weights import ModelDimensions

    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=8, n_audio_head=2, n_audio_layer=2,
                           n_vocab=51865, n_text_ctx=448, n_text_state=8, n_text_head=2, n_text_layer=2)
    model = write_ct2(folder, dims, random_state_dict(dims))
    tokenizer = _fallback_tokenizer(dims.n_vocab)
    if tokenizer is not None:
        shutil.copyfile(tokenizer, model / "tokenizer.json")
    return model


# --- mutations -------------------------------------------------------------------------------

def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """1 to 4 byte-level mutations; half aimed at the first 512 bytes (the headers)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf = bytearray(rng.randbytes(rng.randint(1, 64)))
            continue
        span = len(buf) if rng.random() < 0.5 else min(len(buf), 512)
        at = rng.randrange(span)
        op = rng.randrange(7)
        if op == 0:  # flip a few bytes
            for _ in range(rng.randint(1, 16)):
                i = rng.randrange(span)
                buf[i] ^= rng.randint(1, 255)
        elif op == 1:  # a boundary value in a 1/2/4-byte field, either endianness
            width = rng.choice((1, 2, 4))
            value = rng.choice(_BOUNDARY) & ((1 << (8 * width)) - 1)
            buf[at:at + width] = value.to_bytes(width, rng.choice(("little", "big")))
        elif op == 2:  # cut short
            del buf[at:]
        elif op == 3:  # a run of 0x00 or 0xFF
            n = rng.randint(1, 256)
            buf[at:at + n] = bytes([rng.choice((0, 0xFF))]) * min(n, len(buf) - at)
        elif op == 4:  # random bytes inserted
            buf[at:at] = rng.randbytes(rng.randint(1, 64))
        elif op == 5:  # a slice repeated
            n = rng.randint(1, 512)
            buf[at:at] = buf[at:at + n]
        else:  # two slices swapped
            b = rng.randrange(len(buf))
            n = rng.randint(1, 64)
            buf[at:at + n], buf[b:b + n] = buf[b:b + n], buf[at:at + n]
    return bytes(buf)


def _odd_value(rng: random.Random):
    return rng.choice([None, -1, 0, 2 ** 64, 1e308, "x", "", [], {}, [[9, 9]], [[-1, 0]], [["a", 1]], [0.5],
                       [True, False], float("nan"), float("inf"), {"model": None},
                       "[" * 100_000 + "]" * 100_000])


def mutate_json(data: bytes, rng: random.Random) -> bytes:
    """A structural mutation of a JSON object (a value of another type, deep nesting, a key
    removed), falling back to byte mutations for text that does not parse (already mutated)."""
    try:
        obj = json.loads(data)
    except ValueError:
        return mutate_bytes(data, rng)
    if not isinstance(obj, dict) or rng.random() < 0.3:
        return mutate_bytes(data, rng)
    target = obj
    if isinstance(obj.get("model"), dict) and rng.random() < 0.5:
        target = obj["model"]
    keys = list(target) or ["alignment_heads"]
    key = rng.choice(keys + ["alignment_heads", "suppress_ids"])
    choice = rng.randrange(3)
    if choice == 0 and key in target:
        del target[key]
    else:
        value = _odd_value(rng)
        if isinstance(value, str) and value.startswith("[" * 10):
            text = json.dumps(obj)
            return text.replace("{", "{" + json.dumps(key) + ": " + value + ", ", 1).encode()
        target[key] = value
    return json.dumps(obj).encode()


# --- running cases ---------------------------------------------------------------------------

def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def _case_rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{index}")


def _run_media(seeds: Dict[str, Path], seed: int, index: int, scratch: Path) -> None:
    from whispermedia import media
    from whispermedia.features import MelWindows
    from whispermedia.usable_audio import check_usable

    rng = _case_rng(seed, "media", index)
    name = MEDIA_SEEDS[index % len(MEDIA_SEEDS)]
    path = scratch / f"case{index}.{name}"
    path.write_bytes(mutate_bytes(seeds[name].read_bytes(), rng))
    try:
        media.probe(path)
        mel = MelWindows(path)  # both passes of the decoder the pipeline uses
        try:
            check_usable(mel)
            mel[:, 0:3000]
        finally:
            mel.close()
    finally:
        path.unlink()


def _run_model(model: Path, seed: int, index: int, scratch: Path, kind: str) -> None:
    from whispermedia.models import load_model

    rng = _case_rng(seed, kind, index)
    folder = scratch / f"model{index}"
    shutil.copytree(model, folder)
    try:
        if kind == "tokenizer":
            target = folder / "tokenizer.json"
            if rng.random() < 0.5:
                target.write_bytes(mutate_json(target.read_bytes(), rng))
            else:  # the header region of the real file (its first 4 KB: version, added tokens)
                data = target.read_bytes()
                target.write_bytes(mutate_bytes(data[:4096], rng) + data[4096:])
        else:
            target = folder / MODEL_FILES[index % len(MODEL_FILES)]
            data = target.read_bytes()
            target.write_bytes(mutate_json(data, rng) if target.suffix == ".json" else mutate_bytes(data, rng))
        load_model(str(folder))
    finally:
        shutil.rmtree(folder)


def worker(kind: str, seed: int, start: int, count: int, workdir: Path) -> None:
    """Run cases [start, start + count) of ``kind``, one JSON line each on stdout."""
    scratch = workdir / f"scratch-{os.getpid()}"
    scratch.mkdir()
    if kind == "media":
        seeds = {name: workdir / f"seed.{name}" for name in MEDIA_SEEDS}
        run = lambda i: _run_media(seeds, seed, i, scratch)  # noqa: E731
    else:
        model = workdir / ("model" if kind == "tokenizer" else "model-bare")
        if kind == "model":
            import functools

            import whispermedia.models as models

            # without a tokenizer.json of its own the model borrows the installed one, parsed
            # once here (the tokenizer's own cases are kind "tokenizer")
            models.load_tokenizer = functools.lru_cache(maxsize=2)(models.load_tokenizer)
        run = lambda i: _run_model(model, seed, i, scratch, kind)  # noqa: E731
    for index in range(start, start + count):
        t0 = time.perf_counter()
        try:
            run(index)
            outcome, message = "ok", ""
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # reported, judged by the parent
            outcome, message = type(exc).__name__, str(exc)[:300]
        print(json.dumps({"index": index, "outcome": outcome, "message": message,
                          "seconds": time.perf_counter() - t0, "rss": _rss()}), flush=True)
    shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class FuzzReport:
    """What a run saw: the outcome counts, and the cases that broke a rule."""

    kind: str
    cases: int = 0
    outcomes: Dict[str, int] = field(default_factory=dict)
    bad: List[str] = field(default_factory=list)  # "index: why"
    peak_rss: int = 0  # the worker's largest resident size, bytes
    slowest: float = 0.0  # seconds


def run_cases(kind: str, seed: int, count: int, workdir: Path, *, case_seconds: float = 20.0,
              max_rss: int = 1536 << 20, start: int = 0) -> FuzzReport:
    """Run ``count`` cases of ``kind`` in worker processes; a worker that hangs past
    ``case_seconds`` on a case, grows past ``max_rss`` or dies is killed or replaced, the case
    recorded as bad, and the rest go on in a fresh worker."""
    report = FuzzReport(kind)
    index, end = start, start + count
    while index < end:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(seed),
                                 str(index), str(end - index), str(workdir)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "WM_LOAD_PLUGINS": ""})
        deadline = time.monotonic() + case_seconds + 30.0  # the first case pays for the imports
        failed: Optional[str] = None
        while index < end:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                line = proc.stdout.readline()
                if not line:
                    failed = f"worker died (exit {proc.wait()}): {proc.stderr.read()[-500:]}"
                    break
                case = json.loads(line)
                index = case["index"] + 1
                report.cases += 1
                report.outcomes[case["outcome"]] = report.outcomes.get(case["outcome"], 0) + 1
                report.peak_rss = max(report.peak_rss, case["rss"])
                report.slowest = max(report.slowest, case["seconds"])
                if case["outcome"] != "ok" and case["outcome"] not in ALLOWED[kind]:
                    report.bad.append(f"{case['index']}: {case['outcome']}: {case['message']}")
                deadline = time.monotonic() + case_seconds
                continue
            rss = _proc_rss(proc.pid)
            if rss > max_rss:
                failed = f"resident memory {rss >> 20} MB past the {max_rss >> 20} MB ceiling"
            elif time.monotonic() > deadline:
                failed = f"no answer within {case_seconds:.0f} s (a hang?)"
            elif proc.poll() is not None and not select.select([proc.stdout], [], [], 0)[0]:
                failed = f"worker died (exit {proc.returncode}): {proc.stderr.read()[-500:]}"
            if failed:
                break
        if failed is None:
            proc.wait()
            break
        proc.kill()
        proc.wait()
        report.cases += 1
        report.bad.append(f"{index}: {failed}")
        index += 1  # the culprit is recorded; a fresh worker carries on after it
    return report


def _proc_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def prepare(workdir: Path) -> None:
    """The seeds every worker reads, written once into ``workdir``."""
    write_media_seeds(workdir)
    model = write_model_seed(workdir / "model")
    shutil.copytree(model, workdir / "model-bare", ignore=shutil.ignore_patterns("tokenizer.json"))


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "--worker":
    sys.path.insert(0, str(HERE))
    worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), Path(sys.argv[6]))
