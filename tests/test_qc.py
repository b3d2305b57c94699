"""``wm qc`` and the QC rules: one finding per broken rule, the exit codes, reading files
from anyone (CRLF, BOM, WebVTT blocks), and ``wm run --qc``."""

from __future__ import annotations

import dataclasses
import json
import re
from fractions import Fraction

import pytest
from click.testing import CliRunner

from layout_samples import timed_transcript
from whispermedia.cli import cli
from whispermedia.cli_render import EXIT_INPUT, EXIT_QC, EXIT_USAGE
from whispermedia.errors import MediaError
from whispermedia.layout.engine import lay_out
from whispermedia.layout.rules import rules_for
from whispermedia.qc import check, cues_of, timecode
from whispermedia.subtitle_files import FileCue, read_subtitles
from whispermedia.testing import plugin_host

# every hard rule broken once, at 25 fps (40 ms frames), netflix rules
BAD_SRT = """1
00:00:01,000 --> 00:00:01,400
Too short.

2
00:00:01,440 --> 00:00:03,000
This line is far too long for any broadcaster to accept it.

3
00:00:02,900 --> 00:00:04,000
Overlapping the cue above.

4
00:00:04,000 --> 00:00:12,000
A cue that stays up for eight seconds.

5
00:00:12,200 --> 00:00:14,010
Off the frame grid,
and with three lines,
which is one too many.

6
00:00:14,100 --> 00:00:15,000
Speech this fast cannot be read in the time it is shown, really.
"""


def rules_found(report):
    return sorted({(v.rule, v.cue) for v in report.violations})


def test_every_rule_is_found_once_where_it_is_broken(tmp_path):
    path = tmp_path / "bad.srt"
    path.write_text(BAD_SRT, encoding="utf-8")
    report = check(read_subtitles(str(path)), rules_for("netflix"), fps=Fraction(25))
    found = rules_found(report)
    assert ("min-duration", 1) in found
    assert ("min-gap", 1) in found  # 1 frame between cues 1 and 2
    assert ("line-length", 2) in found and ("line-length", 6) in found
    assert ("overlap", 2) in found
    assert ("max-duration", 4) in found
    assert ("frame-grid", 5) in found and ("line-count", 5) in found
    assert ("reading-speed", 6) in found
    assert ("chaining", 4) in found  # 5 frames to cue 5: neither 2 frames nor 12 or more
    assert report.errors >= 8 and report.warnings >= 2
    fixes = {}
    for v in report.violations:
        fixes.setdefault(v.rule, v.fix)  # the first of each rule
    assert fixes["min-gap"] == "end at 00:00:01:09"  # cue 2 starts at frame 36 = 1:11
    assert fixes["overlap"].startswith("end at 00:00:02:")


def test_our_layout_is_clean_and_raw_segments_are_not():
    fps = Fraction(24000, 1001)
    t = timed_transcript(fps=fps, speech=True)
    rules = rules_for("netflix")
    assert check(cues_of(lay_out(t, rules)), rules, fps=fps).errors == 0
    raw = [FileCue(n, s.start, s.end, (s.text.strip(),)) for n, s in enumerate(t.segments, 1)]
    report = check(raw, rules, fps=fps)
    assert report.counts().get("line-length", 0) > 0 and report.counts().get("frame-grid", 0) > 0


def test_timecodes():
    assert timecode(3723.48, Fraction(25)) == "01:02:03:12"
    assert timecode(1.0, None) == "00:00:01,000"
    ntsc = Fraction(30000, 1001)
    at = lambda frame: float(frame / ntsc)  # noqa: E731
    # drop-frame: labels ;00 and ;01 are skipped each minute, except every tenth
    assert [timecode(at(f), ntsc) for f in (1799, 1800, 17981, 17982, 107892)] == [
        "00:00:59;29", "00:01:00;02", "00:09:59;29", "00:10:00;00", "01:00:00;00"]
    assert timecode(float(3600 / Fraction(60000, 1001)), Fraction(60000, 1001)) == "00:01:00;04"
    assert timecode(24.0, Fraction(24000, 1001)).count(";") == 0


