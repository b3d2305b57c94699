"""whispermedia.features: constants, the Slaney filter bank, pad_or_trim, log_mel_spectrogram."""

from __future__ import annotations

import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from whispermedia.features import (
    CHUNK_LENGTH,
    FRAMES_PER_SECOND,
    HOP_LENGTH,
    N_FFT,
    N_FRAMES,
    N_SAMPLES,
    N_SAMPLES_PER_TOKEN,
    SAMPLE_RATE,
    TOKENS_PER_SECOND,
    exact_div,
    log_mel_spectrogram,
    mel_filters,
    pad_or_trim,
)
from whispermedia.ops import reference

# Row sums of openai-whisper's mel_filters.npz['mel_80'] (float64 sum of the float32 entries).
GOLDEN_ROW_SUMS_80 = (
    2.48625949e-02, 2.48625937e-02, 2.48625944e-02, 2.48625949e-02, 2.48625940e-02, 2.48625930e-02,
    2.48625930e-02, 2.48625930e-02, 2.48625940e-02, 2.48625935e-02, 2.48625926e-02, 2.48625940e-02,
    2.48625933e-02, 2.58806832e-02, 2.58353241e-02, 2.48625935e-02, 2.48625940e-02, 2.48625930e-02,
    2.48625930e-02, 2.48625940e-02, 2.48625940e-02, 2.48625930e-02, 2.48625930e-02, 2.48625930e-02,
    2.48625949e-02, 2.49144360e-02, 2.54328232e-02, 2.53476920e-02, 2.52598957e-02, 2.50792783e-02,
    2.48188078e-02, 2.44900985e-02, 2.41035149e-02, 2.64838610e-02, 2.52960747e-02, 2.31999150e-02,
    2.69875065e-02, 2.35075240e-02, 2.62319222e-02, 2.33949377e-02, 2.66648610e-02, 2.45237877e-02,
    2.46406489e-02, 2.49503200e-02, 2.51163325e-02, 2.51568449e-02, 2.50881744e-02, 2.49249605e-02,
    2.46803185e-02, 2.52352293e-02, 2.51294301e-02, 2.47899924e-02, 2.48970522e-02, 2.53917300e-02,
    2.48330847e-02, 2.49568081e-02, 2.49613312e-02, 2.48622905e-02, 2.53157286e-02, 2.48237663e-02,
    2.51015415e-02, 2.48533912e-02, 2.50322905e-02, 2.50843815e-02, 2.50261012e-02, 2.48721977e-02,
    2.51194651e-02, 2.48817868e-02, 2.50364893e-02, 2.50675500e-02, 2.49910786e-02, 2.49012299e-02,
    2.50782180e-02, 2.49901301e-02, 2.49699269e-02, 2.50848138e-02, 2.49231467e-02, 2.50157516e-02,
    2.50226220e-02, 2.49253398e-02,
)
# (row, bin) -> value of a few entries of mel_80; [first, last + 1) non-zero bins of the
# first and the last filter.
GOLDEN_VALUES_80 = {
    (0, 1): 0.02486259490251541, (40, 43): 0.014735566452145576, (79, 192): 0.0031647118739783764, (26, 0): 0.0,
}
GOLDEN_SPANS_80_FIRST_LAST = ((1, 2), (186, 200))
# Row sums of openai-whisper's mel_filters.npz['mel_128'] (float64 sum of the float32 entries).
GOLDEN_ROW_SUMS_128 = (
    1.23739867e-02, 3.03925648e-02, 2.47479733e-02, 1.80185791e-02, 3.71219590e-02, 1.23739862e-02,
    3.60371582e-02, 1.91033799e-02, 2.36631688e-02, 3.14773656e-02, 1.23739860e-02, 4.16817516e-02,
    1.34587884e-02, 2.93077622e-02, 2.58327741e-02, 1.69337764e-02, 3.82067598e-02, 1.23739862e-02,
    3.49523574e-02, 2.01881826e-02, 2.25783680e-02, 3.25621702e-02, 1.23739871e-02, 4.05969471e-02,
    1.45435892e-02, 2.82229595e-02, 2.69175768e-02, 1.58489756e-02, 3.92915606e-02, 1.23739869e-02,
    3.38675529e-02, 2.12729853e-02, 2.14935672e-02, 3.36469710e-02, 1.23739862e-02, 3.95121463e-02,
    1.56283919e-02, 2.71381587e-02, 2.80023776e-02, 1.47641730e-02, 4.03763652e-02, 1.25833249e-02,
    3.16114612e-02, 2.45470013e-02, 1.69950308e-02, 3.67290527e-02, 2.00970992e-02, 1.98336807e-02,
    3.28449905e-02, 2.35200487e-02, 2.17647739e-02, 2.27182917e-02, 3.22787277e-02, 2.29697508e-02,
    2.35432284e-02, 2.40288898e-02, 2.44333241e-02, 2.54706480e-02, 2.73590796e-02, 2.44966613e-02,
    2.46681452e-02, 2.47839796e-02, 2.48486688e-02, 2.48664278e-02, 2.48412010e-02, 2.47766641e-02,
    2.46762568e-02, 2.57963617e-02, 2.60078300e-02, 2.46368316e-02, 2.44019367e-02, 2.41461778e-02,
    2.53398011e-02, 2.66053081e-02, 2.36254549e-02, 2.43307105e-02, 2.70537334e-02, 2.28932276e-02,
    2.67558130e-02, 2.36095992e-02, 2.62001478e-02, 2.33720667e-02, 2.70175803e-02, 2.36703937e-02,
    2.49328103e-02, 2.60155844e-02, 2.44382872e-02, 2.47002903e-02, 2.48988814e-02, 2.50640824e-02,
    2.54165381e-02, 2.48541015e-02, 2.48606742e-02, 2.53821118e-02, 2.50296830e-02, 2.48969907e-02,
    2.47442108e-02, 2.46473679e-02, 2.59341683e-02, 2.43361648e-02, 2.52900178e-02, 2.47415057e-02,
    2.53567330e-02, 2.45421272e-02, 2.52706790e-02, 2.51382387e-02, 2.48778534e-02, 2.49634320e-02,
    2.50000989e-02, 2.49919286e-02, 2.49427296e-02, 2.48560595e-02, 2.54167002e-02, 2.47933560e-02,
    2.49301112e-02, 2.51068650e-02, 2.50082653e-02, 2.48480740e-02, 2.50099817e-02, 2.51415098e-02,
    2.49328595e-02, 2.50127653e-02, 2.51077583e-02, 2.49217037e-02, 2.48498893e-02, 2.52481441e-02,
    2.48417377e-02, 2.49360440e-02,
)
# Likewise for mel_128.
GOLDEN_VALUES_128 = {
    (0, 1): 0.012373986653983593, (64, 43): 0.018091518431901932, (127, 195): 0.005041601601988077, (42, 0): 0.0,
}
GOLDEN_SPANS_128_FIRST_LAST = ((1, 2), (191, 200))


