"""Inputs and options made to hurt: each a clear one-line error with its documented exit code,
decided before anything large is allocated, and nothing left behind.

- a WAV header with an absurd sample rate, audio that claims more than its bytes hold;
- options whose range would allocate without bound (a billion temperatures, a hundred
  million beams) or divide the logits into NaN;
- inputs with no usable audio (no samples, one sample, NaN, digital silence) and audio too
  short or too quiet to detect a language from;
- non-finite numbers never reach JSON output.

The media files are written by the tests (WAV headers by hand, so they can lie).
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import whispermedia
from whispermedia import media
from whispermedia.errors import MediaError
from whispermedia.features import MelWindows
from whispermedia.options import MAX_CANDIDATES, OptionError, TranscribeOptions, temperature_schedule
from whispermedia.output import finite_json, write
from whispermedia.testing import plugin_host, sample_transcript
from whispermedia.usable_audio import check_usable, detection_start

SPEECH = Path(__file__).resolve().parent / "data" / "speech" / "jfk.flac"


def wav(path: Path, samples: np.ndarray, rate: int = 16000, *, float32: bool = False) -> Path:
    """A mono WAV whose header says ``rate``, whatever the samples are."""
    data = samples.astype("<f4" if float32 else "<i2").tobytes()
    bits, fmt = (32, 3) if float32 else (16, 1)
    header = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, fmt, 1, rate, rate * bits // 8, bits // 8, bits)
              + b"data" + struct.pack("<I", len(data)))
    path.write_bytes(header + data)
    return path


def tone(seconds: float, amplitude: float = 0.25, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * 440 * t) * amplitude * 32767


def wm_process(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WM_")}
    env["WM_LOAD_PLUGINS"] = ""
    return subprocess.run([sys.executable, "-m", "whispermedia", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


# --- sample rates and lengths ------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1, 999])
def test_absurd_sample_rate_is_refused_before_decoding(tmp_path, rate):
    path = wav(tmp_path / "slow.wav", tone(1.0), rate=rate)
    with pytest.raises(MediaError) as info:
        media.iter_audio_chunks(path)  # at open, before a single sample is resampled
    assert str(info.value) == (f"{path}: implausible sample rate {rate} Hz (a corrupt header? audio below "
                               "1000 Hz is refused)")


def test_the_lowest_accepted_rate_decodes(tmp_path):
    path = wav(tmp_path / "low.wav", tone(1.0, rate=1000), rate=1000)
    assert media.load_audio(path).shape == (16000,)


def test_audio_beyond_what_the_bytes_hold_is_refused(tmp_path, monkeypatch):
    """The bound is checked as the audio is made; here it is lowered so an honest file trips it."""
    path = wav(tmp_path / "x.wav", tone(10.0))
    monkeypatch.setattr(media, "MAX_SAMPLES_PER_BYTE", 0.1)
    with pytest.raises(MediaError, match=r"decodes to more audio than its 320044 bytes can hold"):
        media.load_audio(path)


# --- option ranges -----------------------------------------------------------------------------


def test_temperature_increment_of_1e9_is_one_usage_line():
    with pytest.raises(OptionError, match=r"1e-09 makes 1000001000 temperatures \(at most 64\)"):
        temperature_schedule((0.0,), 1e-9)
    proc = wm_process("run", "--temperature-increment-on-fallback", "1e-9", str(SPEECH))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "wm: --temperature-increment-on-fallback: 1e-09 makes 1000001000 temperatures (at most 64)"]
    assert proc.stdout == ""


@pytest.mark.parametrize("kwargs,message", [
    (dict(beam_size=100_000_000), "beam_size: must be <= 32 (got 100000000)"),
    (dict(best_of=MAX_CANDIDATES + 1), "best_of: must be <= 32 (got 33)"),
    (dict(patience=1e9, beam_size=5), "patience: must be <= 32 (got 1e+09)"),
    (dict(temperature=1e300), "temperature: must be <= 10 (got 1e+300)"),
    (dict(temperature=(0.0, 1e-300)), "temperature: 1e-300 is too small to sample with"),
    (dict(temperature=float("nan")), "temperature: nan is not a finite number"),
    (dict(sample_len=10_000), "sample_len: must be <= 448"),
    (dict(clip_timestamps=(-1.0,)), "clip_timestamps: must be >= 0"),
])
def test_every_unbounded_option_is_refused_at_validation(kwargs, message):
    with pytest.raises(OptionError) as info:
        TranscribeOptions.from_kwargs(**kwargs)
    assert str(info.value).startswith(message)


def test_a_huge_beam_is_one_usage_line_before_the_model_loads():
    proc = wm_process("run", "--beam-size", "100000000", "--model", "no-such-model", str(SPEECH))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["wm: --beam-size: must be <= 32 (got 100000000)"]


def test_token_ids_outside_the_vocabulary_are_an_option_error():
    with pytest.raises(OptionError, match=r"suppress_tokens: token id 99999999 is not in the model's vocabulary "
                                          r"\(0 to 51863\)"):
        whispermedia.transcribe(tone(2.0).astype(np.float32) / 32767, model="tiny.en", suppress_tokens=[99999999])


def test_a_prefix_longer_than_the_context_is_an_option_error():
    with pytest.raises(OptionError, match=r"^prefix: 600 tokens do not fit a window.s text context \(at most 222\)"):
        whispermedia.transcribe(tone(2.0).astype(np.float32) / 32767, model="tiny.en", prefix="hello " * 600)


# --- no usable audio ---------------------------------------------------------------------------


def _usable_error(audio) -> str:
    mel = MelWindows(audio)
    try:
        with pytest.raises(MediaError) as info:
            check_usable(mel)
    finally:
        mel.close()
    return str(info.value)


def test_one_sample_is_no_usable_audio(tmp_path):
    path = wav(tmp_path / "one.wav", np.array([1000.0]))
    assert _usable_error(path) == f"{path}: no usable audio: 1 sample (0.0001 s) is shorter than one 10 ms frame"


def test_an_empty_audio_stream_is_no_usable_audio(tmp_path):
    path = wav(tmp_path / "empty.wav", np.zeros(0))
    with pytest.raises(MediaError, match=r"no usable audio: the audio stream holds no decodable samples"):
        MelWindows(path)


def test_an_all_nan_file_is_no_usable_audio(tmp_path):
    path = wav(tmp_path / "nan.wav", np.full(32000, np.nan), float32=True)
    with pytest.raises(MediaError, match=r"no usable audio: all 32000 samples are NaN or infinite"):
        media.load_audio(path)


def test_nan_samples_are_no_usable_audio():
    samples = np.full(32000, np.nan, dtype=np.float32)
    assert _usable_error(samples) == "<samples>: no usable audio: all 32000 samples are NaN or infinite"


@pytest.mark.parametrize("noise", [0.0, 1 / 32768])  # digital silence, and 16-bit dither
def test_silence_throughout_is_no_usable_audio(noise):
    samples = (np.random.default_rng(0).integers(-1, 2, 48000) * noise).astype(np.float32)
    assert _usable_error(samples) == ("<samples>: no usable audio: silent throughout (3.00 s, nothing louder "
                                      "than about -90 dBFS)")


def test_quiet_but_real_sound_is_usable():
    mel = MelWindows((tone(2.0) / 32767 * 1e-3).astype(np.float32), padding=0)  # -72 dBFS
    check_usable(mel)
    mel.close()


def test_language_is_never_detected_from_under_a_second():
    mel = MelWindows((tone(0.5) / 32767).astype(np.float32))
    with pytest.raises(MediaError, match=r"^<samples>: 0.50 s of audio is too short to detect its language "
                                         r"\(1 s at least\): name the language \(--language\)"):
        detection_start(mel)


def test_detection_skips_leading_silence():
    """A file that opens with 40 s of silence is judged on its sound, not on the silence."""
    samples = np.concatenate([np.zeros(16000 * 40), tone(3.0) / 32767]).astype(np.float32)
    mel = MelWindows(samples)
    start = detection_start(mel)
    assert 3999 <= start <= 4001  # the sound's first frame (40 s = frame 4000)
    speech_first = MelWindows(np.concatenate([tone(3.0) / 32767, np.zeros(16000 * 40)]).astype(np.float32))
    assert detection_start(speech_first) == 0  # the usual case: openai's first window


def test_a_blip_in_silence_is_too_little_to_detect_from():
    samples = np.concatenate([np.zeros(16000 * 5), tone(0.3) / 32767, np.zeros(16000 * 5)]).astype(np.float32)
    with pytest.raises(MediaError, match=r"only 0\.\d+ s of sound: too little to detect its language"):
        detection_start(MelWindows(samples))


@pytest.mark.slow
def test_short_audio_transcribes_when_the_language_is_named():
    short = (tone(0.5) / 32767).astype(np.float32)
    transcript = whispermedia.transcribe(short, model="base", language="en", preset="greedy")
    assert transcript.info.language == "en" and transcript.info.language_probability is None


@pytest.mark.slow
def test_wm_run_reports_each_unusable_input_and_writes_nothing(tmp_path):
    """Through the real entry point, one model load for all of them: each input is one line,
    the exit code is the first failure's (3), the good input is transcribed, nothing else written."""
    inputs = {
        "rate1.wav": (wav(tmp_path / "rate1.wav", tone(1.0), rate=1),
                      "implausible sample rate 1 Hz (a corrupt header? audio below 1000 Hz is refused)"),
        "one.wav": (wav(tmp_path / "one.wav", np.array([1000.0])),
                    "no usable audio: 1 sample (0.0001 s) is shorter than one 10 ms frame"),
        "empty.wav": (wav(tmp_path / "empty.wav", np.zeros(0)),
                      "no usable audio: the audio stream holds no decodable samples (empty, truncated or corrupt?)"),
        "nan.wav": (wav(tmp_path / "nan.wav", np.full(16000, np.nan), float32=True),
                    "no usable audio: all 16000 samples are NaN or infinite"),
        "silent.wav": (wav(tmp_path / "silent.wav", np.zeros(32000)),
                       "no usable audio: silent throughout (2.00 s, nothing louder than about -90 dBFS)"),
        "half.wav": (wav(tmp_path / "half.wav", tone(0.5)),
                     "0.50 s of audio is too short to detect its language (1 s at least): name the language "
                     "(--language) to transcribe it"),
    }
    out = tmp_path / "out"
    paths = [str(p) for p, _ in inputs.values()]
    proc = wm_process("run", "--model", "base", "--preset", "greedy", "--progress", "none", "-o", str(out), *paths)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines() == [f"wm: {p}: {message}" for p, message in inputs.values()]
    assert proc.stdout == ""
    assert not out.exists()  # -o is made only when something is written into it


