"""Test videos for the subtitle engine, made with PyAV from the repo's real speech clips.

``make_speech_video(path, fps)`` lays the clips of tests/data/speech out with silences of
different lengths (0.35 s to 3 s) and cuts the picture (solid grey levels, one per shot) at
times near the speech edges: a few frames after speech starts, a few before it ends, inside
silences. It returns the speech stretches and the cut times in seconds, so tests can check
that cue edges near a cut were snapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import List, Tuple

import numpy as np

DATA = Path(__file__).parent / "data" / "speech"
RATE = 16000

# (clip, silence after it in seconds)
PLAN = (("jfk.flac", 0.35), ("arctic_a0007.flac", 3.0), ("arctic_a0009.flac", 0.6),
        ("arctic_a0007.flac", 1.4), ("jfk.flac", 2.2), ("arctic_a0009.flac", 0.0))
LEAD_IN = 1.5  # silence before the first clip


@dataclass(frozen=True)
class SpeechVideo:
    path: Path
    fps: Fraction
    clips: Tuple[Tuple[float, float], ...]  # where each clip's audio sits, seconds
    cuts: Tuple[float, ...]  # shot changes, seconds (on frame boundaries)
    duration: float


def _speech(clip: str) -> np.ndarray:
    from whispermedia.media import load_audio

    return np.asarray(load_audio(str(DATA / clip)), dtype=np.float32)


def make_speech_video(path: Path, fps: Fraction, size: Tuple[int, int] = (128, 72), repeat: int = 1) -> SpeechVideo:
    """``repeat`` lays the plan out that many times (each round with its cuts; bench/subtitle_qc.py
    uses it for a minutes-long file)."""
    import av

    pieces: List[np.ndarray] = [np.zeros(int(LEAD_IN * RATE), np.float32)]
    clips = []
    at = LEAD_IN
    for clip, silence in PLAN * repeat:
        audio = _speech(clip)
        clips.append((at, at + len(audio) / RATE))
        pieces += [audio, np.zeros(int(silence * RATE), np.float32)]
        at += len(audio) / RATE + silence
    audio = np.concatenate(pieces + [np.zeros(RATE, np.float32)])
    duration = len(audio) / RATE
    frames_total = int(duration * fps)

    # cuts near the clip edges (the clips' own leading/trailing quiet is ~0.1-0.3 s):
    # 5 frames after a clip starts, 4 frames before one ends, 8 frames before one starts,
    # and one in the middle of the long silence
    def frame_at(t: float) -> int:
        return int(round(t * fps))
    cut_frames = sorted({
        f for r in range(repeat) for f in (
            frame_at(clips[6 * r + 1][0]) + 5, frame_at(clips[6 * r + 1][1]) - 4, frame_at(clips[6 * r + 3][0]) - 8,
            frame_at((clips[6 * r + 1][1] + clips[6 * r + 2][0]) / 2), frame_at(clips[6 * r + 4][0]) + 3,
            frame_at(clips[6 * r + 4][1]) + 6)
    })
    cuts = tuple(float(Fraction(f) / fps) for f in cut_frames)

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast", "g": "1000", "sc_threshold": "0"}
        sound = out.add_stream("aac", rate=RATE, layout="mono")
        levels = (30, 200, 90, 240, 60, 170, 120)
        shot = 0
        for n in range(frames_total):
            while shot < len(cut_frames) and n >= cut_frames[shot]:
                shot += 1
            plane = np.full((size[1], size[0], 3), levels[shot % len(levels)], np.uint8)
            plane[:, : size[0] // 4] = (255 - levels[shot % len(levels)])  # a bar, so shots differ in shape too
            frame = av.VideoFrame.from_ndarray(plane, format="rgb24")
            frame.pts = n
            frame.time_base = Fraction(1) / fps
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        step = 1024
        for k in range(0, len(pcm), step):
            chunk = pcm[k:k + step]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = k
            frame.time_base = Fraction(1, RATE)
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    return SpeechVideo(path, fps, tuple(clips), cuts, duration)
