"""``regions`` batch mode (whispermedia.regions, whispermedia.scheduler): a long file cut at the
VAD's pauses into parts decoded side by side; nothing the one loop decodes is left out, the
result does not depend on the batch size, and no utterance is lost."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from whispermedia.constants import FRAMES_PER_SECOND
from whispermedia.regions import pauses, split_clips
from whispermedia.speech import SpeechPlan, clips_from_regions
from whispermedia.types import SpeechRegion

SPEECH = Path(__file__).parent / "data" / "speech"


def _plan(regions, max_gap=3.0, duration=None):
    """A plan as plan_speech makes it from (start, end) second regions."""
    duration = duration or regions[-1][1] + 1
    frames = int(duration * FRAMES_PER_SECOND)
    clips = clips_from_regions(regions, [(0, frames)], frames, max_gap)
    return SpeechPlan(regions=tuple(SpeechRegion(a, b) for a, b in regions), clips=tuple(clips), backend="test")


def _frames(clips):
    return {f for a, b in clips for f in range(a, b)}


def _made_up_talk(seed=0, minutes=6):
    """Regions of 1-12 s of speech with pauses of 0.6-9 s between them."""
    rng = np.random.default_rng(seed)
    t, regions = 0.5, []
    while t < minutes * 60:
        length = float(rng.uniform(1, 12))
        regions.append((round(t, 3), round(t + length, 3)))
        t += length + float(rng.choice([0.6, 0.8, 1.2, 2.0, 4.0, 9.0]))
    return regions


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("seconds", [20.0, 60.0, 150.0])
def test_parts_cover_every_decoded_frame_and_cut_only_at_pauses(seed, seconds):
    plan = _plan(_made_up_talk(seed))
    parts = split_clips(plan, seconds)
    assert len(parts) > 1
    # nothing the one loop decodes is left out, nothing is decoded twice
    decoded = [f for p in parts for a, b in p for f in range(a, b)]
    assert len(decoded) == len(set(decoded)) and set(decoded) == _frames(plan.clips)
    starts = [p[0][0] for p in parts]
    assert starts == sorted(starts)
    speech = [(r.start * FRAMES_PER_SECOND, r.end * FRAMES_PER_SECOND) for r in plan.regions]
    for start in starts[1:]:
        assert not any(a < start < b for a, b in speech), "a cut inside speech"
        assert start in {f for f, _ in pauses(plan)}
    # long enough: each part but the last at least `seconds`, the last at least half of that
    bounds = starts + [plan.clips[-1][1]]
    lengths = [(b - a) / FRAMES_PER_SECOND for a, b in zip(bounds, bounds[1:])]
    assert all(x >= seconds for x in lengths[:-1]) and lengths[-1] >= seconds / 2
    # cuts at the longest pause within reach: never one of under a second where a longer one was
    # available in the same reach
    lengths_of = dict(pauses(plan))
    for a, b in zip(bounds, bounds[1:-1]):
        reach = [p for f, p in pauses(plan) if seconds * FRAMES_PER_SECOND <= f - a < 2 * seconds * FRAMES_PER_SECOND]
        if reach:
            assert lengths_of[b] == max(reach)


def test_a_pause_inside_a_clip_is_cut_in_its_middle():
    # two regions 2 s apart decoded as one clip (max gap 3 s): the cut halves the pause
    plan = _plan([(0.0, 50.0), (52.0, 100.0)])
    assert len(plan.clips) == 1
    parts = split_clips(plan, 40.0)
    assert parts == [((0, 5100),), ((5100, 10000),)]


def test_one_part_without_regions_or_without_room_for_two():
    frames = 60000
    off = SpeechPlan(regions=None, clips=((0, frames),))
    assert split_clips(off, 30.0) == [((0, frames),)]
    short = _plan([(0.0, 40.0), (45.0, 70.0)])
    assert split_clips(short, 60.0) == [tuple(short.clips)]  # a second part would be under 30 s
    assert split_clips(SpeechPlan(regions=(), clips=()), 30.0) == [()]
    with pytest.raises(ValueError):
        split_clips(short, 0)


def test_the_cuts_depend_on_the_plan_only():
    plan = _plan(_made_up_talk(3))
    assert split_clips(plan, 45.0) == split_clips(plan, 45.0)


def test_batch_mode_options_are_checked():
    from whispermedia.batch_options import BatchOptions
    from whispermedia.options import OptionError

    from whispermedia.options import TranscribeOptions

    plain, conditioned = TranscribeOptions(), TranscribeOptions(condition_on_previous_text=True)
    assert BatchOptions().batch_mode == "auto"
    assert BatchOptions().region_length(plain) == 60 and BatchOptions().region_length(conditioned) is None
    assert BatchOptions(batch_mode="exact").region_length(plain) is None
    assert BatchOptions(batch_mode="regions", region_seconds=30).region_length(conditioned) == 30
    with pytest.raises(OptionError, match="batch_mode"):
        BatchOptions(batch_mode="fast")
    with pytest.raises(OptionError, match="region_seconds"):
        BatchOptions(batch_mode="regions", region_seconds=0)


def test_the_manifest_tells_regions_mode_from_exact():
    """A resumed job in the other mode redoes the files: regions mode changes text."""
    from whispermedia.batch_options import BatchOptions
    from whispermedia.cli_run import RunPlan, plan_settings
    from whispermedia.manifest import options_sha256
    from whispermedia.options import TranscribeOptions

    def digest(batch):
        plan = RunPlan(formats=("txt",), model="tiny.en", options=TranscribeOptions(), device=None,
                       compute_type="default", output_dir=None, overwrite=False, audio_stream=None, batch=batch)
        return options_sha256(plan_settings(plan))

    exact = digest(BatchOptions(batch_mode="exact"))
    assert digest(BatchOptions(batch_mode="exact", batch_size=3)) == exact  # at any size: the same outputs
    assert digest(BatchOptions(batch_mode="regions")) != exact
    assert digest(BatchOptions()) == digest(BatchOptions(batch_mode="regions"))  # auto: regions here
    assert digest(BatchOptions(batch_mode="regions", region_seconds=30)) != digest(BatchOptions(batch_mode="regions"))


# -- real speech, end to end -------------------------------------------------------------------

UTTERANCES = ("jfk.flac", "arctic_a0007.flac", "arctic_a0009.flac")
PAUSES = (0.8, 4.0, 1.5, 6.0)


def _talk():
    """The three real recordings four times each, with pauses of 0.8-6 s over faint noise
    (109 s): (samples, [(start, end, reference text)])."""
    from whispermedia.media import load_audio

    refs = json.loads((SPEECH / "references.json").read_text())
    rng = np.random.default_rng(0)
    pieces, spans, t = [], [], 0.0
    for k in range(12):
        name = UTTERANCES[k % 3]
        audio = load_audio(str(SPEECH / name))
        pause = rng.normal(0, 1e-4, int(16000 * PAUSES[k % 4])).astype(np.float32)
        pieces += [audio, pause]
        spans.append((t, t + len(audio) / 16000, refs[name]))
        t += (len(audio) + len(pause)) / 16000
    return np.concatenate(pieces), spans


def _words(text):
    return [w.strip(".,?!").lower() for w in text.split()]


def _recall(ref, hyp):
    pool, hit = list(hyp), 0
    for w in ref:
        if w in pool:
            pool.remove(w)
            hit += 1
    return hit / len(ref)


@pytest.mark.slow
def test_regions_mode_loses_nothing_and_does_not_depend_on_the_batch_size():
    import whispermedia as wm

    audio, spans = _talk()
    model = wm.load_model("tiny.en")
    options = wm.TranscribeOptions.from_kwargs(word_timestamps=True)
    alone = wm.transcribe(audio, model=model, options=options)
    reports = []
    results = {}
    for size in (1, 3):
        ((_, got),) = list(wm.transcribe_many([audio], model=model, options=options, batch_size=size,
                                              batch_mode="regions", region_seconds=20,
                                              progress=reports.append if size == 3 else None))
        assert not isinstance(got, Exception), got
        results[size] = got
    one, three = results[1], results[3]
    assert one == three  # text, segments, tokens, temperatures
    assert [[(w.word, w.start, w.end) for w in s.words] for s in one.segments] == \
           [[(w.word, w.start, w.end) for w in s.words] for s in three.segments]
    parts = three.info.parts
    assert parts is not None and len(parts) >= 3 and alone.info.parts is None
    assert parts[0][0] == 0.0 and parts[-1][1] == pytest.approx(three.info.duration, abs=0.01)
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))  # the parts tile the file
    segs = three.segments
    assert [s.id for s in segs] == list(range(len(segs)))
    assert all(a.end <= b.start + 1e-6 for a, b in zip(segs, segs[1:]))  # in time order, no overlap
    for s in segs:  # no segment runs across a cut
        assert any(a - 1e-6 <= s.start and s.end <= b + 1e-6 for a, b in parts)
    # no utterance lost: each one's words are in the segments over it, as in the one loop
    for start, end, text in spans:
        for result in (alone, three):
            heard = _words(" ".join(s.text for s in result.segments if s.start < end + 0.5 and s.end > start - 0.5))
            assert _recall(_words(text), heard) >= 0.8, (text, heard)
    # progress: never backwards, all the speech at the end (as the one loop: the trailing pause
    # is not decoded)
    done = [p.seconds_done for p in reports]
    assert done == sorted(done) and spans[-1][1] <= done[-1] <= three.info.duration


def _write_wav(path, audio):
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())
    return path


class _Pipe(io.RawIOBase):
    """A file object that reads like a pipe: forward only (the media layer spools it)."""

    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


@pytest.mark.slow
def test_file_objects_and_pipes_are_cut_as_paths_are(tmp_path):
    """A caller's file object and a spooled pipe are read by position through their file
    descriptor (twin_source): the same parts and transcript as the path; an object with no
    descriptor (BytesIO) is decoded as one part, as in exact mode."""
    import whispermedia as wm

    audio, _ = _talk()
    wav = _write_wav(tmp_path / "talk.wav", audio)
    model = wm.load_model("tiny.en")
    options = wm.TranscribeOptions.from_kwargs(preset="greedy")

    def regions(x):
        ((_, got),) = list(wm.transcribe_many([x], model=model, options=options, batch_mode="regions",
                                              region_seconds=20, batch_size=3))
        assert not isinstance(got, Exception), got
        return got

    by_path = regions(str(wav))
    assert by_path.info.parts is not None and len(by_path.info.parts) >= 3
    with open(wav, "rb") as f:
        f.seek(7)
        by_file = regions(f)
        assert f.tell() == 7  # the caller's position is put back
    by_pipe = regions(io.BufferedReader(_Pipe(wav.read_bytes())))
    for got in (by_file, by_pipe):
        assert got.info.parts == by_path.info.parts and got.segments == by_path.segments
    in_memory = regions(io.BytesIO(wav.read_bytes()))
    assert in_memory.info.parts is None
    assert in_memory.segments == wm.transcribe(str(wav), model=model, options=options).segments


@pytest.mark.slow
def test_wm_run_regions_mode_writes_its_parts(tmp_path):
    from click.testing import CliRunner

    from whispermedia.cli import cli

    audio, _ = _talk()
    wav = _write_wav(tmp_path / "talk.wav", audio)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--model", "tiny.en", "--progress", "none", "--batch-mode", "regions",
                                      "--region-seconds", "20", "--batch-size", "2", "-p", "json,srt",
                                      "-o", str(out), str(wav)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "talk.json").read_text())
    assert len(data["info"]["parts"]) >= 3
    assert data["text"] == "".join(s["text"] for s in data["segments"])
    import srt

    cues = list(srt.parse((out / "talk.srt").read_text()))
    assert cues and all(a.start <= b.start for a, b in zip(cues, cues[1:]))
