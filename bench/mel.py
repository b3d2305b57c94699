"""Log-mel front end, side by side: our fused op vs our reference vs openai-whisper vs faster-whisper.

    python bench/mel.py                       # 30 s, 10 min and 1 h; the table in docs/benchmarks.md
    python bench/mel.py --durations 30 600    # seconds
    python bench/mel.py --write-golden tests/golden/mel_openai_jfk.npz
    python bench/mel.py --memory 3            # peak memory: whole-file mel vs MelWindows, 3 h of media

One process, one run. The audio is REAL speech: the three clips in tests/data/speech (JFK's
inaugural excerpt and two CMU ARCTIC prompts, 18.1 s together), decoded once with
whispermedia.media.load_audio, concatenated and repeated to each length. Every system gets the
same float32 samples already in memory (decoding is not timed) and computes the log-mel of the
whole input in one call (no padding, so every system returns the same N // 160 frames):

- ours:       whispermedia.features.log_mel_spectrogram (the compiled whispermedia._C op)
- reference:  whispermedia.ops.reference.log_mel_spectrogram (torch.stft, the executable spec)
- openai:     whisper.audio.log_mel_spectrogram (torch.stft, float32)
- faster-whisper: faster_whisper.feature_extractor.FeatureExtractor (its own numpy STFT), padding=0

Systems alternate within each repetition (the order rotates from one repetition to the next)
and the table gives the median of the repetitions, the ratio of each median to ours, and the
largest difference from openai-whisper's numbers. torch runs with torch.get_num_threads()
threads (printed). Then the floor: the arithmetic the op must do for 1 h of audio (our FFT's
butterflies counted from its plan, and the textbook 2.5 N log2 N of a real FFT for comparison,
plus windowing, |X|^2, the sparse mel product, log10 and the clamp), divided by this machine's
fp32 rate measured here with a torch GEMM; and the memory floor (audio read once, frames
written and then read and written again by the clamp pass) at this machine's copy bandwidth.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from whispermedia import features, ops  # noqa: E402
from whispermedia.features import HOP_LENGTH, N_FFT, SAMPLE_RATE, mel_filters  # noqa: E402
from whispermedia.media import load_audio  # noqa: E402
from whispermedia.ops import reference  # noqa: E402

SPEECH = os.path.join(ROOT, "tests", "data", "speech")


def speech_audio(seconds: float) -> np.ndarray:
    clips = [load_audio(p) for p in sorted(glob.glob(os.path.join(SPEECH, "*.flac")))]
    base = np.concatenate(clips)
    return np.resize(base, int(seconds * SAMPLE_RATE)).astype(np.float32)


def systems(n_mels: int):
    filters = mel_filters(n_mels)
    out = {
        "ours": lambda a, t: features.log_mel_spectrogram(t, n_mels),
        "reference": lambda a, t: reference.log_mel_spectrogram(t, filters, HOP_LENGTH),
    }
    try:
        import whisper.audio as whisper_audio

        out["openai"] = lambda a, t: whisper_audio.log_mel_spectrogram(t, n_mels)
    except ImportError:
        print("openai-whisper not installed: left out")
    try:
        from faster_whisper.feature_extractor import FeatureExtractor

        fe = FeatureExtractor(feature_size=n_mels)
        out["faster-whisper"] = lambda a, t: torch.from_numpy(np.asarray(fe(a, padding=0), dtype=np.float32))
    except ImportError:
        print("faster-whisper not installed: left out")
    return out


def fmt_time(s: float) -> str:
    return f"{s * 1e3:8.1f} ms" if s < 1 else f"{s:8.2f} s "


def label(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def bench_duration(seconds: float, repeats: int, fns) -> dict:
    audio = speech_audio(seconds)
    tensor = torch.from_numpy(audio)
    names = list(fns)
    times = {n: [] for n in names}
    results = {}
    for rep in range(repeats):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            t0 = time.perf_counter()
            y = fns[name](audio, tensor)
            times[name].append(time.perf_counter() - t0)
            if rep == 0:
                results[name] = y
            del y
    ours = statistics.median(times["ours"])
    want = results.get("openai")
    print(f"\n{label(seconds)} of speech ({audio.shape[0]} samples, {audio.shape[0] // HOP_LENGTH} frames), "
          f"median of {repeats}")
    print(f"  {'system':<16}{'median':>11}  {'min':>11}  {'x ours':>7}  {'max|d| vs openai':>17}")
    for name in names:
        med = statistics.median(times[name])
        diff = "" if want is None else f"{(results[name] - want).abs().max().item():17.2e}"
        print(f"  {name:<16}{fmt_time(med)}  {fmt_time(min(times[name]))}  {med / ours:7.2f}  {diff}")
    return {n: statistics.median(t) for n, t in times.items()}


# ---------------------------------------------------------------------------------------------
# the floor


def fft_flops_counted(m: int) -> int:
    """Real-arithmetic operations of our packed real FFT of n_fft = 2 m points, counted from the
    butterflies in csrc/common/fft_butterfly.h for the plan csrc/common/fft_plan.h makes
    (one FMA = 2), including the real-spectrum unpack and |X|^2."""
    core = {2: 4, 3: 16, 4: 16, 5: 48, 8: 58}  # twiddle-free p-point DFT, real ops
    plan, rest = [], m
    for p in (8, 4, 2, 3, 5):
        while rest % p == 0:
            plan.append(p)
            rest //= p
    if rest != 1:
        raise ValueError(f"m = {m} needs a generic radix")
    total, l = 0, 1
    for p in plan:
        s = m // (l * p)
        butterflies = s * l
        twiddled = (s - 1) * l  # t1 = 0 has no twiddles
        total += butterflies * core[p] + twiddled * (p - 1) * 6
        l *= p
    total += (m // 2) * 24 + 4  # unpack: one pair of bins per 24 ops, DC and Nyquist
    return total


def flops_per_frame(n_mels: int) -> dict:
    filters = mel_filters(n_mels)
    nnz = int((filters != 0).sum())
    m = N_FFT // 2
    return {
        "window": N_FFT,
        "fft + |X|^2 (counted)": fft_flops_counted(m),
        "fft (2.5 N log2 N)": int(2.5 * N_FFT * math.log2(N_FFT)) + 3 * (m + 1),
        "mel (2 per non-zero)": 2 * nnz,
        "log10 (~20 per value)": 20 * n_mels,
        "clamp + scale": 3 * n_mels,
    }


def measure_peak_flops(threads: int) -> float:
    n = 1536
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = math.inf
    for _ in range(15):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def measure_bandwidth() -> float:
    x = torch.empty(64 << 20)  # 256 MB
    x.fill_(1.0)
    y = torch.empty_like(x)
    best = math.inf
    for _ in range(7):
        t0 = time.perf_counter()
        y.copy_(x)
        best = min(best, time.perf_counter() - t0)
    return 2 * x.numel() * 4 / best  # read + write


def floor_report(n_mels: int, ours_1h: float | None) -> None:
    threads = torch.get_num_threads()
    frames = 3600 * SAMPLE_RATE // HOP_LENGTH
    per = flops_per_frame(n_mels)
    counted = sum(v for k, v in per.items() if k != "fft (2.5 N log2 N)")
    textbook = sum(v for k, v in per.items() if k != "fft + |X|^2 (counted)")
    peak = measure_peak_flops(threads)
    bw = measure_bandwidth()
    bytes_1h = 4 * 3600 * SAMPLE_RATE + 3 * 4 * n_mels * frames  # audio in; frames out, clamp read + write
    print(f"\nfloor for 1 h ({frames} frames, {n_mels} mels), {threads} torch threads")
    for k, v in per.items():
        print(f"  {k:<24}{v:8d} flop/frame")
    print(f"  total (counted FFT)     {counted:8d} flop/frame = {counted * frames / 1e9:.2f} GFLOP per hour")
    print(f"  total (textbook FFT)    {textbook:8d} flop/frame = {textbook * frames / 1e9:.2f} GFLOP per hour")
    t_flop = counted * frames / peak
    t_mem = bytes_1h / bw
    print(f"  fp32 rate measured (torch GEMM 1536^3): {peak / 1e9:.1f} GFLOP/s -> arithmetic floor {fmt_time(t_flop)}")
    print(f"  copy bandwidth measured (256 MB):       {bw / 1e9:.1f} GB/s     -> memory floor     {fmt_time(t_mem)}"
          f" ({bytes_1h / 1e6:.0f} MB moved)")
    if ours_1h is not None:
        floor = max(t_flop, t_mem)
        print(f"  ours: {fmt_time(ours_1h)} = {ours_1h / floor:.1f} x the larger floor, "
              f"{ours_1h / t_flop:.1f} x the arithmetic floor")


# ---------------------------------------------------------------------------------------------


def write_golden(path: str) -> None:
    """openai-whisper's mel of jfk.flac (decoded with our media layer, padded as transcribe pads)
    for tests/test_features.py: every 10th content frame, and per-mel / per-frame means of all
    content frames, for 80 and 128 mels."""
    import whisper.audio as whisper_audio

    audio = torch.from_numpy(load_audio(os.path.join(SPEECH, "jfk.flac")))
    arrays = {}
    for n_mels in (80, 128):
        mel = whisper_audio.log_mel_spectrogram(audio, n_mels, padding=whisper_audio.N_SAMPLES)
        content = mel[:, : audio.shape[0] // HOP_LENGTH]
        arrays[f"mel{n_mels}_every10"] = content[:, ::10].numpy()
        arrays[f"mel{n_mels}_mel_mean"] = content.double().mean(dim=1).numpy()
        arrays[f"mel{n_mels}_frame_mean"] = content.double().mean(dim=0).numpy()
        arrays[f"mel{n_mels}_max_min"] = np.array([mel.max().item(), mel.min().item()])
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


MEMORY_WARM_UP = """
from whispermedia.features import N_FRAMES, N_SAMPLES, MelWindows, log_mel_spectrogram
from whispermedia.media import load_audio
MelWindows(args[2]).window(0)  # PyAV, the op, the filter bank
"""

MEMORY_MEASURED = """
if args[1] == "whole":
    frames = log_mel_spectrogram(load_audio(args[0]), 80, padding=N_SAMPLES).shape[1]