# --- JSON never holds NaN ----------------------------------------------------------------------


def _strict_json(text: str):
    def refuse(token):
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_finite_json_turns_non_finite_numbers_into_null():
    value = {"a": float("nan"), "b": [1.5, float("inf"), (float("-inf"), "x")], "c": 2}
    assert finite_json(value) == {"a": None, "b": [1.5, None, [None, "x"]], "c": 2}


def test_json_output_writes_null_for_nan(tmp_path):
    t = sample_transcript()
    nan_segment = dataclasses.replace(t.segments[0], avg_logprob=float("nan"), no_speech_prob=float("inf"))
    t = dataclasses.replace(t, segments=(nan_segment, *t.segments[1:]),
                            info=dataclasses.replace(t.info, language_probability=float("nan")))
    with plugin_host():
        path = write(t, "json", tmp_path / "out.json")
    data = _strict_json(path.read_text())
    assert data["segments"][0]["avg_logprob"] is None and data["segments"][0]["no_speech_prob"] is None
    assert data["info"]["language_probability"] is None
    assert data["segments"][1]["avg_logprob"] == t.segments[1].avg_logprob


def test_json_progress_events_write_null_for_nan(capsys):
    from whispermedia.cli_render import Reporter

    Reporter("json").language("x.wav", "en", float("nan"))
    event = _strict_json(capsys.readouterr().err)
    assert event == {"event": "language", "file": "x.wav", "language": "en", "probability": None}
