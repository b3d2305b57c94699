"""Fidelity without the peer installed: our results equal golden results that openai-whisper
produced once, with the same weights and the same options (``bench/fidelity.py --write-golden``;
tests/golden/make_golden.sh has every command).

Each golden file holds cases, one per decoding option family (greedy, beam search, fallback
thresholds, prompts, prefix, suppression, without_timestamps, clip_timestamps, word timestamps,
translation, language detection); each case names its model, its options and, per clip,
openai's language, text, tokens, segment bounds, temperatures and (with word timestamps) words.
English-only cases use tiny.en (fast); translation and language detection use base.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import whispermedia as wm
from whispermedia.models import list_models

HERE = Path(__file__).parent
ROOT = HERE.parent
SPEECH = HERE / "data" / "speech"
GOLDEN_FILES = sorted((HERE / "golden").glob("tokens_*.json"))
WORD_TOLERANCE = 0.02  # seconds


def _installed(name: str) -> bool:
    return any(e.name == name and e.installed for e in list_models())


def _cases():
    for path in GOLDEN_FILES:
        for name, case in json.loads(path.read_text(encoding="utf-8"))["cases"].items():
            yield pytest.param(case, id=f"{case['model']}:{name}")


_models = {}


def _model(name: str):
    if not _installed(name):
        pytest.skip(f"model {name} not installed")
    if name not in _models:
        _models[name] = wm.load_model(name)
    return _models[name]


_runs = {}


def _run(case: dict, clip: str) -> "wm.Transcript":
    """Our transcript of one clip with a case's options (kept: another test reads it again)."""
    key = (case["model"], json.dumps(case["options"], sort_keys=True), case.get("seed"), clip)
    if key not in _runs:
        if "seed" in case:
            torch.manual_seed(case["seed"])
        # the options as openai-whisper's transcribe() reads them: on top of its defaults
        _runs[key] = wm.transcribe(ROOT / clip, model=_model(case["model"]), preset="openai-transcribe",
                                   **case["options"])
    return _runs[key]


def _case(model: str, name: str) -> dict:
    return json.loads((HERE / "golden" / f"tokens_{model}.json").read_text(encoding="utf-8"))["cases"][name]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(_cases()))
def test_equals_openai_whisper(case):
    assert case["clips"]
    for clip, expected in case["clips"].items():
        got = _run(case, clip)
        assert got.language == expected["language"], clip
        assert [t for s in got.segments for t in s.tokens] == expected["tokens"], clip
        assert got.text == expected["text"], clip
        assert [[s.start, s.end] for s in got.segments] == expected["segments"], clip
        assert [s.temperature for s in got.segments] == expected["temperatures"], clip
        if "words" in expected:
            words = [w for s in got.segments for w in (s.words or ())]
            assert [w.word for w in words] == [w[0] for w in expected["words"]], clip
            for w, (_, start, end) in zip(words, expected["words"]):
                assert abs(w.start - start) <= WORD_TOLERANCE and abs(w.end - end) <= WORD_TOLERANCE, (clip, w)


def test_golden_files_cover_every_option_family():
    """One case at least per decoding option family of openai-whisper's transcribe()."""
    cases = [case.values[0] for case in _cases()]
    options = [c["options"] for c in cases]
    used = {key for o in options for key in o}
    for key in ("beam_size", "patience", "length_penalty", "initial_prompt", "carry_initial_prompt", "prefix",
                "suppress_tokens", "suppress_blank", "without_timestamps", "clip_timestamps", "word_timestamps",
                "compression_ratio_threshold", "logprob_threshold", "max_initial_timestamp",
                "hallucination_silence_threshold"):
        assert key in used, key
    assert any(o.get("task") == "translate" for o in options)
    assert any(c["model"] == "base" and "language" not in c["options"] for c in cases)  # detection
    assert any(isinstance(o.get("temperature"), list) and len(o["temperature"]) > 1 for o in options)  # fallback


@pytest.mark.slow
def test_real_speech_text():
    """Exact words on the JFK excerpt (US public domain), and the transcript's invariants
    (the greedy runs of the golden test, not decoded again)."""
    case = _case("base", "greedy_detect_language")
    runs = {Path(clip).name: _run(case, clip) for clip in case["clips"]}
    assert {"jfk.flac", "arctic_a0007.flac", "arctic_a0009.flac"} <= set(runs)
    jfk = runs["jfk.flac"]
    assert "ask not what your country can do for you" in jfk.text.lower()
    assert "ask what you can do for your country" in jfk.text.lower()
    for t in runs.values():
        assert t.text == "".join(s.text for s in t.segments)
        starts = [s.start for s in t.segments]
        assert starts == sorted(starts)
        # (a last timestamp may pass the end of a short clip: the model's, and openai's, too)
        assert all(s.start <= s.end for s in t.segments)
        assert all(s.tokens and s.avg_logprob <= 0 and 0 <= s.no_speech_prob <= 1 for s in t.segments)


def test_multilingual_clips_are_what_texts_json_says():
    """Every multilingual clip is committed, small, and its language is the one openai-whisper
    detected (the golden greedy case), so detection tests test something."""
    made = json.loads((HERE / "data" / "speech_multilingual" / "texts.json").read_text(encoding="utf-8"))
    golden = _case("base", "greedy_detect_language")["clips"]
    for name, clip in made.items():
        path = HERE / "data" / "speech_multilingual" / name
        assert path.exists() and path.stat().st_size < 200_000, name
        if "parts" not in clip:
            assert path.stat().st_size < 100_000, name
            assert golden[f"tests/data/speech_multilingual/{name}"]["language"] == clip["language"], name
