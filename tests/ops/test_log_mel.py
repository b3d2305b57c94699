"""whispermedia::log_mel_spectrogram and ::log_mel_frames: compiled kernels vs the reference vs
openai-whisper."""

from __future__ import annotations

import warnings

import pytest
import torch

from whispermedia import ops
from whispermedia.features import HOP_LENGTH, N_SAMPLES, mel_filters
from whispermedia.ops import reference

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
]

# Kernel vs torch.stft-based reference, both fp32: measured up to ~2e-5 max, ~6e-8 mean.
MAX_TOL, MEAN_TOL = 1e-4, 2e-6


def require_kernel(device: str) -> None:
    if ops.backend_info()["ops"]["log_mel_spectrogram"][device] != "compiled":
        pytest.skip(f"no compiled log_mel_spectrogram kernel for {device}")


def batch_of(speech_like, n_samples: int, rows: int) -> torch.Tensor:
    # Rows at different levels: each must be clamped with its own maximum.
    return torch.stack([speech_like(n_samples, seed=r, loudness=0.3 / 10**r) for r in range(rows)])


def assert_close(got: torch.Tensor, want: torch.Tensor, max_tol: float = MAX_TOL, mean_tol: float = MEAN_TOL):
    assert got.shape == want.shape and got.dtype == want.dtype == torch.float32
    err = (got.cpu() - want.cpu()).abs()
    assert err.max().item() <= max_tol, f"max abs diff {err.max().item():.3g}"
    assert err.mean().item() <= mean_tol, f"mean abs diff {err.mean().item():.3g}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("shape", [(201,), (399,), (400,), (3, 400), (1, N_SAMPLES), (3, N_SAMPLES + 123),
                                   (N_SAMPLES,), (N_SAMPLES + 123,), (20 * N_SAMPLES,)],  # ... 10 minutes
                         ids=lambda s: "x".join(map(str, s)))