def test_reading_files_from_other_tools(tmp_path):
    vtt = tmp_path / "x.vtt"
    vtt.write_bytes("\ufeffWEBVTT - made elsewhere\r\n\r\nNOTE a comment\r\nspanning lines\r\n\r\nSTYLE\r\n::cue {}\r\n\r\n"
                    "intro\r\n00:01.000 --> 00:02.500 align:start\r\n<i>Hello</i> &amp; welcome\r\n\r\n"
                    "01:00:00.000 --> 01:00:01.000\r\nLater\r\n".encode("utf-8"))
    cues = read_subtitles(str(vtt))
    assert [(c.start, c.end, c.lines) for c in cues] == [(1.0, 2.5, ("Hello & welcome",)), (3600.0, 3601.0, ("Later",))]
    srt = tmp_path / "x.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nOne\n2\n00:00:03,000 --> 00:00:04,000\nTwo\n", encoding="utf-8")
    assert [c.lines for c in read_subtitles(str(srt))] == [("One",), ("Two",)]
    broken = tmp_path / "broken.srt"
    broken.write_text("1\n00:00:01 --> soon\nx\n", encoding="utf-8")
    with pytest.raises(MediaError, match="line 2"):
        read_subtitles(str(broken))


# -- the command ---------------------------------------------------------------------------------

def wm(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_wm_qc_reports_and_exits_with_the_qc_code(tmp_path):
    path = tmp_path / "bad.srt"
    path.write_text(BAD_SRT, encoding="utf-8")
    result = wm("qc", str(path), "--fps", "25")
    assert result.exit_code == EXIT_QC
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"{path}: 6 cues checked against netflix at 25.000 fps:")
    assert any(" error min-gap cue 1 at 00:00:01:10: gap of 1 frames to cue 2 < 2; fix: end at 00:00:01:09" in ln
               for ln in lines)
    data = json.loads(wm("qc", str(path), "--fps", "25", "--json").output)
    assert data["errors"] == sum(v["severity"] == "error" for v in data["violations"]) and data["cues"] == 6
    assert {"rule", "cue", "timecode", "problem", "fix", "severity"} <= set(data["violations"][0])


def test_wm_qc_exit_zero_on_our_output_and_rules_from_flags(tmp_path):
    t = timed_transcript(fps=Fraction(25))
    with plugin_host() as host:
        import io

        buf = io.StringIO()
        host.output_formats()["srt"].write(t, buf, {"layout": "netflix"})
    path = tmp_path / "ours.srt"
    path.write_text(buf.getvalue(), encoding="utf-8")
    result = wm("qc", str(path), "--fps", "25")
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.output
    # the same file against a narrower rule: lines over 30 characters are now errors
    narrow = wm("qc", str(path), "--fps", "25", "--max-line-width", "30")
    assert narrow.exit_code == EXIT_QC and "line-length" in narrow.output
    bbc = wm("qc", str(path), "--fps", "25", "--layout", "bbc")
    assert "against bbc" in bbc.output


def test_wm_qc_usage_and_input_errors(tmp_path):
    missing = wm("qc", str(tmp_path / "nope.srt"))
    assert missing.exit_code == EXIT_INPUT and "nope.srt" in missing.output
    assert wm("qc", str(tmp_path / "x.srt"), "--layout", "raw").exit_code == EXIT_USAGE
    bad = wm("qc", str(tmp_path / "x.srt"), "--fps", "fast")
    assert bad.exit_code == EXIT_USAGE and "--fps" in bad.output


def test_cut_lists(tmp_path):
    from whispermedia.shots import read_cut_list

    cuts = tmp_path / "cuts.txt"
    cuts.write_text("# cuts from the edit\n12.5\n00:00:20.250\n00:00:30:12  # frames\n\n", encoding="utf-8")
    assert read_cut_list(str(cuts), Fraction(24)) == (12.5, 20.25, 30.5)
    with pytest.raises(MediaError, match="frame rate"):
        read_cut_list(str(cuts), None)
    (tmp_path / "bad.txt").write_text("soon\n", encoding="utf-8")
    with pytest.raises(MediaError, match="line 1"):
        read_cut_list(str(tmp_path / "bad.txt"))


# -- wm run: word timing turned on for layouts, the layout flags, --qc ------------------------

