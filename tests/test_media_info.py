"""What probe() reads of a file's video and streams: frame rate, start timecode, default track,
and how a transcript carries it (TranscriptInfo.media, JSON ``info.media``). The files are
written here with PyAV."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from whispermedia import media
from whispermedia.media_info import MediaInfo
from whispermedia.types import SpeechRegion, Transcript, TranscriptInfo


def _write(path, *, rate=None, timecode=None, audio=(), container_tags=None):
    """A small file: ``rate`` fps video (None: none), one audio stream per (language, default)
    in ``audio`` (a second of a 440 Hz tone each)."""
    out = av.open(str(path), "w")
    for key, value in (container_tags or {}).items():
        out.metadata[key] = value
    video = None
    if rate is not None:
        video = out.add_stream("mpeg4", rate=rate)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        if timecode:
            video.metadata["timecode"] = timecode
    streams = []
    for lang, default in audio:
        s = out.add_stream("aac", rate=16000)
        s.layout = "mono"
        if lang:
            s.metadata["language"] = lang
        s.disposition = av.stream.Disposition.default if default else av.stream.Disposition(0)
        streams.append(s)
    if video is not None:
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for p in video.encode(frame):
                out.mux(p)
        for p in video.encode():
            out.mux(p)
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)[None]
    for s in streams:
        frame = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode():
            out.mux(p)
    out.close()
    return str(path)


@pytest.mark.parametrize("rate,timecode", [(25, "10:00:00:00"), (Fraction(30000, 1001), "01:00:00;00"),
                                           (Fraction(24000, 1001), None)])
def test_frame_rate_and_start_timecode(tmp_path, rate, timecode):
    info = media.probe(_write(tmp_path / "v.mov", rate=rate, timecode=timecode, audio=[("eng", True)]))
    assert info.frame_rate == Fraction(rate)
    assert info.start_timecode == timecode
    assert info.has_video


def test_audio_only_has_no_frame_rate(tmp_path):
    info = media.probe(_write(tmp_path / "a.m4a", audio=[(None, True)]))
    assert info.frame_rate is None and info.start_timecode is None and not info.has_video


def test_container_timecode_tag(tmp_path):
    info = media.probe(_write(tmp_path / "c.mkv", rate=25, audio=[("eng", True)],
                              container_tags={"timecode": "00:59:58:00"}))
    assert info.start_timecode == "00:59:58:00"


def test_default_disposition_and_languages(tmp_path):
    info = media.probe(_write(tmp_path / "two.mkv", audio=[("fre", False), ("eng", True)]))
    assert [(s.index, s.language, s.default) for s in info.audio_streams] == [(0, "fre", False), (1, "eng", True)]


def test_audio_source_probe(tmp_path):
    path = _write(tmp_path / "v.mov", rate=25, timecode="10:00:00:00", audio=[("eng", True)])
    with open(path, "rb") as f, media.open_source(f) as source:
        assert source.probe().start_timecode == "10:00:00:00"
        assert f.tell() == 0
    assert media.open_source(np.zeros(16000, np.float32)).probe() is None


def test_transcript_json_carries_media_and_speech(tmp_path):
    facts = media.probe(_write(tmp_path / "v.mov", rate=Fraction(24000, 1001), audio=[("eng", True)]))
    info = TranscriptInfo(language="en", language_probability=None, duration=1.0, task="transcribe",
                          model="base", source=facts.path, media=facts, audio_stream=0,
                          speech=(SpeechRegion(0.25, 0.75),))
    d = json.loads(json.dumps(Transcript(info=info, segments=()).to_dict()))
    assert d["info"]["media"]["frame_rate"] == "24000/1001"
    assert d["info"]["media"]["audio_streams"][0]["language"] == "eng"
    assert d["info"]["audio_stream"] == 0
    assert d["info"]["speech"] == [[0.25, 0.75]]
    bare = Transcript(info=TranscriptInfo("en", None, 1.0, "transcribe", "base"), segments=()).to_dict()
    assert not {"media", "audio_stream", "speech"} & set(bare["info"])  # unknown facts are left out
    assert isinstance(facts, MediaInfo)
