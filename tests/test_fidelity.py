"""Fidelity without the peer installed: our tokens equal golden tokens that openai-whisper produced
once, with the same weights, on real speech (``bench/fidelity.py --write-golden`` wrote them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import whispermedia as wm
from whispermedia.models import list_models

HERE = Path(__file__).parent
SPEECH = HERE / "data" / "speech"


def _installed(name: str) -> bool:
    return any(e.name == name and e.installed for e in list_models())


@pytest.fixture(scope="module", params=["base", "tiny.en"])
def golden_run(request):
    name = request.param
    if not _installed(name):
        pytest.skip(f"model {name} not installed")
    golden = json.loads((HERE / "golden" / f"tokens_{name}.json").read_text(encoding="utf-8"))
    model = wm.load_model(name)
    runs = {clip: wm.transcribe(SPEECH / clip, model=model, **golden["options"]) for clip in golden["clips"]}
    return golden, runs


def test_tokens_equal_openai_whisper(golden_run):
    golden, runs = golden_run
    for clip, expected in golden["clips"].items():
        got = runs[clip]
        assert [t for s in got.segments for t in s.tokens] == expected["tokens"], clip
        assert got.text == expected["text"], clip
        assert got.language == expected["language"], clip
        assert [[s.start, s.end] for s in got.segments] == expected["segments"], clip


def test_real_speech_text(golden_run):
    """Exact words on the JFK excerpt (US public domain), and the transcript's invariants."""
    golden, runs = golden_run
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
