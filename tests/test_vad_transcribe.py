"""Speech regions drive the long-form loop: end to end with the real tiny.en model.

- times stay on the source's timeline: the same speech later in a file gets the same word
  times shifted by exactly where it sits (to the VAD's 32 ms step), and every word lies inside
  a detected speech region widened by the padding;
- non-speech is skipped: a clip of music and noise has no region, so no window is decoded and
  no word written;
- every segment the defence drops is in ``info.suppressed`` and in the JSON output, with its reason.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import whispermedia as wm
from whispermedia.models import list_models

HERE = Path(__file__).parent
SPEECH = HERE / "data" / "speech"
sys.path.insert(0, str(HERE.parent / "bench"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny():
    if not any(e.name == "tiny.en" and e.installed for e in list_models()):
        pytest.skip("model tiny.en not installed")
    return wm.load_model("tiny.en")


def _audio(name: str) -> np.ndarray:
    from whispermedia.media import load_audio

    return load_audio(str(SPEECH / name))


def _bare(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalpha())


def _words(t):
    return [w for s in t.segments for w in (s.words or ())]


def test_times_stay_on_the_source_timeline(tiny):
    jfk = _audio("jfk.flac")
    alone = wm.transcribe(jfk, model=tiny, word_timestamps=True)
    gap = 17.0
    later = np.concatenate([np.zeros(int(gap * 16000), np.float32), jfk, np.zeros(16000 * 12, np.float32)])
    shifted = wm.transcribe(later, model=tiny, word_timestamps=True)
    a, b = _words(alone), _words(shifted)
    # the windows start 0.15 s apart relative to the speech (the padding is clipped at the file's
    # start), so punctuation may differ; the words and their times may not
    assert [_bare(w.word) for w in a] == [_bare(w.word) for w in b] == (
        "and so my fellow americans ask not what your country can do for you ask what you can do for your "
        "country").split()
    # the regions are the same, shifted (to the VAD's 32 ms step), and so are the word times: all
    # but a word after a pause (whose start DTW may put anywhere in the pause) within 30 ms, and
    # every word overlapping itself
    assert len(shifted.info.speech) == len(alone.info.speech)
    assert all(abs(rb.start - gap - ra.start) < 0.04 and abs(rb.end - gap - ra.end) < 0.04
               for ra, rb in zip(alone.info.speech[1:-1], shifted.info.speech[1:-1]))
    close = [abs((wb.start - gap) - wa.start) < 0.03 and abs((wb.end - gap) - wa.end) < 0.12 for wa, wb in zip(a, b)]
    assert sum(close) >= len(a) - 2, [(w.word, w.start, v.start - gap) for w, v in zip(a, b)]
    assert all(wb.start - gap < wa.end and wa.start < wb.end - gap for wa, wb in zip(a, b))
    assert len(shifted.info.speech) >= 1 and shifted.info.speech[0].start >= gap - 0.3
    assert shifted.info.speech[-1].end <= gap + 11.3  # nothing detected in the silence after
    assert shifted.segments[0].seek >= int((gap - 0.3) * 100)  # the 17 s before were never decoded


def test_words_lie_inside_the_regions_with_pauses_and_a_noise_bed(tiny):
    import nonspeech_corpus as nc

    a7, a9 = _audio("arctic_a0007.flac"), _audio("arctic_a0009.flac")
    x = np.concatenate([np.zeros(16000 * 4), a7, np.zeros(16000 * 9), a9, np.zeros(16000 * 5)])
    x = (x + nc.noise(1.0, -40)(np.random.default_rng(1), len(x))).astype(np.float32)
    t = wm.transcribe(x, model=tiny, word_timestamps=True)
    assert "superlative degree" in t.text and "faced Gregson across the table" in t.text
    pad = t.info.options.vad_pad
    regions = [(r.start - pad, r.end + pad) for r in t.info.speech]
    assert len(regions) == 2, t.info.speech
    assert all(any(a <= w.start and w.end <= b for a, b in regions) for w in _words(t))
    d = t.to_dict()
    assert d["info"]["speech"] == [[r.start, r.end] for r in t.info.speech]


def test_no_word_spans_a_pause_between_regions_decoded_together(tiny):
    """JFK's pauses split the speech into several regions that one window decodes together; DTW
    stretches words over those pauses, and the loop cuts each back to its region (± padding)."""
    t = wm.transcribe(_audio("jfk.flac"), model=tiny, word_timestamps=True)
    pad = t.info.options.vad_pad
    regions = [(r.start - pad, r.end + pad) for r in t.info.speech]
    assert len(regions) >= 2, t.info.speech
    words = _words(t)
    assert len(words) >= 20 and "ask not what your country can do for you" in t.text
    assert all(any(a <= w.start and w.end <= b for a, b in regions) for w in words), \
        [(w.word, w.start, w.end) for w in words if not any(a <= w.start and w.end <= b for a, b in regions)]
    assert all(w.start <= w.end for w in words)
    assert all(p.end <= n.start for p, n in zip(words, words[1:]))


def test_non_speech_is_skipped(tiny):
    import nonspeech_corpus as nc

    music = nc.music("melody", -22, "pluck", 110, True, -40)(np.random.default_rng(2), 16000 * 20)
    t = wm.transcribe(music.astype(np.float32), model=tiny)
    assert t.info.speech == () and t.segments == () and t.text == ""
    assert json.loads(json.dumps(t.to_dict()))["info"]["speech"] == []


def test_openai_presets_run_no_detection(tiny):
    t = wm.transcribe(SPEECH / "arctic_a0007.flac", model=tiny, preset="openai-transcribe")
    assert t.info.speech is None and "speech" not in t.to_dict()["info"]


def test_suppressions_are_recorded_in_the_json(tiny):
    """A music clip of the harvest set, decoded with detection off: tiny.en says "Thank you.",
    unsure of it (no-speech probability over the threshold), and the defence drops it, on record."""
    import harvest_nonspeech

    clip = dict(harvest_nonspeech.harvest_clips())["arpeggio_organ_130"]
    t = wm.transcribe(clip, model=tiny, vad="off")
    assert t.text == "" and t.segments == ()
    (s,) = t.info.suppressed
    assert (s.reason, s.segment.text, s.segment.id) == ("non-speech-phrase", " Thank you.", -1)
    assert s.segment.no_speech_prob > 0.6
    record = json.loads(json.dumps(t.to_dict()))["info"]["suppressed"]
    assert record == [{"reason": "non-speech-phrase", "segment": s.segment.to_dict()}]
    kept = wm.transcribe(clip, model=tiny, vad="off", suppress_hallucinations=False)  # the defence off
    assert kept.text == " Thank you." and kept.info.suppressed is None
