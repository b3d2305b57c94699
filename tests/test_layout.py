"""The subtitle layout engine: verbatim cues, the hard rules, frame timing, speech regions,
chaining, shot-change snapping, line breaks that keep protected pairs together, presets."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from layout_samples import timed_transcript
from whispermedia.layout.breaks import BreakOptimiser
from whispermedia.layout.cues import transcript_words
from whispermedia.layout.engine import lay_out
from whispermedia.layout.frames import FrameGrid, parse_fps
from whispermedia.layout.rules import PRESETS, rules_for
from whispermedia.layout.settings import layout_settings, needs_word_timestamps
from whispermedia.layout.words import TABLES, function_words
from whispermedia.options import TranscribeOptions
from whispermedia.qc import check, cues_of
from whispermedia.testing import sample_transcript

RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(50),
         Fraction(60000, 1001))
ENGINE_PRESETS = [name for name, r in PRESETS.items() if r.mode == "engine"]


def words_of(layout):
    return [w.text for c in layout.cues for w in c.words]


@pytest.mark.parametrize("preset", ENGINE_PRESETS)
@pytest.mark.parametrize("speech", [False, True])
def test_cues_are_the_transcripts_words_in_order(preset, speech):
    t = timed_transcript(fps=Fraction(25), speech=speech)
    layout = lay_out(t, rules_for(preset))
    assert words_of(layout) == [w.word.strip() for s in t.segments for w in s.words]
    assert " ".join(" ".join(c.text_lines) for c in layout.cues).split() == t.text.split()


@pytest.mark.parametrize("fps", RATES, ids=lambda f: f"{float(f):.3f}")
@pytest.mark.parametrize("preset", ENGINE_PRESETS)
def test_hard_rules_hold_at_every_rate(fps, preset):
    rules = rules_for(preset)
    t = timed_transcript(fps=fps, speech=True)
    layout = lay_out(t, rules)
    grid = FrameGrid(fps)
    report = check(cues_of(layout), rules, fps=fps)
    assert report.errors == 0, [v.line() for v in report.violations]
    assert report.within_reading_speed >= 0.95 * report.cues
    gap = rules.min_gap_frames
    chain = grid.frames(rules.chain_gap)
    for cue, nxt in zip(layout.cues, layout.cues[1:]):
        assert cue.start == grid.seconds(cue.in_frame) and cue.end == grid.seconds(cue.out_frame)
        between = nxt.in_frame - cue.out_frame
        assert between >= gap
        assert between == gap or between >= chain  # short gaps are chained to exactly the minimum
    for cue in layout.cues:
        assert all(len(line) <= rules.max_line_width for line in cue.text_lines)
        assert 1 <= len(cue.lines) <= rules.max_line_count
        assert grid.ceil(rules.min_duration) <= cue.out_frame - cue.in_frame <= grid.floor(rules.max_duration)


def test_in_time_is_the_first_frame_of_speech_when_regions_are_known():
    fps = Fraction(25)
    t = timed_transcript(fps=fps, speech=True, early=0.4)  # each run's first word starts 0.4 s early
    layout = lay_out(t, rules_for("netflix"))
    grid = FrameGrid(fps)
    by_early_start = {round(r.start - 0.4, 3): r.start for r in t.info.speech}
    checked = 0
    for cue in layout.cues:
        speech_start = by_early_start.get(round(cue.words[0].start, 3))
        if speech_start is not None:
            assert cue.in_frame == grid.floor(speech_start)  # not the word's start in the silence
            checked += 1
    assert checked >= 4


def test_without_speech_regions_a_stretched_first_word_is_cut_from_the_front():
    t = timed_transcript(fps=Fraction(25), speech=True, early=1.5)  # word times 1.5 s early...
    t = dataclasses.replace(t, info=dataclasses.replace(t.info, speech=None))  # ...and no VAD
    layout = lay_out(t, rules_for("netflix"))
    first = layout.cues[0]
    assert first.start > first.words[0].start + 0.5


def test_out_time_extends_for_reading_but_never_past_half_a_second_or_into_the_next_cue():
    fps = Fraction(25)
    rules = rules_for("netflix")
    t = timed_transcript(fps=fps)
    layout = lay_out(t, rules)
    grid = FrameGrid(fps)
    for cue, nxt in zip(layout.cues, layout.cues[1:] + (None,)):
        speech_end = grid.ceil(cue.words[-1].end)
        extended = cue.out_frame - speech_end
        minimum = grid.ceil(rules.min_duration) - (speech_end - cue.in_frame)
        chained = nxt is not None and nxt.in_frame - cue.out_frame == rules.min_gap_frames
        assert extended <= max(grid.frames(rules.reading_extension), minimum) or chained
        if nxt is not None:
            assert cue.out_frame <= nxt.in_frame - rules.min_gap_frames


def test_long_silences_stay_empty():
    t = timed_transcript(fps=Fraction(25))
    layout = lay_out(t, rules_for("netflix"))
    words = list(transcript_words(t))
    pauses = [(a.end, b.start) for a, b in zip(words, words[1:]) if b.start - a.end > 2.0]
    assert pauses
    for a, b in pauses:
        covering = [c for c in layout.cues if c.start < b - 0.6 and c.end > a + 0.6]
        assert not covering, (a, b)


def test_shot_changes_snap_cue_edges():
    fps = Fraction(24)
    rules = rules_for("netflix")
    t = timed_transcript(fps=fps)
    plain = lay_out(t, rules)
    grid = FrameGrid(fps)
    # a cut 5 frames after the third cue's in-time and one 3 frames after the fifth's out-time
    cut_in = plain.cues[2].in_frame + 5
    cut_out = plain.cues[4].out_frame + 3
    layout = lay_out(t, rules, cuts=[grid.seconds(cut_in), grid.seconds(cut_out)])
    assert layout.cues[2].in_frame == cut_in
    assert layout.cues[4].out_frame == cut_out - rules.min_gap_frames
    report = check(cues_of(layout), rules, fps=fps, cuts=[grid.seconds(cut_in), grid.seconds(cut_out)])
    assert report.errors == 0 and "shot-change" not in report.counts()
    # without snapping, QC reports the edges near the cuts
    report = check(cues_of(plain), rules, fps=fps, cuts=[grid.seconds(cut_in), grid.seconds(cut_out)])
    flagged = {(v.cue, v.problem.split()[0]) for v in report.violations if v.rule == "shot-change"}
    assert {(3, "in-time"), (5, "out-time")} <= flagged


def test_line_breaks_keep_protected_pairs_together():
    # greedy filling to 42 characters would end the first line on "to" (preposition + object)
    text = "I would like to thank everyone who came to see the new exhibition."
    t = timed_transcript(text, fps=Fraction(25))
    layout = lay_out(t, rules_for("netflix"))
    table = function_words("en")
    for cue in layout.cues:
        for line in cue.lines[:-1]:
            assert line[-1].bare not in table.binds_next, cue.text_lines
    assert len(layout.cues) == 1 and len(layout.cues[0].lines) == 2


def test_one_line_when_the_text_fits():
    t = timed_transcript("It was the schedule.", fps=Fraction(25))
    (cue,) = lay_out(t, rules_for("netflix")).cues
    assert cue.text_lines == ("It was the schedule.",)


def test_names_stay_on_one_line():
    optimiser = BreakOptimiser(list(transcript_words(timed_transcript("We met Margaret Hamilton there."))),
                               rules_for("netflix"), function_words("en"), [0.0] * 5, gap=0.08)
    assert optimiser.line_cost[3] > optimiser.line_cost[4]  # Margaret | Hamilton costs more than Hamilton | there


def test_every_language_has_a_table():
    assert set(TABLES) >= {"en", "de", "fr", "es", "it", "pt", "nl"}
    assert "der" in TABLES["de"].binds_next and "le" in TABLES["fr"].binds_next
    assert function_words("pt-BR") is TABLES["pt"] and not function_words("xx").binds_next


def test_a_word_longer_than_a_line_gets_a_cue_of_its_own():
    t = timed_transcript("Supercalifragilisticexpialidocious" * 2 + " is long.", fps=Fraction(25))
    layout = lay_out(t, rules_for("netflix"))
    assert words_of(layout) == ["Supercalifragilisticexpialidocious" * 2, "is", "long."]


def test_presets_and_overrides():
    assert rules_for("netflix").max_line_width == 42 and rules_for("netflix").max_cps == 20
    assert rules_for("netflix-other").max_cps == 17 and rules_for("bbc").max_line_width == 37
    assert rules_for("bbc").max_wpm == 180
    assert rules_for("netflix", max_line_width=30, max_cps=None).max_line_width == 30
    with pytest.raises(ValueError, match="unknown layout"):
        rules_for("nope")
    with pytest.raises(ValueError):
        rules_for("netflix", min_duration=9.0)  # above the maximum
    t = timed_transcript(fps=Fraction(25))
    narrow = lay_out(t, rules_for("netflix", max_line_width=30))
    assert max(len(line) for c in narrow.cues for line in c.text_lines) <= 30


def test_settings_from_options_and_format_options():
    t = sample_transcript()
    assert layout_settings(t).rules.name == "default"
    assert layout_settings(t, {"layout": "bbc"}).rules.max_line_width == 37
    opts = TranscribeOptions(layout="netflix", max_line_width=33, fps="23.976")
    t2 = dataclasses.replace(t, info=dataclasses.replace(t.info, options=opts))
    s = layout_settings(t2)
    assert s.rules.name == "netflix" and s.rules.max_line_width == 33 and s.fps == Fraction(24000, 1001)
    openai = TranscribeOptions.from_kwargs("openai")
    assert layout_settings(dataclasses.replace(t, info=dataclasses.replace(t.info, options=openai))).mode == "openai"
    assert needs_word_timestamps(TranscribeOptions()) and not needs_word_timestamps(openai)
    assert not needs_word_timestamps(TranscribeOptions(layout="raw"))


def test_fps_parsing():
    assert parse_fps("23.976") == Fraction(24000, 1001) and parse_fps("29.97") == Fraction(30000, 1001)
    assert parse_fps("30000/1001") == Fraction(30000, 1001) and parse_fps(25) == 25
    for bad in ("0", "-1", "x", "nan"):
        with pytest.raises(ValueError):
            parse_fps(bad)
    assert TranscribeOptions(fps="59.94").fps == Fraction(60000, 1001)


def test_frame_grid_is_exact_over_hours():
    grid = FrameGrid(Fraction(24000, 1001))
    frame = 24 * 3600 * 3  # three nominal hours of frames
    assert grid.floor(grid.seconds(frame)) == frame == grid.ceil(grid.seconds(frame))
    assert grid.frames(0.5) == 12 and FrameGrid(Fraction(30000, 1001)).frames(0.5) == 15


def test_audio_only_is_timed_on_25_fps():
    t = timed_transcript()  # no media info
    layout = lay_out(t, rules_for("default"))
    assert layout.fps == 25 and all(FrameGrid(Fraction(25)).on_grid(c.start) for c in layout.cues)


def test_without_word_timings_the_segments_words_are_estimated():
    t = timed_transcript(fps=Fraction(25))
    bare = dataclasses.replace(t, segments=tuple(dataclasses.replace(s, words=None) for s in t.segments))
    layout = lay_out(bare, rules_for("netflix"))
    assert words_of(layout) == t.text.split()
    assert check(cues_of(layout), rules_for("netflix"), fps=Fraction(25)).errors == 0