def test_matches_reference(device, n_mels, shape, speech_like):
    require_kernel(device)
    audio = (batch_of(speech_like, shape[-1], shape[0]) if len(shape) == 2 else speech_like(shape[0])).to(device)
    filters = mel_filters(n_mels, device)
    got = torch.ops.whispermedia.log_mel_spectrogram(audio, filters, HOP_LENGTH)
    want = reference.log_mel_spectrogram(audio, filters, HOP_LENGTH)
    assert got.shape == (*shape[:-1], n_mels, shape[-1] // HOP_LENGTH)
    assert got.is_contiguous()
    assert_close(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_rows_are_independent(device, speech_like):
    require_kernel(device)
    audio = batch_of(speech_like, 48_000, 3).to(device)
    filters = mel_filters(80, device)
    batched = torch.ops.whispermedia.log_mel_spectrogram(audio, filters, HOP_LENGTH)
    for b in range(3):
        alone = torch.ops.whispermedia.log_mel_spectrogram(audio[b], filters, HOP_LENGTH)
        torch.testing.assert_close(batched[b], alone, rtol=0, atol=0)
    # Each row is clamped at its own max - 8 (= max - 2 after scaling); a clamp at the batch's
    # maximum would have raised the quiet rows' minimum to row 0's floor.
    row_max, row_min = batched.amax(dim=(1, 2)).cpu(), batched.amin(dim=(1, 2)).cpu()
    assert torch.all(row_min >= row_max - 2.0 - 1e-6)
    assert row_min[2] < row_max[0] - 2.0 - 0.1


@pytest.mark.parametrize("device", DEVICES)
def test_silence_and_odd_hops(device):
    require_kernel(device)
    filters = mel_filters(80, device)
    silent = torch.ops.whispermedia.log_mel_spectrogram(torch.zeros(1000, device=device), filters, HOP_LENGTH)
    assert torch.equal(silent.cpu(), torch.full((80, 6), -1.5))  # log10(1e-10) = -10 -> (-10 + 4) / 4
    audio = torch.randn(2, 5000, generator=torch.Generator().manual_seed(0)).to(device)
    for hop in (1, 97, 400, 4999, 5000, 6000):
        got = torch.ops.whispermedia.log_mel_spectrogram(audio, filters, hop)
        assert got.shape == (2, 80, 5000 // hop)
        if got.numel():
            assert_close(got, reference.log_mel_spectrogram(audio, filters, hop))


@pytest.mark.parametrize("device", DEVICES)
def test_errors(device):
    require_kernel(device)
    filters = mel_filters(80, device)
    op = torch.ops.whispermedia.log_mel_spectrogram
    with pytest.raises(RuntimeError, match="audio of 200 samples is too short to reflect-pad by n_fft / 2 = 200"):
        op(torch.zeros(200, device=device), filters, HOP_LENGTH)
    with pytest.raises(RuntimeError, match="audio of 200 samples is too short to reflect-pad by n_fft / 2 = 200"):
        torch.ops.whispermedia.log_mel_frames(torch.zeros(200, device=device), filters, HOP_LENGTH, 1.0)
    with pytest.raises(RuntimeError, match="200 samples is too short"):
        reference.log_mel_spectrogram(torch.zeros(200, device=device), filters, HOP_LENGTH)
    with pytest.raises(RuntimeError, match="200 samples is too short"):
        reference.log_mel_frames(torch.zeros(200, device=device), filters, HOP_LENGTH)
    with pytest.raises(RuntimeError, match="audio must be Float"):
        op(torch.zeros(1000, device=device, dtype=torch.float64), filters, HOP_LENGTH)
    with pytest.raises(RuntimeError, match=r"audio must be \[N\] or \[B, N\]"):
        op(torch.zeros(1, 1, 1000, device=device), filters, HOP_LENGTH)
    with pytest.raises(RuntimeError, match="hop_length must be positive"):
        op(torch.zeros(1000, device=device), filters, 0)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device, speech_like):
    require_kernel(device)
    filters = mel_filters(80, device)
    for audio in (speech_like(1234).to(device), torch.randn(2, 801).to(device)):
        torch.library.opcheck(torch.ops.whispermedia.log_mel_spectrogram.default, (audio, filters, HOP_LENGTH))
        torch.library.opcheck(torch.ops.whispermedia.log_mel_frames.default, (audio, filters, HOP_LENGTH))
        torch.library.opcheck(torch.ops.whispermedia.log_mel_frames.default, (audio, filters, HOP_LENGTH, 0.5))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device, speech_like):
    require_kernel(device)
    filters = mel_filters(80, device)

    def features(audio: torch.Tensor) -> torch.Tensor:
        return ops.log_mel_spectrogram(audio, filters, HOP_LENGTH)

    audio = batch_of(speech_like, 16_000, 2).to(device)
    compiled = torch.compile(features, fullgraph=True, dynamic=False)
    torch.testing.assert_close(compiled(audio), features(audio), rtol=0, atol=1e-6)

    def frames(audio: torch.Tensor) -> torch.Tensor:
        raw = ops.log_mel_frames(audio, filters, HOP_LENGTH)
        return raw, ops.log_mel_frames(audio, filters, HOP_LENGTH, 1.25)

    compiled = torch.compile(frames, fullgraph=True, dynamic=False)
    for got, want in zip(compiled(audio), frames(audio)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_frames(device, n_mels, speech_like):
    """Without a maximum: the unnormalised log10 mel (the reference's steps 1 to 4). With one:
    the clamp at that maximum - 8 and the scaling; with the input's own maximum, the very bits
    of log_mel_spectrogram."""
    require_kernel(device)
    audio = batch_of(speech_like, 50_000 + 77, 3).to(device)
    filters = mel_filters(n_mels, device)
    raw = torch.ops.whispermedia.log_mel_frames(audio, filters, HOP_LENGTH)
    assert raw.shape == (3, n_mels, 50_077 // HOP_LENGTH) and raw.is_contiguous()
    assert_close(raw, reference.log_mel_frames(audio, filters, HOP_LENGTH))
    assert raw.min().item() >= -10.0 - 1e-5  # log10 of the 1e-10 floor, no clamp
    whole = torch.ops.whispermedia.log_mel_spectrogram(audio, filters, HOP_LENGTH)
    for b in range(3):
        own = torch.ops.whispermedia.log_mel_frames(audio[b], filters, HOP_LENGTH, raw[b].max().item())
        assert torch.equal(own, whole[b])
    # one maximum for every row, larger than any: all rows clamped at it
    loud = raw.max().item() + 1.5
    got = torch.ops.whispermedia.log_mel_frames(audio, filters, HOP_LENGTH, loud)
    want = (torch.maximum(raw, torch.tensor(loud - 8.0, device=device)) + 4) / 4
    assert torch.equal(got, want)
    assert_close(got, reference.log_mel_frames(audio, filters, HOP_LENGTH, loud))
    assert torch.equal(ops.log_mel_frames(audio, filters, HOP_LENGTH, loud), got)


@pytest.mark.parametrize("device", DEVICES)
def test_log_mel_frames_of_a_slice_equal_the_whole(device, speech_like):
    """The property long inputs rely on (whispermedia.features.MelWindows): frames computed from
    a slice that starts two hops early (context for the reflect padding) and normalised with the
    whole input's maximum are bit-identical to the whole input's frames, wherever the slice falls
    relative to the kernel's tiles of 8 frames."""
    require_kernel(device)
    audio = speech_like(N_SAMPLES + 12_345, seed=5).to(device)
    filters = mel_filters(80, device)
    whole = torch.ops.whispermedia.log_mel_spectrogram(audio, filters, HOP_LENGTH)
    top = torch.ops.whispermedia.log_mel_frames(audio, filters, HOP_LENGTH).max().item()
    n = audio.shape[0]
    for f0, f1 in [(2, 9), (3, 4), (5, 1000), (11, 3011), (2990, 3077), (whole.shape[1] - 7, whole.shape[1])]:
        a = (f0 - 2) * HOP_LENGTH
        b = min(n, f1 * HOP_LENGTH + 200)
        part = torch.ops.whispermedia.log_mel_frames(audio[a:b], filters, HOP_LENGTH, top)
        assert torch.equal(part[:, 2:2 + f1 - f0], whole[:, f0:f1]), (f0, f1)


def test_wrapper_falls_back_to_reference(monkeypatch, speech_like):
    audio, filters = speech_like(4000), mel_filters(80)
    want = reference.log_mel_spectrogram(audio, filters, HOP_LENGTH)
    monkeypatch.setenv("WM_FORCE_REFERENCE", "1")
    torch.testing.assert_close(ops.log_mel_spectrogram(audio, filters, HOP_LENGTH), want, rtol=0, atol=0)
    monkeypatch.delenv("WM_FORCE_REFERENCE")
    monkeypatch.setitem(ops._COMPILED, "log_mel_spectrogram", {"cpu": False, "cuda": False})
    monkeypatch.setattr(ops, "_warned", set())
    with pytest.warns(RuntimeWarning, match="log_mel_spectrogram: .*pure-torch reference"):
        torch.testing.assert_close(ops.log_mel_spectrogram(audio, filters, HOP_LENGTH), want, rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.log_mel_spectrogram(audio, filters, HOP_LENGTH)  # warned once only


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_mels", [80, 128])
def test_matches_openai_whisper(device, n_mels, speech_like):
    """Our numbers vs openai-whisper's own ``log_mel_spectrogram`` (torch.stft, fp32), on a
    30 s speech-like clip padded by a window, the way transcription calls it."""
    whisper_audio = pytest.importorskip("whisper.audio", reason="openai-whisper is not installed")
    audio = speech_like(N_SAMPLES + 12_345, seed=3).to(device)
    want = whisper_audio.log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)
    padded = torch.nn.functional.pad(audio, (0, N_SAMPLES))
    filters = mel_filters(n_mels, device)
    assert_close(reference.log_mel_spectrogram(padded, filters, HOP_LENGTH), want, 5e-4, 1e-5)
    if ops.backend_info()["ops"]["log_mel_spectrogram"][device] == "compiled":
        assert_close(torch.ops.whispermedia.log_mel_spectrogram(padded, filters, HOP_LENGTH), want, 5e-4, 1e-5)