@pytest.fixture
def engine(monkeypatch):
    import whispermedia
    from test_cli import FakeEngine

    class Engine(FakeEngine):  # the transcript carries the options it was made with, as the pipeline's does
        def transcribe(self, audio, *, options=None, **kwargs):
            t = super().transcribe(audio, options=options, **kwargs)
            return dataclasses.replace(t, info=dataclasses.replace(t.info, options=options))

    fake = Engine()
    monkeypatch.setitem(vars(whispermedia), "load_model", fake.load_model)
    monkeypatch.setitem(vars(whispermedia), "transcribe", fake.transcribe)
    return fake


@pytest.mark.parametrize("args, words", [
    (["-p", "srt"], True),  # the default layout breaks between words
    (["-p", "vtt", "--layout", "bbc"], True),
    (["-p", "txt"], False),  # no layout format
    (["-p", "srt", "--layout", "raw"], False),
    (["-p", "srt", "--preset", "openai"], False),  # openai's writer: words only when asked
    (["-p", "srt", "--preset", "openai", "--word_timestamps", "True"], True),
])
def test_wm_run_turns_word_timing_on_when_the_layout_needs_it(tmp_path, engine, args, words):
    from test_cli import media, wm as run_wm

    result = run_wm("run", "-l", "en", *args, str(media(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert engine.calls[0]["options"].word_timestamps is words


def test_wm_run_layout_flags_reach_the_writer_and_qc_prints_the_summary(tmp_path, engine):
    from test_cli import media, wm as run_wm

    video = media(tmp_path)
    result = run_wm("run", "-l", "en", "-p", "srt", "--layout", "netflix", "--max_line_width", "20", "--fps", "25",
                    "--qc", str(video))
    assert result.exit_code == 0, result.stderr
    options = engine.calls[0]["options"]
    assert (options.layout, options.max_line_width, options.fps) == ("netflix", 20, 25)
    srt = (tmp_path / "talk.srt").read_text(encoding="utf-8")
    assert max(len(line) for line in srt.splitlines()) <= 29  # timing lines are 29 characters; text <= 20
    assert re.search(r"talk\.srt: qc: \d+ cues checked against netflix at 25\.000 fps: 0 errors", result.stderr)
    bad = run_wm("run", "-p", "srt", "--layout", "nope", str(video))
    assert bad.exit_code == EXIT_USAGE
    missing = run_wm("run", "-p", "srt", "--shot-changes", str(tmp_path / "cuts.txt"), str(video))
    assert missing.exit_code == EXIT_USAGE and "--shot-changes: no such cut list" in missing.stderr
    assert len(engine.calls) == 1  # refused before transcribing


# -- shot changes from a real video ----------------------------------------------------------------

def test_cuts_are_detected_to_the_frame_and_qc_reads_the_videos_rate(tmp_path):
    from subtitle_media import make_speech_video
    from whispermedia.layout.frames import FrameGrid
    from whispermedia.shots import detect_cuts

    fps = Fraction(30000, 1001)
    video = make_speech_video(tmp_path / "cuts.mp4", fps)
    grid = FrameGrid(fps)
    assert [grid.nearest(c) for c in detect_cuts(str(video.path))] == [grid.nearest(c) for c in video.cuts]
    # a cue starting 3 frames after the first cut and one ending on the second cut
    c1, c2 = video.cuts[0], video.cuts[1]
    srt = tmp_path / "cuts.srt"
    t = lambda s: f"00:00:{int(s):02d},{round((s % 1) * 1000):03d}"  # noqa: E731
    srt.write_text(f"1\n{t(grid.seconds(grid.nearest(c1) + 3))} --> {t(grid.seconds(grid.nearest(c2)))}\nHello.\n",
                   encoding="utf-8")
    data = json.loads(wm("qc", str(srt), "--video", str(video.path), "--json").output)
    assert data["fps"] == "30000/1001"
    assert [(v["rule"], v["problem"]) for v in data["violations"]] == [
        ("shot-change", "in-time 3 frames from a cut"), ("shot-change", "out-time +0 frames from a cut")]
    quiet = json.loads(wm("qc", str(srt), "--video", str(video.path), "--shot-changes", "off", "--json").output)
    assert quiet["violations"] == []
