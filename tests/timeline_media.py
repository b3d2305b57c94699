"""Test media for the timeline formats: real speech (tests/data/speech) muxed with PyAV into a
MOV/MP4 with a video stream at a given frame rate and start timecode, and a transcript of it
whose segments are timed like the real words (no model needed)."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from whispermedia import media
from whispermedia.options import TranscribeOptions
from whispermedia.types import Segment, Transcript, TranscriptInfo, Word

SPEECH = Path(__file__).parent / "data" / "speech" / "jfk.flac"

# jfk.flac's words, timed as base with word timestamps puts them (seconds)
JFK_SEGMENTS = [
    [(" And", 0.30, 0.52, 0.71), (" so", 0.52, 0.88, 0.99), (" my", 0.88, 1.18, 0.93),
     (" fellow", 1.18, 1.56, 0.99), (" Americans,", 1.56, 2.26, 0.98)],
    [(" ask", 3.18, 3.86, 0.96), (" not", 3.86, 4.36, 0.99), (" what", 4.36, 5.34, 0.96),
     (" your", 5.34, 5.66, 0.99), (" country", 5.66, 6.04, 0.99), (" can", 6.04, 6.46, 0.99),
     (" do", 6.46, 6.70, 0.99), (" for", 6.70, 6.98, 0.99), (" you,", 6.98, 7.46, 0.99)],
    [(" ask", 8.02, 8.32, 0.92), (" what", 8.32, 8.66, 0.99), (" you", 8.66, 8.96, 0.99),
     (" can", 8.96, 9.26, 0.99), (" do", 9.26, 9.48, 0.99), (" for", 9.48, 9.84, 0.99),
     (" your", 9.84, 10.12, 0.99), (" country.", 10.12, 10.6999999, 0.98)],
]


def speech_movie(path: Path, rate: Fraction, timecode: str | None) -> str:
    """``path`` (.mov or .mp4): a black 64x48 MPEG-4 video at ``rate`` fps carrying ``timecode``
    (FFmpeg's mov muxer writes it as a tmcd track) and jfk.flac's 11 s of speech as AAC."""
    audio = media.load_audio(str(SPEECH))  # 16 kHz mono float32
    out = av.open(str(path), "w")
    video = out.add_stream("mpeg4", rate=rate)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    if timecode:
        video.metadata["timecode"] = timecode
    sound = out.add_stream("aac", rate=16000)
    sound.layout = "mono"
    black = np.zeros((48, 64, 3), np.uint8)
    for i in range(math.ceil(len(audio) / 16000 * rate)):
        frame = av.VideoFrame.from_ndarray(black, format="rgb24")
        frame.pts = i
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    frame = av.AudioFrame.from_ndarray(audio[None], format="flt", layout="mono")
    frame.sample_rate, frame.pts = 16000, 0
    for packet in sound.encode(frame):
        out.mux(packet)
    for packet in sound.encode():
        out.mux(packet)
    out.close()
    return str(path)


def speech_transcript(path: str, options: TranscribeOptions | None = None, segments=None) -> Transcript:
    """A transcript of ``path`` as the pipeline makes one: its media facts, its options, and
    segments (``JFK_SEGMENTS`` by default) whose times are the words'."""
    records = []
    for i, words in enumerate(segments or JFK_SEGMENTS):
        ws = tuple(Word(*w) for w in words)
        records.append(Segment(id=i, seek=0, start=ws[0].start, end=ws[-1].end, text="".join(w.word for w in ws),
                               tokens=(), temperature=0.0, avg_logprob=-0.2, compression_ratio=1.2,
                               no_speech_prob=0.01, words=ws))
    facts = media.probe(path)
    info = TranscriptInfo(language="en", language_probability=0.98, duration=facts.duration or 11.0,
                          task="transcribe", model="base", source=path,
                          options=options or TranscribeOptions(word_timestamps=True), media=facts, audio_stream=0)
    return Transcript(info=info, segments=tuple(records))


def with_segments(transcript: Transcript, segments) -> Transcript:
    """``transcript`` with other (start, end, text) segments (no words)."""
    records = tuple(Segment(id=i, seek=0, start=s, end=e, text=t, tokens=(), temperature=0.0, avg_logprob=-0.2,
                            compression_ratio=1.2, no_speech_prob=0.01) for i, (s, e, t) in enumerate(segments))
    return dataclasses.replace(transcript, segments=records)
