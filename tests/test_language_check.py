"""The warning when a file decoded in one language has windows in another (issue 15, point 5).

The fast tests drive ``LanguageCheck`` with a scripted detector; the slow ones run the real
base model through ``wm run`` on files made here from the committed speech clips: 40 s of
English then Spanish (espeak-ng, tests/data/speech_multilingual), and English alone.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from whispermedia import language_check
from whispermedia.language_check import LanguageCheck
from whispermedia.types import LanguageGuess

DATA = Path(__file__).parent / "data"


def _scripted(monkeypatch, answers):
    calls = []

    def detect(model, window, audio_features=None):
        calls.append(audio_features)
        return answers.pop(0)

    monkeypatch.setattr(language_check, "detect", detect)
    return calls


def test_checks_windows_spread_over_the_file_on_their_encoder_output(monkeypatch):
    calls = _scripted(monkeypatch, [LanguageGuess("en", 0.95, {"en": 0.95}),
                                    LanguageGuess("es", 0.6, {"es": 0.6, "en": 0.2}),
                                    LanguageGuess("en", 0.9, {"en": 0.9})])
    check = LanguageCheck(model=None, language="en", content_frames=12000)  # 120 s: points at 30, 60, 90 s
    features = object()
    for seek in (0, 2900, 5800, 8700, 11600):
        check.see(seek, mel=None, audio_features=features)
    assert [t for t, _ in check.checked] == [58.0, 87.0, 116.0]  # the first window at or after each point
    assert calls == [features] * 3  # the loop's encoder output, no pass of its own
    message = check.warning("talk.mp4")
    assert message.startswith("talk.mp4: decoded as en (the first window's language), but the window starting "
                              "es (p=0.60) at 1:27 is in another language")
    assert "--language-per-region" in message and "language_per_region=True" in message


def test_no_warning_when_the_other_language_is_not_clear(monkeypatch):
    _scripted(monkeypatch, [LanguageGuess("cy", 0.35, {"cy": 0.35, "en": 0.3}),
                            LanguageGuess("en", 0.9, {"en": 0.9})])
    check = LanguageCheck(model=None, language="en", content_frames=9000)
    for seek in (0, 3000, 4600, 6800):  # points at 45 and 67.5 s (22.5 s is in the first window)
        check.see(seek, mel=None, audio_features=None)
    assert len(check.checked) == 2 and check.warning("x") is None


def test_a_file_of_one_window_has_nothing_else_to_check(monkeypatch):
    _scripted(monkeypatch, [])
    check = LanguageCheck(model=None, language="en", content_frames=2500)
    check.see(0, mel=None, audio_features=None)
    assert check.checked == [] and check.warning("x") is None


# -- end to end -------------------------------------------------------------------------------

def _write_wav(path: Path, clips) -> Path:
    from whispermedia.media import load_audio

    audio = np.concatenate([load_audio(str(DATA / c)) for c in clips])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


ENGLISH = ["speech/jfk.flac", "speech/arctic_a0007.flac", "speech/jfk.flac", "speech/arctic_a0009.flac",
           "speech/jfk.flac"]


@pytest.fixture(scope="module")
def base_model():
    import whispermedia
    from whispermedia.models import list_models

    if not any(e.name == "base" and e.installed for e in list_models()):
        pytest.skip("model base not installed")
    return whispermedia.load_model("base", device="cpu")


def _run(tmp_path, path, base_model, monkeypatch):
    import whispermedia
    from test_cli import err_lines, wm

    monkeypatch.setitem(vars(whispermedia), "load_model", lambda *a, **k: base_model)
    result = wm("run", "--preset", "greedy", "-p", "txt", "--progress", "json", str(path))
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in err_lines(result)]


@pytest.mark.slow
def test_english_then_spanish_warns(tmp_path, base_model, monkeypatch):
    path = _write_wav(tmp_path / "en_es.wav", ENGLISH + ["speech_multilingual/es.flac"] * 6)  # 40 s + 39 s
    events = _run(tmp_path, path, base_model, monkeypatch)
    assert [e["language"] for e in events if e["event"] == "language"] == ["en"]
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert len(warnings) == 1, events
    assert warnings[0].startswith(f"{path}: decoded as en") and "es (p=" in warnings[0]
    assert "--language-per-region" in warnings[0]
    assert " at 0:5" in warnings[0]  # the window that starts in the Spanish half (at 56 s)


@pytest.mark.slow
def test_english_alone_does_not_warn(tmp_path, base_model, monkeypatch):
    path = _write_wav(tmp_path / "en.wav", ENGLISH * 2)  # 80 s
    events = _run(tmp_path, path, base_model, monkeypatch)
    assert not [e for e in events if e["event"] == "warning"], events


@pytest.mark.slow
def test_the_first_progress_report_carries_the_detected_language(base_model):
    import whispermedia

    reports = []
    transcript = whispermedia.transcribe(str(DATA / "speech" / "jfk.flac"), model=base_model, preset="greedy",
                                         progress=reports.append)
    first = reports[0]
    # before any window is decoded: where decoding starts, at the first speech region (VAD on)
    assert first.segments == 0 and 0.0 <= first.seconds_done <= transcript.info.speech[0].start
    assert first.language == "en" == transcript.info.language
    assert first.language_probability == transcript.info.language_probability > 0.5
    assert reports[-1].seconds_done == pytest.approx(11.0) and len(reports) == 2
