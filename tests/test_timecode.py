"""SMPTE timecode <-> frames <-> exact seconds, drop-frame included (whispermedia.timecode)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from whispermedia.timecode import (
    Timecode,
    is_drop_frame_rate,
    nominal_rate,
    parse_frame_rate,
    seconds_to_frames,
)

DF30 = Fraction(30000, 1001)
DF60 = Fraction(60000, 1001)


@pytest.mark.parametrize("rate,frames,label", [
    # 29.97 drop-frame: labels 00 and 01 are skipped at each minute except every tenth
    (DF30, 0, "00:00:00;00"),
    (DF30, 1799, "00:00:59;29"),
    (DF30, 1800, "00:01:00;02"),
    (DF30, 3597, "00:01:59;29"),
    (DF30, 3598, "00:02:00;02"),
    (DF30, 17981, "00:09:59;29"),
    (DF30, 17982, "00:10:00;00"),
    (DF30, 17983, "00:10:00;01"),
    (DF30, 107892, "01:00:00;00"),  # one hour of labels is 107892 frames
    (DF30, 2589408, "24:00:00;00"),  # hours are not wrapped
    # 59.94 drop-frame: four labels skipped
    (DF60, 3599, "00:00:59;59"),
    (DF60, 3600, "00:01:00;04"),
    (DF60, 35964, "00:10:00;00"),
    (DF60, 215784, "01:00:00;00"),
])
def test_drop_frame_known_values(rate, frames, label):
    assert str(Timecode(frames, rate, drop_frame=True)) == label
    tc = Timecode.parse(label, rate)
    assert (tc.frames, tc.drop_frame) == (frames, True)


@pytest.mark.parametrize("rate,label,frames", [
    (25, "10:00:00:00", 900000),
    (25, "00:00:01:24", 49),
    (Fraction(24000, 1001), "01:00:00:00", 86400),  # 23.976 counts 24 labels a second, no drop
    (24, "00:01:00:00", 1440),
    (DF30, "01:00:00:00", 108000),  # 29.97 non-drop: every label exists
    (30, "00:10:00:00", 18000),
    (50, "00:00:10:49", 549),
    (60, "00:00:01:59", 119),
    (DF60, "00:01:00:00", 3600),
])
def test_non_drop_known_values(rate, label, frames):
    tc = Timecode.parse(label, rate)
    assert (tc.frames, tc.drop_frame) == (frames, False)
    assert str(tc) == label


@pytest.mark.parametrize("rate", [DF30, DF60])
def test_every_drop_frame_label_round_trips(rate):
    """Each of the first 12 minutes' frames, and random frames over a day: frames -> label ->
    frames is the identity, and consecutive frames get consecutive (or skipped-over) labels."""
    rng = random.Random(0)
    frames = list(range(int(12 * 60 * rate))) + [rng.randrange(0, int(24 * 3600 * rate)) for _ in range(2000)]
    for n in frames:
        assert Timecode.parse(str(Timecode(n, rate, True)), rate).frames == n


def test_drop_frame_labels_that_do_not_exist_are_refused():
    with pytest.raises(ValueError, match="does not exist"):
        Timecode.parse("00:01:00;00", DF30)
    with pytest.raises(ValueError, match="does not exist"):
        Timecode.parse("00:02:00;03", DF60)
    assert Timecode.parse("00:10:00;00", DF30).frames == 17982  # every tenth minute keeps its labels


@pytest.mark.parametrize("label,rate,words", [
    ("10:00:00;00", 25, "needs 29.97 or 59.94"),
    ("00:00:00:25", 25, "out of range"),
    ("00:60:00:00", 25, "out of range"),
    ("10:00:00", 25, "not a timecode"),
    ("ten o'clock", 25, "not a timecode"),
])
def test_bad_timecodes_say_why(label, rate, words):
    with pytest.raises(ValueError, match=words):
        Timecode.parse(label, rate)


def test_seconds_are_exact():
    assert Timecode.parse("10:00:00:00", 25).seconds == 36000
    assert Timecode.parse("00:00:01;00", DF30).seconds == Fraction(30 * 1001, 30000)
    assert Timecode.parse("01:00:00;00", DF30).seconds == Fraction(107892 * 1001, 30000)
    assert Timecode.from_seconds(Fraction(1001, 1000), DF30).frames == 30


def test_seconds_to_frames_rounds_to_the_nearest_frame():
    assert seconds_to_frames(6.9999999, 25) == 175
    assert seconds_to_frames(0.02, 25) == 1  # exactly half a frame rounds up
    assert seconds_to_frames(0.0199, 25) == 0
    assert seconds_to_frames(1.0, DF30) == 30  # 29.97 frames in a second: frame 30 is nearest


@pytest.mark.parametrize("text,rate", [
    ("25", Fraction(25)), ("29.97", DF30), (29.97, DF30), ("23.976", Fraction(24000, 1001)),
    (23.976, Fraction(24000, 1001)), ("59.94", DF60), ("30000/1001", DF30), (Fraction(50), Fraction(50)),
    (30, Fraction(30)), ("12.5", Fraction(25, 2)),
])
def test_parse_frame_rate(text, rate):
    assert parse_frame_rate(text) == rate


@pytest.mark.parametrize("bad", ["0", "-25", "fast", "", "1/0", True])
def test_bad_frame_rates(bad):
    with pytest.raises(ValueError):
        parse_frame_rate(bad)


def test_rate_facts():
    assert is_drop_frame_rate(DF30) and is_drop_frame_rate(DF60)
    assert not any(is_drop_frame_rate(r) for r in (Fraction(24000, 1001), 24, 25, 30, 50, 60))
    assert [nominal_rate(r) for r in (Fraction(24000, 1001), DF30, DF60, 25)] == [24, 30, 60, 25]
    with pytest.raises(ValueError, match="drop-frame"):
        Timecode(0, 25, drop_frame=True)


def test_agrees_with_opentimelineio():
    otio = pytest.importorskip("opentimelineio")
    rng = random.Random(1)
    for rate in (DF30, DF60, Fraction(25), Fraction(24000, 1001)):
        day = int(24 * 3600 * rate * (1 if not is_drop_frame_rate(rate) else Fraction(1000, 1001)))
        for n in [0, 1, 1799, 1800, 17982] + [rng.randrange(0, day) for _ in range(300)]:  # OTIO wraps at 24 h
            ours = Timecode(n, rate, is_drop_frame_rate(rate))
            theirs = otio.opentime.to_timecode(otio.opentime.RationalTime(n, float(rate)), float(rate))
            assert str(ours) == theirs
            assert otio.opentime.from_timecode(theirs, float(rate)).value == n