def test_constants():
    assert (SAMPLE_RATE, N_FFT, HOP_LENGTH, CHUNK_LENGTH) == (16000, 400, 160, 30)
    assert (N_SAMPLES, N_FRAMES, FRAMES_PER_SECOND) == (480_000, 3000, 100)
    assert (N_SAMPLES_PER_TOKEN, TOKENS_PER_SECOND) == (320, 50)
    assert exact_div(480_000, 160) == 3000
    with pytest.raises(ValueError, match="not divisible"):
        exact_div(10, 3)


def test_constants_live_in_one_leaf_module():
    """features, media and timing use the numbers of whispermedia.constants, which imports
    neither torch nor numpy (so word timing and the options need no mel op to know them)."""
    from whispermedia import constants, features, media, timing

    for name in ("SAMPLE_RATE", "N_FFT", "HOP_LENGTH", "CHUNK_LENGTH", "N_SAMPLES", "N_FRAMES",
                 "N_SAMPLES_PER_TOKEN", "FRAMES_PER_SECOND", "TOKENS_PER_SECOND", "exact_div"):
        assert getattr(features, name) is getattr(constants, name), name
    assert media.SAMPLE_RATE == timing.SAMPLE_RATE == constants.SAMPLE_RATE
    assert (timing.HOP_LENGTH, timing.N_FRAMES, timing.TOKENS_PER_SECOND) == (HOP_LENGTH, N_FRAMES, TOKENS_PER_SECOND)
    # a timestamp step is one of the encoder's 1500 positions per window: 2 mel frames, 20 ms
    assert (constants.N_AUDIO_POSITIONS, constants.FRAMES_PER_POSITION) == (1500, 2)
    assert constants.FRAMES_PER_POSITION * HOP_LENGTH == N_SAMPLES_PER_TOKEN
    assert timing.PUNCTUATION == constants.PREPEND_PUNCTUATIONS + constants.APPEND_PUNCTUATIONS
    assert constants.PREPEND_PUNCTUATIONS == "\"'“¿([{-"
    assert constants.APPEND_PUNCTUATIONS == "\"'.。,，!！?？:：”)]}、"
    probe = ("import sys, whispermedia.constants; "
             "print(sorted(m for m in ('torch', 'numpy', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_match_committed_golden(n_mels):
    bank = mel_filters(n_mels)
    assert bank.shape == (n_mels, N_FFT // 2 + 1) and bank.dtype == torch.float32
    sums = globals()[f"GOLDEN_ROW_SUMS_{n_mels}"]
    np.testing.assert_allclose(bank.double().sum(dim=1).numpy(), sums, rtol=1e-6, atol=0)
    for (row, col), value in globals()[f"GOLDEN_VALUES_{n_mels}"].items():
        assert bank[row, col].item() == pytest.approx(value, rel=1e-6, abs=1e-9)
    nonzero = [torch.nonzero(r).flatten() for r in bank]
    spans = tuple((n[0].item(), n[-1].item() + 1) for n in (nonzero[0], nonzero[-1]))
    assert spans == globals()[f"GOLDEN_SPANS_{n_mels}_FIRST_LAST"]


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_match_openai_whisper_asset(n_mels):
    whisper = pytest.importorskip("whisper", reason="openai-whisper is not installed")
    import os

    path = os.path.join(os.path.dirname(whisper.__file__), "assets", "mel_filters.npz")
    with np.load(path, allow_pickle=False) as f:
        shipped = f[f"mel_{n_mels}"]
    np.testing.assert_allclose(mel_filters(n_mels).numpy(), shipped, rtol=0, atol=1e-7)


def test_mel_filters_cached_per_size_and_device():
    assert mel_filters(80) is mel_filters(80, "cpu") is mel_filters(80, torch.device("cpu"))
    assert mel_filters(80) is not mel_filters(128)
    assert mel_filters(40).shape == (40, 201)  # any size, not just the two Whisper ships
    with pytest.raises(ValueError):
        mel_filters(0)


def test_pad_or_trim_numpy_and_torch():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert pad_or_trim(a, 6).shape == (3, 6) and (pad_or_trim(a, 6)[:, 4:] == 0).all()
    assert np.array_equal(pad_or_trim(a, 2), a[:, :2])
    assert np.array_equal(pad_or_trim(a, 1, axis=0), a[:1])
    assert pad_or_trim(a, 5, axis=0).shape == (5, 4)
    assert pad_or_trim(a, 4) is a
    t = torch.from_numpy(a)
    assert torch.equal(pad_or_trim(t, 6), torch.from_numpy(pad_or_trim(a, 6)))
    assert torch.equal(pad_or_trim(t, 2), t[:, :2])
    assert torch.equal(pad_or_trim(t, 5, axis=0), torch.from_numpy(pad_or_trim(a, 5, axis=0)))
    assert torch.equal(pad_or_trim(t, 5, axis=-2), torch.from_numpy(pad_or_trim(a, 5, axis=0)))
    assert pad_or_trim(np.zeros(10)).shape == (N_SAMPLES,)


def chirp(n_samples: int, seed: int = 0) -> np.ndarray:
    """A 100 Hz to 6 kHz sweep with a little noise, float32 in [-0.5, 0.5]."""
    t = np.arange(n_samples) / SAMPLE_RATE
    duration = n_samples / SAMPLE_RATE
    phase = 2 * math.pi * (100 * t + (6000 - 100) * t**2 / (2 * duration))
    noise = np.random.default_rng(seed).standard_normal(n_samples)
    return (0.4 * np.sin(phase) * (0.5 + 0.5 * np.cos(2 * math.pi * 0.5 * t)) + 0.01 * noise).astype(np.float32)


def test_log_mel_spectrogram_inputs_and_padding():
    audio = chirp(SAMPLE_RATE * 2 + 77)
    from_numpy = log_mel_spectrogram(audio)
    assert from_numpy.shape == (80, audio.shape[0] // HOP_LENGTH) and from_numpy.dtype == torch.float32
    torch.testing.assert_close(log_mel_spectrogram(torch.from_numpy(audio)), from_numpy, rtol=0, atol=0)
    as_float64 = log_mel_spectrogram(audio.astype(np.float64))
    torch.testing.assert_close(as_float64, from_numpy, rtol=0, atol=0)
    want = reference.log_mel_spectrogram(torch.from_numpy(audio), mel_filters(80), HOP_LENGTH)
    torch.testing.assert_close(from_numpy, want, rtol=0, atol=1e-4)

    padded = log_mel_spectrogram(audio, n_mels=128, padding=N_SAMPLES)
    assert padded.shape == (128, (audio.shape[0] + N_SAMPLES) // HOP_LENGTH)
    assert padded[:, -100:].max() <= padded.max() - 2 + 1e-6  # the zero tail sits at the clamp floor

    batch = log_mel_spectrogram(np.stack([audio, audio * 0.01]))
    assert batch.shape == (2, 80, audio.shape[0] // HOP_LENGTH)
    torch.testing.assert_close(batch[0], from_numpy, rtol=0, atol=0)


def test_log_mel_spectrogram_of_a_path_uses_the_media_layer(monkeypatch, tmp_path):
    audio = chirp(SAMPLE_RATE)
    calls = []

    def load_audio(path, *args, **kwargs):
        calls.append(path)
        return audio

    fake = types.ModuleType("whispermedia.media")
    fake.load_audio = load_audio
    monkeypatch.setitem(sys.modules, "whispermedia.media", fake)
    path = tmp_path / "clip.wav"
    out = log_mel_spectrogram(path)
    assert calls == [path]
    torch.testing.assert_close(out, log_mel_spectrogram(audio), rtol=0, atol=0)
    log_mel_spectrogram(str(path))
    assert calls[-1] == str(path)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_matches_openai_whisper(n_mels):
    whisper_audio = pytest.importorskip("whisper.audio", reason="openai-whisper is not installed")
    audio = chirp(SAMPLE_RATE * 7 + 123, seed=n_mels)
    want = whisper_audio.log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)
    got = log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)
    err = (got - want).abs()
    assert err.max().item() <= 5e-4 and err.mean().item() <= 1e-5


# ------------------------------------------------------------------------------------------
# agreement with openai-whisper on real speech (tests/data/speech; provenance in tests/data/README.md)

SPEECH = Path(__file__).parent / "data" / "speech"
GOLDEN_MEL = Path(__file__).parent / "golden" / "mel_openai_jfk.npz"
# Measured (80 / 128 mels, padded as transcribe pads): max abs diff 1.2e-5 to 3.3e-5, mean 1.5e-8
# to 1.1e-7 on the three clips and on 3 minutes of them concatenated.
MAX_DIFF, MEAN_DIFF = 5e-4, 1e-5


def speech(name: str) -> np.ndarray:
    from whispermedia.media import load_audio

    return load_audio(SPEECH / name)


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("clip", ["jfk.flac", "arctic_a0007.flac", "arctic_a0009.flac", "all three x 4"])
def test_matches_openai_whisper_on_real_speech(n_mels, clip):
    whisper_audio = pytest.importorskip("whisper.audio", reason="openai-whisper is not installed")
    if clip == "all three x 4":
        audio = np.concatenate([speech(n) for n in ("jfk.flac", "arctic_a0007.flac", "arctic_a0009.flac")] * 4)
    else:
        audio = speech(clip)
    want = whisper_audio.log_mel_spectrogram(torch.from_numpy(audio), n_mels, padding=N_SAMPLES)
    got = log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)
    assert got.shape == want.shape
    err = (got - want).abs()
    assert err.max().item() <= MAX_DIFF and err.mean().item() <= MEAN_DIFF, (err.max().item(), err.mean().item())


@pytest.mark.parametrize("n_mels", [80, 128])
def test_matches_committed_openai_golden_on_real_speech(n_mels):
    """openai-whisper's mel of jfk.flac, committed (bench/mel.py --write-golden): every 10th
    frame, the mean of each mel and of each frame over the 1100 frames of speech, and the max
    and min of the padded mel. Runs without openai-whisper installed."""
    with np.load(GOLDEN_MEL) as g:
        golden = {k: g[k] for k in g.files}
    audio = speech("jfk.flac")
    mel = log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)
    content = mel[:, : audio.shape[0] // HOP_LENGTH].double().numpy()
    sampled = content[:, ::10]
    assert sampled.shape == golden[f"mel{n_mels}_every10"].shape
    err = np.abs(sampled - golden[f"mel{n_mels}_every10"])
    assert err.max() <= MAX_DIFF and err.mean() <= MEAN_DIFF, (err.max(), err.mean())
    np.testing.assert_allclose(content.mean(axis=1), golden[f"mel{n_mels}_mel_mean"], rtol=0, atol=MEAN_DIFF)
    np.testing.assert_allclose(content.mean(axis=0), golden[f"mel{n_mels}_frame_mean"], rtol=0, atol=MEAN_DIFF)
    np.testing.assert_allclose([mel.max().item(), mel.min().item()], golden[f"mel{n_mels}_max_min"],
                               rtol=0, atol=MAX_DIFF)
