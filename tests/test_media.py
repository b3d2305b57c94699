"""Tests for whispermedia.media: decoding any media file to 16 kHz mono float32.

The fixtures are committed under tests/data (see tests/data/README.md; regenerate them with
tests/data/make_fixtures.sh). Nothing here needs ffmpeg except the comparison with the ffmpeg
command line, which is skipped when ffmpeg is absent.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import subprocess
import wave

import av
import numpy as np
import pytest

from fake_streams import Pipe
from whispermedia import media
from whispermedia.cli_render import EXIT_INPUT, exit_code_for
from whispermedia.errors import MediaError
from whispermedia.media import SAMPLE_RATE, iter_audio_chunks, load_audio, probe

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text())

# decoders and resamplers may legitimately differ by a few samples between FFmpeg versions
# (the fixtures' counts were taken with the ffmpeg command line, the tests run PyAV's FFmpeg)
SAMPLE_SLACK = 4


def data(name: str) -> str:
    return str(DATA / name)


def tone_amplitude(x: np.ndarray, freq: float, sr: int = SAMPLE_RATE) -> float:
    """Amplitude of the ``freq`` Hz component of ``x`` (exact for whole cycles)."""
    t = np.arange(len(x)) / sr
    return float(2 * np.abs(np.dot(x.astype(np.float64), np.exp(-2j * np.pi * freq * t))) / len(x))


def dominant_frequency(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sr / len(x))


# ------------------------------------------------------------------------------------------
# probe


def test_probe_stereo_wav():
    info = probe(data("stereo_44k1.wav"))
    assert info.path == data("stereo_44k1.wav")
    assert info.container == "wav"
    assert not info.has_video
    assert info.duration == pytest.approx(1.0, abs=0.01)
    (s,) = info.audio_streams
    assert (s.index, s.codec, s.sample_rate, s.channels) == (0, "pcm_s16le", 44100, 2)
    assert s.duration == pytest.approx(1.0, abs=0.01)
    assert s.language is None


def test_probe_video_with_aac():
    info = probe(data("video_aac.mp4"))
    assert info.has_video
    assert "mp4" in info.container.split(",")
    assert info.duration == pytest.approx(2.0, abs=0.1)
    (s,) = info.audio_streams
    assert (s.codec, s.sample_rate, s.channels) == ("aac", 48000, 2)
    assert s.language is None  # the MP4 says "und"


def test_probe_two_audio_streams():
    info = probe(data("two_audio.mkv"))
    assert info.has_video
    assert info.container == "matroska,webm"
    a0, a1 = info.audio_streams
    assert (a0.index, a0.codec, a0.sample_rate, a0.channels, a0.language) == (0, "opus", 48000, 2, "eng")
    assert (a1.index, a1.codec, a1.sample_rate, a1.channels, a1.language) == (1, "vorbis", 22050, 1, "fra")
    # Matroska keeps stream durations in a DURATION tag; probe reads it
    assert a0.duration == pytest.approx(2.0, abs=0.05)
    assert a1.duration == pytest.approx(2.0, abs=0.05)


def test_probe_mp3_reports_codec_not_decoder_name():
    (s,) = probe(data("tone.mp3")).audio_streams
    assert s.codec == "mp3"  # not FFmpeg's decoder name "mp3float"
    assert (s.sample_rate, s.channels) == (44100, 1)


def test_probe_video_without_audio_is_not_an_error():
    info = probe(data("video_only.mp4"))
    assert info.has_video
    assert info.audio_streams == ()


def test_probe_info_is_frozen():
    info = probe(data("tone.opus"))
    with pytest.raises(Exception):
        info.duration = 3.0  # type: ignore[misc]
    with pytest.raises(Exception):
        info.audio_streams[0].codec = "x"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# decoding: counts, format, content

COUNTED = [
    "tests/data/stereo_44k1.wav",
    "tests/data/video_aac.mp4",
    "tests/data/two_audio.mkv",
    "tests/data/tone.opus",
    "tests/data/tone.mp3",
    "tests/data/speech/jfk.flac",
    "tests/data/speech/arctic_a0007.flac",
    "tests/data/speech/arctic_a0009.flac",
    "samples/jfk.mp4",
]


@pytest.mark.parametrize("name", COUNTED)
def test_sample_count_matches_ffmpeg(name):
    audio = load_audio(str(ROOT / name))
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert abs(len(audio) - EXPECTED[name]["samples"]) <= SAMPLE_SLACK
    assert np.all(np.abs(audio) <= 1.0)
    assert np.all(np.isfinite(audio))


def test_known_exact_lengths():
    # 44100 frames at 44.1 kHz and 176000 samples at 16 kHz: no sample lost or added, the
    # resampler's tail included (it is flushed)
    assert len(load_audio(data("stereo_44k1.wav"))) == 16000
    assert len(load_audio(data("speech/jfk.flac"))) == 176000


def test_lossless_16k_mono_is_bit_exact():
    # a 16 kHz mono FLAC goes through unchanged: samples are the int16 values / 32768
    audio = load_audio(data("speech/jfk.flac"))
    assert np.array_equal(audio * 32768, np.round(audio * 32768))  # on the int16 grid
    assert audio.max() < 1.0 and audio.min() >= -1.0


def test_stereo_downmix_is_the_mean_of_the_channels():
    # left: 440 Hz at 0.6, right: 1000 Hz at 0.2 -> mono (L+R)/2: 440 Hz at 0.3, 1000 Hz at 0.1
    audio = load_audio(data("stereo_44k1.wav"))
    assert tone_amplitude(audio, 440) == pytest.approx(0.3, abs=0.005)
    assert tone_amplitude(audio, 1000) == pytest.approx(0.1, abs=0.005)
    assert np.abs(audio).max() == pytest.approx(0.4, abs=0.01)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_resample_rate(rate):
    audio = load_audio(data("tone.mp3"), sample_rate=rate)  # 1 s of 440 Hz at 44.1 kHz
    assert abs(len(audio) - rate) <= SAMPLE_SLACK * rate / SAMPLE_RATE + 1
    assert dominant_frequency(audio, rate) == pytest.approx(440, abs=2)


def test_opus_and_video_container_content():
    assert dominant_frequency(load_audio(data("tone.opus"))) == pytest.approx(880, abs=2)
    audio = load_audio(data("video_aac.mp4"))
    assert dominant_frequency(audio) == pytest.approx(660, abs=2)
    # a 0.5-amplitude tone, identical in both channels, stays ~0.5 after the downmix
    assert tone_amplitude(audio[1600:-1600], 660) == pytest.approx(0.5, abs=0.05)


def test_stream_selection_by_content():
    default = load_audio(data("two_audio.mkv"))
    first = load_audio(data("two_audio.mkv"), stream_index=0)
    second = load_audio(data("two_audio.mkv"), stream_index=1)
    assert np.array_equal(default, first)
    assert dominant_frequency(first) == pytest.approx(300, abs=2)
    assert dominant_frequency(second) == pytest.approx(1200, abs=2)
    assert abs(len(second) - EXPECTED["tests/data/two_audio.mkv"]["samples_a1"]) <= SAMPLE_SLACK


@pytest.mark.parametrize("index", [2, 7, -1])
def test_stream_index_out_of_range(index):
    with pytest.raises(MediaError) as e:
        load_audio(data("two_audio.mkv"), stream_index=index)
    text = str(e.value)
    assert text.startswith(data("two_audio.mkv") + ": ")
    assert f"index {index}" in text and "out of range" in text
    assert "2 audio streams" in text


def test_stream_index_on_single_stream_file():
    with pytest.raises(MediaError, match=r"has 1 audio stream \(index 0\)"):
        load_audio(data("tone.mp3"), stream_index=1)


def test_sample_rate_change_mid_stream():
    # 0.5 s of 440 Hz at 44.1 kHz mono, then 0.5 s of 880 Hz at 22.05 kHz stereo: the
    # resampler is rebuilt at the change instead of failing
    audio = load_audio(data("rate_change.mp3"))
    expected = EXPECTED["tests/data/rate_change.mp3"]["samples"]
    assert abs(len(audio) - expected) <= 0.01 * expected
    assert dominant_frequency(audio[: len(audio) // 2 - 1000]) == pytest.approx(440, abs=5)
    assert dominant_frequency(audio[len(audio) // 2 + 1500:]) == pytest.approx(880, abs=5)


def test_old_pyav_fallback_matches(monkeypatch):
    # PyAV without AudioResampler(options=...) gets s16 output scaled by 1/32768
    real = av.AudioResampler

    def no_options(*args, **kwargs):
        if "options" in kwargs:
            raise TypeError("unexpected keyword argument 'options'")
        return real(*args, **kwargs)

    reference = load_audio(data("video_aac.mp4"))
    monkeypatch.setattr(media.av, "AudioResampler", no_options)
    fallback = load_audio(data("video_aac.mp4"))
    assert len(fallback) == len(reference)
    assert np.abs(fallback - reference).max() <= 2 / 32768


# ------------------------------------------------------------------------------------------
# chunks


@pytest.mark.parametrize("name", ["stereo_44k1.wav", "video_aac.mp4", "tone.opus", "speech/jfk.flac"])
@pytest.mark.parametrize("chunk", [1, 1000, 7919, 16000, 480000])
def test_chunks_concatenate_to_load_audio(name, chunk):
    whole = load_audio(data(name))
    chunks = list(iter_audio_chunks(data(name), chunk_samples=chunk))
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
    assert all(len(c) == chunk for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk
    assert np.array_equal(np.concatenate(chunks), whole)


def test_chunks_stream_index():
    chunks = list(iter_audio_chunks(data("two_audio.mkv"), stream_index=1, chunk_samples=5000))
    assert np.array_equal(np.concatenate(chunks), load_audio(data("two_audio.mkv"), stream_index=1))


def test_chunks_of_a_long_file(tmp_path):
    # 70 s of a 16-bit 8 kHz WAV written here: three full default chunks (30 s) and a rest
    path = tmp_path / "long.wav"
    sr, seconds = 8000, 70
    t = np.arange(sr * seconds) / sr
    pcm = (0.25 * np.sin(2 * np.pi * 250 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    chunks = list(iter_audio_chunks(path))
    assert [len(c) for c in chunks[:-1]] == [480000, 480000]
    assert abs(sum(len(c) for c in chunks) - seconds * SAMPLE_RATE) <= SAMPLE_SLACK
    assert np.array_equal(np.concatenate(chunks), load_audio(path))


def test_chunks_are_independent_arrays():
    chunks = list(iter_audio_chunks(data("tone.mp3"), chunk_samples=4000))
    chunks[0][:] = 0  # writable, and writing one does not touch the others
    assert np.abs(chunks[1]).max() > 0.1


def test_chunks_open_eagerly_and_close_early():
    with pytest.raises(MediaError, match="no such file"):
        iter_audio_chunks(data("missing.mp4"))  # raised by the call, before any next()
    it = iter_audio_chunks(data("speech/jfk.flac"), chunk_samples=16000)
    first = next(it)
    assert len(first) == 16000
    it.close()  # stops decoding and closes the file; no error
    with pytest.raises(StopIteration):
        next(it)


def test_argument_checks():
    with pytest.raises(ValueError):
        list(iter_audio_chunks(data("tone.mp3"), chunk_samples=0))
    with pytest.raises(ValueError):
        load_audio(data("tone.mp3"), sample_rate=0)
    with pytest.raises(TypeError):
        load_audio(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        load_audio(data("tone.mp3"), stream_index="1")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# sources: paths, path-likes, file objects


def test_pathlike_and_str_agree():
    assert np.array_equal(load_audio(DATA / "tone.opus"), load_audio(data("tone.opus")))
    assert probe(DATA / "tone.opus").path == data("tone.opus")


def test_file_object_input():
    expected = load_audio(data("video_aac.mp4"))
    with open(data("video_aac.mp4"), "rb") as f:
        f.seek(123)
        assert np.array_equal(load_audio(f), expected)  # read from the start
        assert f.tell() == 123  # position put back
        assert not f.closed
        info = probe(f)
        assert info.path == data("video_aac.mp4")  # the file object's name
        assert info.audio_streams[0].codec == "aac"
        chunks = list(iter_audio_chunks(f, chunk_samples=10000))
        assert np.array_equal(np.concatenate(chunks), expected)
        assert f.tell() == 123


def test_paths_that_look_like_urls(tmp_path, monkeypatch):
    # FFmpeg would read "take:2.mp3" as protocol "take"; a path is always a local file here
    shutil.copy(data("tone.mp3"), tmp_path / "take:2.mp3")
    shutil.copy(data("tone.mp3"), tmp_path / "50% #1?.mp3")
    monkeypatch.chdir(tmp_path)
    for name in ("take:2.mp3", "50% #1?.mp3"):
        assert dominant_frequency(load_audio(name)) == pytest.approx(440, abs=2)
        assert probe(name).path == name


def test_bytesio_input():
    raw = (DATA / "two_audio.mkv").read_bytes()
    second = load_audio(io.BytesIO(raw), stream_index=1)
    assert np.array_equal(second, load_audio(data("two_audio.mkv"), stream_index=1))
    assert probe(io.BytesIO(raw)).path == "<file object>"


def test_non_seekable_file_object():
    audio = load_audio(Pipe((DATA / "tone.opus").read_bytes()))
    assert dominant_frequency(audio) == pytest.approx(880, abs=2)


# ------------------------------------------------------------------------------------------
# open_source: the input's kind decided once, decoded as often as asked


def _decoded(source: media.AudioSource, chunk: int = 7000) -> np.ndarray:
    return np.concatenate(list(source.chunks(chunk)))


def test_open_source_kinds_decode_again_and_again(tmp_path):
    path = data("two_audio.mkv")
    want = load_audio(path, stream_index=1)
    raw = pathlib.Path(path).read_bytes()
    with open(path, "rb") as f:
        f.seek(77)
        for given, kind, label in [(path, "path", path), (pathlib.Path(path), "path", path), (f, "file", path),
                                   (io.BytesIO(raw), "file", "<file object>"), (Pipe(raw, name="stdin"), "spool", "stdin")]:
            with media.open_source(given, stream_index=1) as source:
                assert (source.kind, source.label, source.stream_index) == (kind, label, 1)
                assert source.path == (path if kind == "path" else None)
                for chunk in (7000, 16000):  # every decode starts from the beginning
                    assert np.array_equal(_decoded(source, chunk), want)
                assert media.open_source(source) is source  # already decided: the same object
            if kind == "spool":
                assert source._data.closed  # the temporary copy is deleted with close()
        assert not f.closed and f.tell() == 77  # a caller's file object: position put back, not closed


def test_open_source_of_samples_slices_them_as_they_are():
    import torch

    x = np.linspace(-1, 1, 10_001, dtype=np.float32)
    source = media.open_source(x)
    assert (source.kind, source.label, source.path) == ("samples", "<samples>", None)
    chunks = list(source.chunks(4000))
    assert [c.shape[0] for c in chunks] == [4000, 4000, 2001]
    assert all(np.shares_memory(c, x) for c in chunks)  # views: nothing copied whole
    assert np.array_equal(np.concatenate(chunks), x)
    for tensor in (torch.from_numpy(x), torch.from_numpy(x).double(), torch.from_numpy(x).to(torch.bfloat16)):
        got = _decoded(media.open_source(tensor), 3000)
        assert got.dtype == np.float32 and np.array_equal(got, tensor.float().numpy())
    assert list(media.open_source(np.zeros(0, np.float32)).chunks()) == []
    with pytest.raises(ValueError, match="1-D"):
        media.open_source(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="chunk_samples"):
        source.chunks(0)


def test_open_source_checks_the_input_at_once(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        media.open_source(tmp_path / "missing.flac")
    with pytest.raises(MediaError, match="is a directory"):
        media.open_source(tmp_path)
    with pytest.raises(MediaError, match="out of range"):
        media.open_source(data("tone.mp3"), stream_index=1)
    with pytest.raises(MediaError, match="^stdin: not a media file"):  # spooled, named as given
        media.open_source(Pipe(b"two lines of\nplain text\n", name="stdin"))
    closed = open(data("tone.mp3"), "rb")
    closed.close()
    with pytest.raises(MediaError, match="the file object is closed"):
        media.open_source(closed)
    with pytest.raises(TypeError, match="not int"):
        media.open_source(12345)  # type: ignore[arg-type]
    source = media.open_source(data("two_audio.mkv"), stream_index=1)
    assert media.open_source(source, stream_index=1) is source
    with pytest.raises(ValueError, match="opened for audio stream 1, not 0"):
        media.open_source(source, stream_index=0)


# ------------------------------------------------------------------------------------------
# bad input: one MediaError, "<path>: <problem>", never an av exception

BAD = [
    # (file, words the message must contain, whether PyAV's error is chained as __cause__)
    ("missing.mp4", "no such file", False),
    ("", "is a directory", False),  # tests/data itself
    ("empty.mp4", "empty file", False),
    ("not_media.mp4", "not a media file", True),
    ("video_only.mp4", "no audio stream", False),
    ("truncated.mp4", "truncated or corrupt", True),
    ("truncated_faststart.mp4", "truncated", True),
    ("corrupt_mid.mp4", "corrupt audio data", True),
]


def _check_media_error(exc: MediaError, path: str, words: str) -> None:
    text = str(exc)
    assert text.startswith(f"{path}: "), text
    assert words in text, text
    assert "\n" not in text
    assert len(text) < len(path) + 120
    assert not isinstance(exc, av.error.FFmpegError)
    assert exc.path == path
    assert exit_code_for(exc) == EXIT_INPUT  # what the command line exits with


@pytest.mark.parametrize("name,words,chained", BAD, ids=[b[0] or "directory" for b in BAD])
def test_bad_input_load_audio(name, words, chained):
    path = str(DATA / name) if name else str(DATA)
    with pytest.raises(MediaError) as e:
        load_audio(path)
    _check_media_error(e.value, path, words)
    if chained:
        assert isinstance(e.value.__cause__, av.error.FFmpegError)


@pytest.mark.parametrize("name,words,chained", BAD, ids=[b[0] or "directory" for b in BAD])
def test_bad_input_iter_audio_chunks(name, words, chained):
    path = str(DATA / name) if name else str(DATA)
    with pytest.raises(MediaError) as e:
        for _ in iter_audio_chunks(path, chunk_samples=4000):
            pass
    _check_media_error(e.value, path, words)


@pytest.mark.parametrize("name,words", [(n, w) for n, w, _ in BAD[:4]] + [("truncated.mp4", "truncated")])
def test_bad_input_probe(name, words):
    path = str(DATA / name) if name else str(DATA)
    with pytest.raises(MediaError) as e:
        probe(path)
    _check_media_error(e.value, path, words)


def test_partial_decode_raises_after_the_good_chunks():
    # the faststart MP4 cut at 60 % decodes ~1.5 s and then runs out: the good chunks come
    # first, then the error instead of a silently short result
    got = []
    with pytest.raises(MediaError, match=r"truncated: the data runs out after 1\.\d+ s of the 3\.00 s"):
        for chunk in iter_audio_chunks(data("truncated_faststart.mp4"), chunk_samples=8000):
            got.append(chunk)
    assert len(got) >= 2


def test_corrupt_packets_mid_stream():
    with pytest.raises(MediaError, match=r"corrupt audio data after 1\.3\d s") as e:
        load_audio(data("corrupt_mid.mp4"))
    assert isinstance(e.value.__cause__, av.error.FFmpegError)


def test_corrupt_flac_resyncs_silently():
    # documented limitation: FLAC's parser skips the frames that fail their CRC without telling
    # the caller; the result is a little short, with no error
    audio = load_audio(data("corrupt_mid.flac"))
    assert 1.8 * SAMPLE_RATE < len(audio) < 2.0 * SAMPLE_RATE


@pytest.mark.parametrize("name,fraction", [("two_audio.mkv", 0.4), ("speech/jfk.flac", 0.5)])
def test_truncated_copies_raise(tmp_path, name, fraction):
    # cut here from committed fixtures: Matroska ends quietly (the declared duration catches
    # it), FLAC fails on its last partial frame
    raw = (DATA / name).read_bytes()
    cut = tmp_path / pathlib.Path(name).name
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(MediaError, match="truncated") as e:
        load_audio(cut)
    assert str(e.value).startswith(f"{cut}: ")


def _float_wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    """A mono IEEE-float WAV (format tag 3), which the wave module cannot write."""
    payload = samples.astype("<f4").tobytes()
    fmt = (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little") \
        + (rate * 4).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt \
        + b"data" + len(payload).to_bytes(4, "little") + payload
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def test_out_of_range_float_samples_are_tamed():
    x = np.zeros(1600, dtype=np.float32)
    x[10:20] = [np.nan, np.inf, -np.inf, 3.0, -3.0, 0.5, -0.5, 1.0, -1.0, 0.0]
    audio = load_audio(io.BytesIO(_float_wav(x)))
    assert len(audio) == 1600
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    assert audio[10:20].tolist() == [0.0, 1.0, -1.0, 1.0, -1.0, 0.5, -0.5, 1.0, -1.0, 0.0]


@pytest.mark.parametrize("name", ["video_aac.mp4", "two_audio.mkv", "tone.opus", "tone.mp3",
                                  "speech/arctic_a0009.flac"])
def test_damaged_bytes_never_leak_pyav_errors(name):
    # seeded damage: random bytes changed, a random cut, a random run overwritten. Whatever
    # PyAV makes of it, the caller sees audio or a MediaError, nothing else.
    import random

    raw = (DATA / name).read_bytes()
    for seed in range(12):
        rng = random.Random(seed)
        damaged = bytearray(raw)
        if seed % 3 == 0:
            for _ in range(rng.randint(1, 40)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        elif seed % 3 == 1:
            damaged = damaged[: rng.randrange(1, len(damaged))]
        else:
            at, n = rng.randrange(len(damaged)), rng.randint(1, 2000)
            damaged[at:at + n] = bytes(rng.randrange(256) for _ in range(len(damaged[at:at + n])))
        for read in (probe, load_audio, lambda s: list(iter_audio_chunks(s, chunk_samples=3000))):
            try:
                result = read(io.BytesIO(bytes(damaged)))
            except MediaError as exc:
                assert str(exc).startswith("<file object>: ") and "\n" not in str(exc)
            else:
                if isinstance(result, np.ndarray):
                    assert result.dtype == np.float32 and np.abs(result).max(initial=0) <= 1.0


def test_codec_without_decoder(tmp_path):
    # rename the second stream's Matroska codec ID: the file opens, that stream cannot decode
    raw = (DATA / "two_audio.mkv").read_bytes()
    assert raw.count(b"A_VORBIS") == 1
    path = tmp_path / "unknown_codec.mkv"
    path.write_bytes(raw.replace(b"A_VORBIS", b"A_ZZZZZZ"))
    info = probe(path)
    assert info.audio_streams[1].codec == "unknown"
    assert info.audio_streams[1].language == "fra"
    assert dominant_frequency(load_audio(path)) == pytest.approx(300, abs=2)  # stream 0 is fine
    with pytest.raises(MediaError) as e:
        iter_audio_chunks(path, stream_index=1)
    _check_media_error(e.value, str(path), "codec PyAV cannot decode")


def test_bad_file_objects():
    with pytest.raises(MediaError) as e:
        load_audio(io.BytesIO(b""))
    assert str(e.value) == "<file object>: empty file (0 bytes)"
    with pytest.raises(MediaError) as e:
        load_audio(io.BytesIO(b"hello, this is not a video\n" * 40))
    assert str(e.value).startswith("<file object>: not a media file")
    with open(data("not_media.mp4"), "rb") as f:
        with pytest.raises(MediaError) as e:
            load_audio(f)
        assert str(e.value).startswith(data("not_media.mp4") + ": not a media file")
        assert f.tell() == 0 and not f.closed
    closed = open(data("tone.mp3"), "rb")
    closed.close()
    with pytest.raises(MediaError, match="closed"):
        load_audio(closed)


def test_parent_is_a_file():
    path = data("empty.mp4") + "/inner.mp4"
    with pytest.raises(MediaError) as e:
        load_audio(path)
    _check_media_error(e.value, path, "no such file")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.mp3"
    shutil.copy(data("tone.mp3"), path)
    path.chmod(0)
    with pytest.raises(MediaError, match="permission denied"):
        load_audio(path)


# ------------------------------------------------------------------------------------------
# the shipped files


def test_fixture_and_sample_sizes():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < 2 * 1024 * 1024
    assert (ROOT / "samples" / "jfk.mp4").stat().st_size < 1024 * 1024


def test_demo_sample_video():
    info = probe(ROOT / "samples" / "jfk.mp4")
    assert info.has_video
    assert info.duration == pytest.approx(11.0, abs=0.1)
    (s,) = info.audio_streams
    assert (s.codec, s.language) == ("aac", "eng")
    audio = load_audio(ROOT / "samples" / "jfk.mp4")
    reference = load_audio(DATA / "speech" / "jfk.flac")
    n = min(len(audio), len(reference))
    # the AAC copy tracks the lossless original closely (no shift, same level)
    assert np.corrcoef(audio[:n], reference[:n])[0, 1] > 0.95


def test_speech_references_cover_the_clips():
    refs = json.loads((DATA / "speech" / "references.json").read_text())
    clips = sorted(p.name for p in (DATA / "speech").glob("*.flac"))
    assert sorted(refs) == clips
    assert refs["jfk.flac"].startswith("And so my fellow Americans, ask not")


# ------------------------------------------------------------------------------------------
# against the ffmpeg command line (what openai-whisper reads)

FFMPEG = shutil.which("ffmpeg")


def _ffmpeg_audio(path: str, stream: int = 0) -> np.ndarray:
    pcm = subprocess.run(
        [FFMPEG, "-nostdin", "-loglevel", "error", "-i", path, "-map", f"0:a:{stream}",
         "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")
@pytest.mark.parametrize("name,stream", [(n, 0) for n in COUNTED] + [("tests/data/two_audio.mkv", 1)])
def test_matches_ffmpeg_numerically(name, stream):
    path = str(ROOT / name)
    ours = load_audio(path, stream_index=stream)
    theirs = _ffmpeg_audio(path, stream)
    assert abs(len(ours) - len(theirs)) <= SAMPLE_SLACK
    n = min(len(ours), len(theirs))
    diff = np.abs(ours[:n] - theirs[:n])
    # int16 quantisation is 1/65536 either way; the resamplers agree to well under 1e-3
    assert diff.max() < 1e-3, diff.max()
    assert np.corrcoef(ours[:n], theirs[:n])[0, 1] > 0.99999
