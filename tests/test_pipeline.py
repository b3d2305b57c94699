"""The long-form loop's own options: presets, and language detection per region.

Presets are checked without a model. The per-region tests run the real base model on
tests/data/speech_multilingual/mixed/en_fr.flac (espeak-ng English, then French; how it was
made is in that folder's texts.json and make_clips.sh).
"""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import pytest

import whispermedia as wm
from whispermedia.hookspecs import hookimpl
from whispermedia.models import list_models
from whispermedia.options import DEFAULT_PRESET, PRESETS, TranscribeOptions
from whispermedia.plugins import PluginHost, use_host

HERE = Path(__file__).parent
MULTI = HERE / "data" / "speech_multilingual"
MIXED = MULTI / "mixed" / "en_fr.flac"
SPEECH = HERE / "data" / "speech"


def _installed(name: str) -> bool:
    return any(e.name == name and e.installed for e in list_models())


@pytest.fixture(scope="module")
def base():
    if not _installed("base"):
        pytest.skip("model base not installed")
    return wm.load_model("base")


# --- presets ---------------------------------------------------------------------------------


def test_dataclass_defaults_are_the_default_preset():
    fields = {f.name for f in dataclasses.fields(TranscribeOptions)}
    default = TranscribeOptions()
    assert default.preset == DEFAULT_PRESET
    for name, values in PRESETS.items():
        assert set(values) <= fields, name
    for key, value in PRESETS[DEFAULT_PRESET].items():
        assert getattr(default, key) == value, key
    assert TranscribeOptions.from_kwargs() == default == TranscribeOptions.from_kwargs(preset="default")


def test_every_preset_names_the_same_strategy_fields():
    keys = {name: set(values) for name, values in PRESETS.items()}
    assert len(set(map(frozenset, keys.values()))) == 1, keys


