"""whispermedia.features.MelWindows: the whole file's log-mel, window by window, in bounded memory.

The reference is the whole-file computation the pipeline used to do,
``log_mel_spectrogram(load_audio(path), n_mels, padding=N_SAMPLES)``: every window must equal
its slice bit for bit (on the compiled kernels), wherever it starts, whatever the source
(a path, a seekable file object, a pipe, a FIFO, an array), and a 3-hour input must keep the
feature path's peak memory under 300 MB.
"""

from __future__ import annotations

import os
import threading

import av
import numpy as np
import pytest
import torch

from fake_streams import Pipe
from peak_rss import PEAK_RESET_AVAILABLE, measure_peak_rss
from whispermedia import ops
from whispermedia.errors import MediaError
from whispermedia.features import HOP_LENGTH, N_FRAMES, N_SAMPLES, MelWindows, log_mel_spectrogram, mel_filters
from whispermedia.media import load_audio, open_source

SPEECH = os.path.join(os.path.dirname(__file__), "data", "speech")
CLIPS = ("jfk.flac", "arctic_a0007.flac", "arctic_a0009.flac")


def compiled() -> bool:
    return ops.backend_info()["ops"]["log_mel_spectrogram"]["cpu"] == "compiled"


def assert_same(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype == torch.float32
    if compiled():
        assert torch.equal(got, want), f"max abs diff {(got - want).abs().max().item():.3g}"
    else:  # torch.stft/matmul on a slice may round differently from the whole input
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def real_speech(seconds: float) -> np.ndarray:
    """The three real clips at several levels, repeated to `seconds`; the last 11 s (JFK at full
    level) are the loudest, so the clamp of the first windows is set by audio 2 minutes later."""
    clips = [load_audio(os.path.join(SPEECH, name)) for name in CLIPS]
    quiet = np.concatenate([clips[0] * 0.2, clips[1] * 0.35, clips[2] * 0.1, clips[1] * 0.05])
    body = np.resize(quiet, int(seconds * 16000) - clips[0].shape[0])
    return np.concatenate([body, clips[0]]).astype(np.float32)


def write_flac(path, audio: np.ndarray) -> None:
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=16000, layout="mono")
        for i in range(0, pcm.shape[0], 16000):
            frame = av.AudioFrame.from_ndarray(pcm[None, i:i + 16000], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def two_minutes(tmp_path_factory):
    """(path of a ~2 min FLAC of real speech, its decoded samples, {n_mels: whole-file mel})."""
    path = tmp_path_factory.mktemp("long") / "speech.flac"
    write_flac(path, real_speech(123.4567))
    samples = load_audio(path)
    whole = {n: log_mel_spectrogram(samples, n, padding=N_SAMPLES) for n in (80, 128)}
    return path, samples, whole


def seeks(n_frames: int, content_frames: int):
    """Awkward windows: tile-misaligned starts, the reflect-padded start, the end of the speech,
    the zero padding, past the end, a step backwards (restarts the decoder), the whole."""
    return [(0, N_FRAMES), (1, N_FRAMES), (2, N_FRAMES), (3, 17), (8, 8), (157, N_FRAMES), (2999, 3001),
            (3001, 1), (5995, N_FRAMES), (content_frames - 1234, N_FRAMES), (content_frames - 1, N_FRAMES),
            (n_frames - 3, N_FRAMES), (n_frames, 10), (10, 5), (0, n_frames)]


@pytest.mark.parametrize("kind", ["path", "file object", "pipe", "array", "tensor"])
@pytest.mark.parametrize("n_mels", [80, 128])
def test_windows_equal_the_whole_file_mel(two_minutes, kind, n_mels):
    path, samples, whole = two_minutes
    source = {"path": path, "file object": lambda: open(path, "rb"), "pipe": lambda: Pipe(path.read_bytes(), name="pipe:"),
              "array": samples, "tensor": torch.from_numpy(samples)}[kind]
    if callable(source):
        source = source()
    with MelWindows(source, n_mels) as mel:
        ref = whole[n_mels]
        assert (mel.n_samples, mel.n_frames) == (samples.shape[0], ref.shape[1])
        assert mel.content_frames == ref.shape[1] - N_FRAMES == samples.shape[0] // HOP_LENGTH
        assert mel.source.kind == {"path": "path", "file object": "file", "pipe": "spool"}.get(kind, "samples")
        for seek, n in seeks(mel.n_frames, mel.content_frames):
            assert_same(mel.window(seek, n), ref[:, seek:seek + n])
        spool = mel.source._data if mel.source.kind == "spool" else None
    if spool is not None:
        assert spool.closed  # the temporary copy is gone with close()
    if kind == "file object":
        assert not source.closed and source.tell() == 0  # never closed, position put back
        source.close()


def test_an_audio_source_is_used_as_it_is_and_left_to_its_caller(two_minutes):
    """MelWindows(open_source(x)) is MelWindows(x); the source outlives the windows, so a
    later stage (voice activity, a second feature pass) can decode it again."""
    path, samples, whole = two_minutes
    with open_source(Pipe(path.read_bytes(), name="pipe:")) as source:
        for n_mels in (80, 128):
            with MelWindows(source, n_mels) as mel:
                assert mel.source is source and mel.n_samples == samples.shape[0]
                for seek, n in [(0, N_FRAMES), (5995, N_FRAMES), (mel.content_frames - 1, N_FRAMES)]:
                    assert_same(mel.window(seek, n), whole[n_mels][:, seek:seek + n])
            assert not source._data.closed  # the spool is the caller's to delete
    assert source._data.closed
    with pytest.raises(ValueError, match="opened for audio stream"):
        MelWindows(open_source(path), stream_index=1)


def test_maximum_is_the_whole_inputs(two_minutes):
    """Pass 1's maximum is the whole padded input's, and it is not where a running maximum
    would see it in time: the loudest speech is in the last 11 s."""
    path, samples, whole = two_minutes
    mel = MelWindows(path)
    padded = torch.nn.functional.pad(torch.from_numpy(samples), (0, N_SAMPLES))
    raw = ops.log_mel_frames(padded, mel_filters(80), HOP_LENGTH)
    assert mel.maximum == raw.max().item()
    assert raw[:, : mel.content_frames - 1200].max().item() < mel.maximum - 0.5
    # so the first window, clamped on its own, would differ from the whole file's
    alone = log_mel_spectrogram(samples[:N_SAMPLES])
    assert not torch.equal(alone, whole[80][:, :N_FRAMES])
    assert_same(mel.window(0), whole[80][:, :N_FRAMES])


def test_the_transcription_loop_order(two_minutes):
    """What the pipeline asks: the first window (language), then windows at seeks that advance
    by less than a window, each padded to N_FRAMES."""
    from whispermedia.features import pad_or_trim

    path, _, whole = two_minutes
    mel = MelWindows(path)
    assert_same(pad_or_trim(mel.window(0, N_FRAMES), N_FRAMES), pad_or_trim(whole[80], N_FRAMES))
    seek, content = 0, mel.content_frames
    while seek < content:
        size = min(N_FRAMES, content - seek)
        got = pad_or_trim(mel.window(seek, size), N_FRAMES)
        assert_same(got, pad_or_trim(whole[80][:, seek:seek + size], N_FRAMES))
        seek += 2345 if size == N_FRAMES else size


def test_decoding_restarts_only_for_windows_more_than_30_s_back(two_minutes):
    path, _, whole = two_minutes
    mel = MelWindows(path)
    restarts = []
    original = mel._cursor._restart
    mel._cursor._restart = lambda: (restarts.append(1), original())[1]
    for seek, n in [(0, 10), (6000, N_FRAMES), (3100, 2000), (9000, N_FRAMES), (6100, 50)]:
        assert_same(mel.window(seek, n), whole[80][:, seek:seek + n])
    assert len(restarts) == 1  # the first window only: 29 s back is still buffered
    assert_same(mel.window(1000, 100), whole[80][:, 1000:1100])  # 81 s back: decoded again
    assert len(restarts) == 2


def test_column_slices_like_the_whole_tensor(two_minutes):
    path, _, whole = two_minutes
    mel = MelWindows(path)
    assert mel.shape == tuple(whole[80].shape)
    assert mel.max().dtype == torch.float32 and mel.max().item() == whole[80].max().item()
    for index in [slice(100, 3100), slice(None, 3000), slice(-5, None), slice(5000, 10**9), slice(20, 10)]:
        assert_same(mel[:, index], whole[80][:, index])
    for bad in [0, (0, slice(1, 2)), (slice(None), slice(0, 10, 2)), (slice(None), 3)]:
        with pytest.raises(TypeError, match="column slices"):
            mel[bad]


@pytest.mark.parametrize("n_samples", [0, 201, 399, 400, 160 * 7 + 3, N_SAMPLES + 123])
@pytest.mark.parametrize("padding", [0, N_SAMPLES])
def test_short_and_awkward_lengths(speech_clip, n_samples, padding):
    audio = np.resize(speech_clip, n_samples).astype(np.float32)
    if n_samples + padding <= 200:
        with pytest.raises(RuntimeError, match="too short to reflect-pad by n_fft / 2 = 200"):
            log_mel_spectrogram(audio, padding=padding)
        with pytest.raises(RuntimeError, match="too short to reflect-pad by n_fft / 2 = 200"):
            MelWindows(audio, padding=padding)
        return
    whole = log_mel_spectrogram(audio, padding=padding)
    mel = MelWindows(audio, padding=padding)
    assert mel.n_frames == whole.shape[1]
    for seek, n in [(0, mel.n_frames), (0, 3), (1, 1), (2, 5), (mel.n_frames - 1, 1), (3, N_FRAMES)]:
        assert_same(mel.window(seek, n), whole[:, seek:seek + n])


@pytest.fixture(scope="module")
def speech_clip():
    return load_audio(os.path.join(SPEECH, "jfk.flac"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_path_is_read_once_and_spooled(two_minutes, tmp_path):
    path, _, whole = two_minutes
    fifo = tmp_path / "audio.fifo"
    os.mkfifo(fifo)
    payload = path.read_bytes()

    def writer():
        with open(fifo, "wb") as f:
            f.write(payload)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    with MelWindows(fifo) as mel:
        thread.join(timeout=30)
        assert mel.source.kind == "spool"
        for seek, n in [(0, N_FRAMES), (4321, N_FRAMES), (100, 7)]:
            assert_same(mel.window(seek, n), whole[80][:, seek:seek + n])


def test_bad_input_fails_in_the_constructor(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        MelWindows(tmp_path / "missing.flac")
    # a pipe is spooled first; errors still name the pipe, not the temporary copy
    with pytest.raises(MediaError, match="^stdin: "):
        MelWindows(Pipe(b"two lines of\nplain text\n", name="stdin"))
    with pytest.raises(ValueError, match="1-D"):
        MelWindows(np.zeros((2, 1000), np.float32))
    with pytest.raises(ValueError, match="seek and n_frames"):
        MelWindows(np.zeros(1000, np.float32)).window(-1, 10)


def test_reference_fallback_agrees(two_minutes, monkeypatch):
    """Without the compiled op the windows come from the pure-torch reference: equal to the
    reference's whole-file mel to float rounding (bit equality is only promised compiled)."""
    path, samples, _ = two_minutes
    monkeypatch.setenv("WM_FORCE_REFERENCE", "1")
    whole = log_mel_spectrogram(samples, 80, padding=N_SAMPLES)
    mel = MelWindows(samples)
    for seek, n in [(0, N_FRAMES), (2999, N_FRAMES), (mel.n_frames - 10, N_FRAMES)]:
        torch.testing.assert_close(mel.window(seek, n), whole[:, seek:seek + n], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------
# memory: 3 hours of media


def write_long_pcm_u8(path, seconds: int) -> None:
    """`seconds` of the real clips repeated, as 8-bit PCM (16 kHz mono) in Matroska, written in
    10 s packets (a low-bitrate file that decodes fast: 173 MB for 3 hours)."""
    clips = np.concatenate([load_audio(os.path.join(SPEECH, name)) for name in CLIPS])
    step = 160_000
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_u8", rate=16000, layout="mono")
        for i in range(0, seconds * 16000, step):
            k = min(step, seconds * 16000 - i)
            x = clips[np.arange(i, i + k) % clips.shape[0]]
            frame = av.AudioFrame.from_ndarray((np.clip(x, -1, 1) * 127 + 128).astype(np.uint8)[None],
                                               format="u8", layout="mono")
            frame.sample_rate, frame.pts = 16000, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


WARM_UP = """
from whispermedia.features import N_FRAMES, MelWindows
MelWindows(args[1]).window(0)  # PyAV, the op, the filter bank
"""

EVERY_WINDOW = """
mel = MelWindows(args[0])
seek = frames = 0
while seek < mel.content_frames:  # every window, as transcription reads them
    frames += mel.window(seek, N_FRAMES).shape[1]
    seek += N_FRAMES
result = {"n_samples": mel.n_samples, "frames": frames}
"""


@pytest.mark.slow
@pytest.mark.skipif(not PEAK_RESET_AVAILABLE, reason="needs Linux /proc peak-RSS reset")
def test_three_hours_stay_under_300_mb(tmp_path):
    hours = 3
    path = tmp_path / "three_hours.mka"
    write_long_pcm_u8(path, hours * 3600)
    result = measure_peak_rss(WARM_UP, EVERY_WINDOW, str(path), os.path.join(SPEECH, "jfk.flac"))
    assert result["n_samples"] == hours * 3600 * 16000
    assert result["frames"] == hours * 3600 * 100  # windows of N_FRAMES from 0 up to the end of the speech
    # the whole-file path would hold 691 MB of samples and 346 MB of frames at once
    assert result["peak_growth"] < 300e6, f"peak grew by {result['peak_growth'] / 1e6:.0f} MB"
