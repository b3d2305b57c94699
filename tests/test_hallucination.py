"""The defence's rules on made-up segments: which are dropped, and why (no model needed)."""

from __future__ import annotations

import dataclasses

import pytest

from whispermedia.hallucination import Defence, loop_share, normalize
from whispermedia.options import TranscribeOptions
from whispermedia.speech import SpeechPlan
from whispermedia.types import Segment, SpeechRegion, Suppression, Transcript, TranscriptInfo

SPEECH = SpeechPlan(regions=(SpeechRegion(10.0, 20.0),), clips=((1000, 2000),))
NO_VAD = SpeechPlan(regions=None, clips=((0, 3000),))


def seg(text: str, start: float = 12.0, end: float = 14.0, seek: int = 1000, logprob: float = -0.3,
        no_speech: float = 0.1) -> Segment:
    return Segment(id=0, seek=seek, start=start, end=end, text=text, tokens=(), temperature=0.0,
                   avg_logprob=logprob, compression_ratio=1.2, no_speech_prob=no_speech)


def defence(plan=SPEECH, model="tiny.en") -> Defence:
    return Defence(TranscribeOptions(), plan, model)


def test_normalize_and_loops():
    assert normalize(" Thank you!!  ") == "thank you" and normalize("...") == ""
    assert loop_share(tuple("you you you you".split())) == 1.0
    assert loop_share(tuple("thank you thank you thank you thank you so much".split())) == pytest.approx(8 / 10)
    assert loop_share(tuple("no no no".split())) == 0.0  # three times is speech
    assert loop_share(tuple("the cat sat on the mat".split())) == 0.0


def test_phrases_only_where_doubted():
    d = defence()
    assert d.judge(seg(" Thank you.")) is None  # inside speech, confident: someone said it
    assert d.judge(seg(" Thank you.", start=21.0, end=23.0)) == "non-speech-phrase"  # outside the regions
    assert d.judge(seg(" Thank you.", logprob=-1.4)) == "non-speech-phrase"  # the decoder doubts it
    assert d.judge(seg(" Thank you.", no_speech=0.9)) == "non-speech-phrase"
    assert d.judge(seg(" Thank you.", start=18.5, end=21.0)) is None  # 60% inside: not doubted
    assert defence(NO_VAD).judge(seg(" Thank you.", start=21.0, end=23.0)) is None  # no VAD: no doubt from it
    assert d.judge(seg(" Thanks a lot, you.", logprob=-1.4)) is None  # not a listed phrase


def test_loops_within_and_across_windows():
    d = defence()
    assert d.judge(seg(" you you you you you", logprob=-1.2)) == "repetition-loop"
    assert d.judge(seg(" you you you you you")) is None  # confident and inside speech
    same = " We will be right back after this."
    for seek in (1000, 1500):
        s = seg(same, seek=seek)
        assert d.judge(s) is None
        d.written(s)
    assert d.judge(seg(same, seek=1500)) is None  # twice from one window: a segment, not a loop
    assert d.judge(seg(same, seek=2000)) == "repeated-segment"  # the third window in a row


def test_suppressions_in_the_json():
    s = Suppression("repetition-loop", dataclasses.replace(seg(" you you you you"), id=-1))
    info = TranscriptInfo("en", None, 30.0, "transcribe", "tiny.en", suppressed=(s,),
                          speech=(SpeechRegion(10.0, 20.0),))
    d = Transcript(info, ()).to_dict()["info"]
    assert d["suppressed"] == [{"reason": "repetition-loop", "segment": s.segment.to_dict()}]
    assert d["speech"] == [[10.0, 20.0]]
    assert "suppressed" not in Transcript(TranscriptInfo("en", None, 1.0, "transcribe", "x"), ()).to_dict()["info"]