def test_openai_preset_is_the_whisper_command_defaults():
    o = TranscribeOptions.from_kwargs(preset="openai")
    assert (o.beam_size, o.best_of, o.temperature) == (5, 5, (0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
    assert o.condition_on_previous_text is True
    assert (o.compression_ratio_threshold, o.logprob_threshold, o.no_speech_threshold) == (2.4, -1.0, 0.6)
    assert o.patience is None and o.length_penalty is None and o.preset == "openai"
    t = TranscribeOptions.from_kwargs(preset="openai-transcribe")
    assert (t.beam_size, t.best_of, t.condition_on_previous_text) == (None, 5, True)
    g = TranscribeOptions.from_kwargs(preset="greedy")
    assert (g.temperature, g.beam_size, g.condition_on_previous_text) == ((0.0,), None, False)


def test_keywords_win_over_the_preset():
    o = TranscribeOptions.from_kwargs(preset="openai", beam_size=None, temperature=0, condition_on_previous_text=False)
    assert (o.beam_size, o.temperature, o.condition_on_previous_text, o.best_of) == (None, (0.0,), False, 5)
    assert TranscribeOptions.from_kwargs(preset="openai", patience=2.0).patience == 2.0  # beam_size from the preset
    with pytest.raises(ValueError, match="unknown preset 'fast'.*openai"):
        TranscribeOptions.from_kwargs(preset="fast")


def test_language_per_region_refuses_a_named_language():
    assert TranscribeOptions.from_kwargs(language_per_region=True, language="auto").language_per_region
    with pytest.raises(ValueError, match="language_per_region"):
        TranscribeOptions.from_kwargs(language_per_region=True, language="fr")


@pytest.mark.slow
def test_preset_reaches_the_transcript(base):
    t = wm.transcribe(SPEECH / "arctic_a0009.flac", model=base, language="en", preset="openai", best_of=2)
    assert t.info.options.preset == "openai"
    assert (t.info.options.beam_size, t.info.options.best_of) == (5, 2)
    assert t.to_dict()["info"]["options"] == {"preset": "openai", "language": "en", "best_of": 2,
                                              "condition_on_previous_text": True,
                                              "vad": "off", "suppress_hallucinations": False}  # openai's own way
    assert "gregson" in t.text.lower()


# --- language per region ---------------------------------------------------------------------


@pytest.mark.slow
def test_language_per_region_labels_both_parts(base):
    made = json.loads((MULTI / "texts.json").read_text(encoding="utf-8"))["mixed/en_fr.flac"]
    assert [p["language"] for p in made["parts"]] == ["en", "fr"]
    t = wm.transcribe(MIXED, model=base, language_per_region=True, temperature=0.0)
    spoken = [s for s in t.segments if s.text.strip()]
    assert [s.language for s in spoken] == sorted(s.language for s in spoken)  # en first, then fr
    assert {s.language for s in spoken} == {"en", "fr"}
    english = " ".join(s.text for s in spoken if s.language == "en").lower()
    french = " ".join(s.text for s in spoken if s.language == "fr").lower()
    assert "good morning" in english and "mountains" in english
    assert "croissant" in french or "café" in french, french
    assert "merci" in french, french
    switch = min(s.start for s in spoken if s.language == "fr")
    assert 6.5 <= switch <= 8.5  # the French part starts at 8.3 s, after 0.5 s of silence
    assert t.info.language == "en" and t.info.language_probability > 0.5


@pytest.mark.slow
def test_language_per_region_turn_near_a_window_start(base):
    """42 s of English (real clips), then 11 s of German: the second window starts at 31 s and
    the turn lies in its audio, near the start of a later window. Every segment is labelled
    with the language spoken in it, and the last English sentence is not decoded as German."""
    import numpy as np

    def clip(path):
        return wm.load_audio(path)

    gap = np.zeros(8000, dtype=np.float32)
    jfk = clip(SPEECH / "jfk.flac")
    english = np.concatenate([jfk, gap, clip(SPEECH / "arctic_a0007.flac"), gap, jfk, gap,
                              clip(SPEECH / "arctic_a0009.flac"), gap, jfk])
    german = clip(MULTI / "de.flac")
    turn = len(english) / 16000
    audio = np.concatenate([english, gap, german, gap, german])
    t = wm.transcribe(audio, model=base, language_per_region=True, preset="greedy")
    spoken = [s for s in t.segments if s.text.strip()]
    assert {s.language for s in spoken} == {"en", "de"}
    for s in spoken:
        if s.end <= turn + 0.3:
            assert s.language == "en", (s.start, s.end, s.text)
        if s.start >= turn - 0.3:
            assert s.language == "de", (s.start, s.end, s.text)
    assert "berlin" in " ".join(s.text for s in spoken if s.language == "de").lower()
    last_english = [s for s in spoken if s.language == "en"][-1]
    assert "your country" in last_english.text.lower()


@pytest.mark.slow
def test_one_language_detected_once_loses_the_second_part(base):
    """Why the option exists: decoding the whole window in the first window's language,
    Whisper stops where the French begins (openai-whisper does the same on this file)."""
    t = wm.transcribe(MIXED, model=base, temperature=0.0)
    assert t.language == "en"
    assert all(s.language is None for s in t.segments)
    assert "merci" not in t.text.lower()


@pytest.mark.slow
def test_language_per_region_changes_nothing_on_one_language(base):
    plain = wm.transcribe(SPEECH / "jfk.flac", model=base, temperature=0.0)
    regions = wm.transcribe(SPEECH / "jfk.flac", model=base, temperature=0.0, language_per_region=True)
    assert [s.tokens for s in regions.segments] == [s.tokens for s in plain.segments]
    assert {s.language for s in regions.segments} == {"en"}


@pytest.mark.slow
def test_language_per_region_asks_a_detect_language_plugin(base):
    """A plugin's detect_language answers for every region (with the region's mel), not only
    the first window."""
    calls = []

    def detect_language(model, mel, tokenizer):
        calls.append(tuple(mel.shape))
        return wm.LanguageGuess("de", 0.99, {"de": 0.99})

    plugin = types.ModuleType("always_german")
    plugin.detect_language = hookimpl(detect_language)
    host = PluginHost()
    host.load(entry_points=False)
    host.register(plugin)
    with use_host(host):
        t = wm.transcribe(MIXED, model=base, language_per_region=True, temperature=0.0)
    assert t.info.language == "de" and {s.language for s in t.segments} <= {"de"}
    assert calls and all(shape == (base.dims.n_mels, 3000) for shape in calls)
    assert len(calls) >= 2  # the first window's head, and the stretch after its first segment


# --- clip_timestamps -------------------------------------------------------------------------


def test_clips_past_the_end_stop_there():
    from whispermedia.pipeline import _seek_clips

    def clips(text: str):  # the string form is parsed once, by the option's own parser
        return _seek_clips(TranscribeOptions(clip_timestamps=text).clip_timestamps, 400)

    assert clips("0") == [(0, 400)]
    assert clips("0,2,2") == [(0, 200), (200, 400)]
    assert _seek_clips((0.5, 2.5, 3.0, 11.0), 400) == [(50, 250), (300, 400)]
    assert clips("5,6") == [(400, 400)]  # nothing to transcribe, and no endless loop


@pytest.mark.slow
def test_clip_end_after_the_audio_ends_terminates():
    """openai-whisper decodes empty windows forever when a clip ends after the audio; we stop."""
    if not _installed("tiny.en"):
        pytest.skip("model tiny.en not installed")
    t = wm.transcribe(SPEECH / "arctic_a0007.flac", model=wm.load_model("tiny.en"), temperature=0.0,
                      clip_timestamps="0,2,2,11")
    assert "superlative" in t.text.lower() and t.segments[-1].end <= 4.5