else:
    mel = MelWindows(args[0])
    seek = frames = 0
    while seek < mel.content_frames:
        frames += mel.window(seek, N_FRAMES).shape[1]
        seek += N_FRAMES
result = {"frames": frames}
"""


def memory_report(hours: float) -> None:
    """Peak memory growth of the feature path on `hours` of media: the whole-file mel (what
    the pipeline computed before MelWindows) vs MelWindows reading every window, each in a
    fresh process with its peak-RSS counter reset after warm-up."""
    import tempfile

    import av

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from peak_rss import measure_peak_rss  # the same probe as the 3-hour test

    clips = np.concatenate([load_audio(p) for p in sorted(glob.glob(os.path.join(SPEECH, "*.flac")))])
    with tempfile.TemporaryDirectory(prefix="wm-mel-bench-") as tmp:
        path = os.path.join(tmp, "long.mka")
        n = int(hours * 3600 * SAMPLE_RATE)
        with av.open(path, "w") as out:  # 8-bit PCM, 16 kHz mono, 10 s packets: 58 MB per hour
            stream = out.add_stream("pcm_u8", rate=SAMPLE_RATE, layout="mono")
            for i in range(0, n, 160_000):
                x = clips[np.arange(i, min(n, i + 160_000)) % clips.shape[0]]
                frame = av.AudioFrame.from_ndarray((np.clip(x, -1, 1) * 127 + 128).astype(np.uint8)[None],
                                                   format="u8", layout="mono")
                frame.sample_rate, frame.pts = SAMPLE_RATE, i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        print(f"\nfeature-path memory, {hours:g} h of real speech as 8-bit PCM in Matroska "
              f"({os.path.getsize(path) / 1e6:.0f} MB), peak RSS growth after warm-up")
        for mode in ("whole", "windows"):
            r = measure_peak_rss(MEMORY_WARM_UP, MEMORY_MEASURED, path, mode, os.path.join(SPEECH, "jfk.flac"))
            what = ("log_mel_spectrogram(load_audio(path), padding=N_SAMPLES)" if mode == "whole"
                    else "MelWindows(path), every 30 s window")
            print(f"  {what:<58} {r['peak_growth'] / 1e6:7.1f} MB  {r['seconds']:6.1f} s  ({r['frames']} frames)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--durations", type=float, nargs="+", default=[30, 600, 3600], help="seconds")
    ap.add_argument("--repeats", type=int, nargs="+", default=[15, 7, 5],
                    help="repetitions per duration (last value repeats)")
    ap.add_argument("--n-mels", type=int, default=80)
    ap.add_argument("--write-golden", metavar="PATH")
    ap.add_argument("--memory", type=float, metavar="HOURS",
                    help="instead: peak memory of the whole-file mel vs MelWindows on HOURS of media")
    args = ap.parse_args()
    if args.write_golden:
        write_golden(args.write_golden)
        return
    if args.memory:
        memory_report(args.memory)
        return

    info = ops.backend_info()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"log_mel_spectrogram on cpu: {info['ops']['log_mel_spectrogram']['cpu']}")
    print(f"audio: real speech, {', '.join(sorted(os.path.basename(p) for p in glob.glob(SPEECH + '/*.flac')))} "
          "concatenated and repeated to each length")
    fns = systems(args.n_mels)
    for f in fns.values():  # warm-up (filter banks, caches, thread pools)
        a = speech_audio(1)
        f(a, torch.from_numpy(a))
    medians = {}
    for i, seconds in enumerate(args.durations):
        reps = args.repeats[min(i, len(args.repeats) - 1)]
        medians[seconds] = bench_duration(seconds, reps, fns)
    floor_report(args.n_mels, medians.get(3600, {}).get("ours"))


if __name__ == "__main__":
    main()
