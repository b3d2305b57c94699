"""Real speech, end to end: ``wm run --layout netflix`` on videos made from the repo's clips at
23.976, 25 and 29.97 fps, with silences of different lengths and hard cuts near speech edges
(tests/subtitle_media.py), checked by ``wm qc``, by the frame arithmetic itself and by three
independent subtitle parsers. Runs the real model (tiny.en when installed): marked slow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from fractions import Fraction

import pytest

from subtitle_media import make_speech_video
from whispermedia.layout.frames import FrameGrid
from whispermedia.layout.rules import rules_for

RATES = [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001)]


def _model() -> str:
    from whispermedia.models import list_models

    installed = {m.name for m in list_models() if m.installed}
    return "tiny.en" if "tiny.en" in installed else "base"


def _wm(*args, cwd):
    env = dict(os.environ, WM_DEBUG="1")
    return subprocess.run([sys.executable, "-m", "whispermedia", *args], capture_output=True, text=True,
                          env=env, timeout=900, cwd=cwd)


def _srt_times(text):
    stamps = re.findall(r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})", text)
    out = []
    for g in stamps:
        a = int(g[0]) * 3600 + int(g[1]) * 60 + int(g[2]) + int(g[3]) / 1000
        b = int(g[4]) * 3600 + int(g[5]) * 60 + int(g[6]) + int(g[7]) / 1000
        out.append((a, b))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fps", RATES, ids=lambda f: f"{float(f):.3f}")
def test_netflix_layout_on_real_speech_passes_qc(tmp_path, fps):
    srt_lib = pytest.importorskip("srt")
    webvtt = pytest.importorskip("webvtt")
    pysubs2 = pytest.importorskip("pysubs2")
    video = make_speech_video(tmp_path / "talk.mp4", fps)
    proc = _wm("run", "-m", _model(), "-l", "en", "-p", "srt", "-p", "vtt", "-p", "txt", "--layout", "netflix",
               "--qc", "--progress", "none", str(video.path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"talk\.srt: qc: \d+ cues checked against netflix at .* 0 errors", proc.stderr), proc.stderr

    srt_path, vtt_path, txt_path = (tmp_path / f"talk.{ext}" for ext in ("srt", "vtt", "txt"))
    qc = _wm("qc", str(srt_path), "--video", str(video.path), "--json", cwd=tmp_path)
    report = json.loads(qc.stdout)
    assert qc.returncode == 0 and report["errors"] == 0, qc.stdout
    assert report["counts"].get("shot-change", 0) == 0 and report["counts"].get("chaining", 0) == 0, qc.stdout
    assert report["within_reading_speed"] >= 0.95 * report["cues"]
    assert _wm("qc", str(vtt_path), "--video", str(video.path), cwd=tmp_path).returncode == 0

    # the detector finds the cuts the video was made with, to the frame
    from whispermedia.shots import detect_cuts

    grid = FrameGrid(fps)
    assert [grid.nearest(c) for c in detect_cuts(str(video.path))] == [grid.nearest(c) for c in video.cuts]

    rules = rules_for("netflix")
    text = srt_path.read_text(encoding="utf-8")
    times = _srt_times(text)
    frames = [(grid.nearest(a), grid.nearest(b)) for a, b in times]
    assert all(grid.on_grid(t) for pair in times for t in pair)  # every time on a frame
    chain = grid.frames(rules.chain_gap)
    for (_, out), (nxt, _) in zip(frames, frames[1:]):
        assert nxt - out >= rules.min_gap_frames
        assert nxt - out == rules.min_gap_frames or nxt - out >= chain
    snap = grid.frames(rules.shot_snap)
    for cut in (grid.nearest(c) for c in video.cuts):
        for f_in, f_out in frames:
            assert not 0 < abs(f_in - cut) < snap, (cut, f_in)
            assert not (abs(f_out - cut) < snap and f_out != cut - rules.min_gap_frames), (cut, f_out)
    # no cue starts over the silence before its speech: at most 0.3 s before the clip's audio
    assert times[0][0] >= video.clips[0][0] - 0.3
    for a, _ in times:
        clip_start = max(s for s, _ in video.clips if s <= a + 0.3)
        assert a >= clip_start - 0.3

    # the subtitles' words are the txt output's words
    cue_words = " ".join(p.content for p in srt_lib.parse(text)).split()
    assert cue_words == txt_path.read_text(encoding="utf-8").split()

    # three parsers agree on the cues
    parsed = list(srt_lib.parse(text))
    subs = pysubs2.load(str(srt_path))
    assert [(round(p.start.total_seconds(), 3), round(p.end.total_seconds(), 3)) for p in parsed] == \
        [(round(a, 3), round(b, 3)) for a, b in times] == [(e.start / 1000, e.end / 1000) for e in subs]
    captions = webvtt.read(str(vtt_path)).captions
    assert [c.text for c in captions] == [p.content for p in parsed]


def _energy_regions(audio, rate=16000, threshold=0.02, hop=0.02, bridge=0.25):
    """Where the clip's samples are loud: 20 ms RMS frames above ``threshold``, gaps under
    ``bridge`` seconds joined. A test oracle for where speech starts, not a VAD."""
    import numpy as np

    from whispermedia.types import SpeechRegion

    n = int(hop * rate)
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    loud = np.sqrt((frames ** 2).mean(axis=1)) > threshold
    regions, start = [], None
    for k, on in enumerate(loud):
        if on and start is None:
            start = k
        elif not on and start is not None:
            regions.append([start * hop, k * hop])
            start = None
    if start is not None:
        regions.append([start * hop, len(loud) * hop])
    merged = []
    for a, b in regions:
        if merged and a - merged[-1][1] < bridge:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return tuple(SpeechRegion(a, b) for a, b in merged)


@pytest.mark.slow
def test_in_times_follow_speech_regions_on_real_word_timings(tmp_path):
    """With ``info.speech`` (as voice activity detection will fill it), every cue starts on the
    first frame of the speech its first word belongs to, never in the silence before it."""
    import dataclasses

    import whispermedia as wm
    from whispermedia.layout.engine import lay_out
    from whispermedia.media import load_audio
    from whispermedia.qc import check, cues_of

    fps = Fraction(25)
    video = make_speech_video(tmp_path / "talk.mp4", fps)
    transcript = wm.transcribe(str(video.path), model=_model(), language="en", word_timestamps=True)
    speech = _energy_regions(load_audio(str(video.path)))
    with_speech = dataclasses.replace(transcript, info=dataclasses.replace(transcript.info, speech=speech))
    rules = rules_for("netflix")
    grid = FrameGrid(fps)
    layout = lay_out(with_speech, rules)
    assert check(cues_of(layout), rules, fps=fps).errors == 0
    words = [w.word.strip() for s in transcript.segments for w in s.words]
    assert [w.text for c in layout.cues for w in c.words] == words
    for cue in layout.cues:
        first = cue.words[0]
        region = next((r for r in speech if r.end > first.start and r.start < first.end), None)
        if region is None:
            continue
        assert cue.in_frame >= grid.floor(region.start), (cue.text_lines, first, region)
        assert cue.in_frame <= grid.floor(max(region.start, first.start)) + rules.min_gap_frames + 1
