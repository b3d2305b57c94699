"""Built-in output formats against golden files, format invariants, and atomic writing.

Golden files live in tests/golden/ and are rendered from whispermedia.testing.sample_transcript().
After an intended change to a format, regenerate them and review the diff:

    WM_REGEN_GOLDEN=1 python -m pytest tests/test_formats.py
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

from whispermedia.cli_render import EXIT_OUTPUT, exit_code_for
from whispermedia.errors import OutputError, PluginError
from whispermedia.output import format_timestamp, output_path, to_milliseconds, write
from whispermedia.registry import OutputFormat
from whispermedia.testing import plugin_host, sample_transcript

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("WM_REGEN_GOLDEN") == "1"
BUILTIN_FORMATS = ("ass", "json", "srt", "tsv", "ttml", "txt", "vtt", "otio", "edl", "fcpxml")
EXAMPLE_PLUGIN = Path(__file__).parent / "example_plugin" / "whispermedia_example_plugin.py"


@pytest.fixture
def host(monkeypatch):
    for var in ("WM_DISABLE_PLUGINS", "WM_LOAD_PLUGINS", "WM_STRICT_PLUGINS", "WM_TRACE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    with plugin_host() as h:
        yield h


def render(fmt: OutputFormat, transcript=None, options=None) -> str:
    buf = io.StringIO(newline="\n")
    fmt.write(transcript if transcript is not None else sample_transcript(), buf, options or {})
    return buf.getvalue()


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        pytest.skip(f"regenerated {path}")
    assert path.exists(), f"no golden file {path}; run with WM_REGEN_GOLDEN=1 to create it"
    assert text == path.read_bytes().decode("utf-8")


def with_segment_texts(*texts: str):
    """The sample transcript with its segments' texts replaced (timings kept)."""
    t = sample_transcript()
    segments = tuple(dataclasses.replace(s, text=text) for s, text in zip(t.segments, texts))
    return dataclasses.replace(t, segments=segments)


def load_example_plugin():
    """The example third-party plugin, installed or straight from its source file."""
    try:
        return importlib.import_module("whispermedia_example_plugin")
    except ImportError:
        spec = importlib.util.spec_from_file_location("whispermedia_example_plugin", EXAMPLE_PLUGIN)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


# --- golden files ---------------------------------------------------------------------------


def test_every_builtin_format_has_a_golden_test(host):
    builtin = {n for n, f in host.output_formats().items() if f.plugin.startswith("whispermedia_plugins.")}
    assert builtin == set(BUILTIN_FORMATS)


def _skip_without_extra(fmt: OutputFormat) -> None:
    from whispermedia.errors import MissingDependency

    try:
        fmt.check and fmt.check()
    except MissingDependency as e:  # the timeline extra is not installed here (CI installs it)
        pytest.skip(str(e))


@pytest.mark.parametrize("name", BUILTIN_FORMATS)
def test_golden(host, name):
    """The segment-level files, unchanged since before the layout engine: the ``raw`` layout
    (tests/test_layout_formats.py has the other layouts' golden files)."""
    fmt = host.output_formats()[name]
    _skip_without_extra(fmt)
    check_golden(f"sample.{fmt.extension}", render(fmt, options={"layout": "raw"}))


@pytest.mark.parametrize("name", BUILTIN_FORMATS)
def test_written_file_is_the_rendered_text(host, tmp_path, name):
    _skip_without_extra(host.output_formats()[name])
    path = write(sample_transcript(), name, tmp_path / f"out.{name}")
    assert path.read_bytes() == render(host.output_formats()[name]).encode("utf-8")


def test_example_plugin_golden(tmp_path):
    with plugin_host(load_example_plugin()) as host:
        fmt = host.output_formats()["words-csv"]
        assert fmt.needs_words and fmt.extension == "words.csv"
        check_golden("sample.words.csv", render(fmt))


# --- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize("seconds, srt", [
    (0.0, "00:00:00,000"),
    (1.9999999, "00:00:02,000"),
    (6.9999999, "00:00:07,000"),
    (0.0005, "00:00:00,001"),
    (59.9996, "00:01:00,000"),
    (3723.4, "01:02:03,400"),
    (0.1 + 0.2, "00:00:00,300"),
    (360000.0, "100:00:00,000"),
    (-1e-9, "00:00:00,000"),
])
def test_format_timestamp(seconds, srt):
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, ".") == srt.replace(",", ".")


def test_negative_time_is_an_error():
    with pytest.raises(ValueError):
        to_milliseconds(-0.5)


# --- SRT ------------------------------------------------------------------------------------

RAW = {"layout": "raw"}  # one cue per segment: what these segment-level tests are about

SRT_CUE = re.compile(r"(\d+)\n(\d{2,}:\d\d:\d\d,\d{3}) --> (\d{2,}:\d\d:\d\d,\d{3})\n((?:.+\n)+)")


def parse_srt(text: str):
    """Cues as (index, start, end, text); fails on anything that is not a well-formed cue."""
    assert text.endswith("\n\n")
    cues = []
    for block in text[:-2].split("\n\n"):
        m = SRT_CUE.fullmatch(block + "\n")
        assert m, f"malformed SRT cue: {block!r}"
        cues.append((int(m[1]), m[2], m[3], m[4].rstrip("\n")))
    return cues


def test_srt_parses_back(host):
    transcript = sample_transcript()
    cues = parse_srt(render(host.output_formats()["srt"], transcript, RAW))
    assert [c[0] for c in cues] == list(range(1, len(transcript.segments) + 1))
    for cue, segment in zip(cues, transcript.segments):
        assert cue[1] == format_timestamp(segment.start)
        assert cue[2] == format_timestamp(segment.end)
        assert cue[3] == segment.text.strip()


def test_srt_numbering_stays_continuous_over_empty_segments(host):
    transcript = with_segment_texts(" One.", "   ", " Three.", "")
    cues = parse_srt(render(host.output_formats()["srt"], transcript, RAW))
    assert [(c[0], c[3]) for c in cues] == [(1, "One."), (2, "Three.")]


def test_srt_cue_text_never_holds_a_blank_line(host):
    transcript = with_segment_texts(" First line\n\n  second line ", " b", " c", " d")
    cues = parse_srt(render(host.output_formats()["srt"], transcript, RAW))
    assert cues[0][3] == "First line\nsecond line"


def test_srt_end_never_before_start(host):
    t = sample_transcript()
    backwards = dataclasses.replace(t.segments[0], start=2.0, end=1.5)
    t = dataclasses.replace(t, segments=(backwards,))
    (cue,) = parse_srt(render(host.output_formats()["srt"], t, RAW))
    assert cue[1] == cue[2] == "00:00:02,000"


# --- WebVTT ---------------------------------------------------------------------------------


def vtt_payloads(text: str):
    assert text.startswith("WEBVTT\n\n")
    blocks = text[len("WEBVTT\n\n"):].rstrip("\n").split("\n\n")
    out = []
    for block in blocks:
        timing, payload = block.split("\n", 1)
        assert re.fullmatch(r"\d{2,}:\d\d:\d\d\.\d{3} --> \d{2,}:\d\d:\d\d\.\d{3}", timing)
        out.append(payload)
    return out


def test_vtt_escapes_what_the_spec_forbids(host):
    payloads = vtt_payloads(render(host.output_formats()["vtt"]))
    assert payloads[1] == "Press &lt;Enter> &amp; then type --&gt; to continue."
    for payload in payloads:
        assert "-->" not in payload and "<" not in payload
        assert not re.search(r"&(?!amp;|lt;|gt;)", payload)  # every & starts an entity


def test_vtt_escapes_are_not_applied_twice(host):
    transcript = with_segment_texts(" &amp; &lt; ->> --->", " b", " c", " d")
    payloads = vtt_payloads(render(host.output_formats()["vtt"], transcript, RAW))
    assert payloads[0] == "&amp;amp; &amp;lt; ->> ---&gt;"


# --- TSV, TXT, JSON -------------------------------------------------------------------------


def test_tsv_is_integer_milliseconds_and_one_line_per_segment(host):
    transcript = with_segment_texts(" a\tb", " two\nlines", " c", " d")
    lines = render(host.output_formats()["tsv"], transcript).splitlines()
    assert lines[0] == "start\tend\ttext"
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == 3 and row[0].isdigit() and row[1].isdigit() for row in rows)
    assert rows[0][2] == "a b" and rows[1] == ["2480", "7000", "two lines"]


def test_txt_is_one_stripped_line_per_segment(host):
    transcript = with_segment_texts(" a \n b ", "", " c", " d ")
    assert render(host.output_formats()["txt"], transcript) == "a b\nc\nd\n"


def test_json_is_the_transcript_dict_unescaped(host):
    text = render(host.output_formats()["json"])
    assert "Zoë" in text  # ensure_ascii=False
    assert json.loads(text) == json.loads(json.dumps(sample_transcript().to_dict()))


# --- whispermedia.output.write --------------------------------------------------------------


def test_write_refuses_to_replace_without_overwrite(host, tmp_path):
    path = tmp_path / "talk.srt"
    path.write_text("keep me", encoding="utf-8")
    with pytest.raises(OutputError) as err:
        write(sample_transcript(), "srt", path)
    assert exit_code_for(err.value) == EXIT_OUTPUT
    assert "overwrite=True" in str(err.value) and "--overwrite" not in str(err.value) and str(path) in str(err.value)
    assert path.read_text(encoding="utf-8") == "keep me"


def test_write_with_overwrite_replaces(host, tmp_path):
    path = tmp_path / "talk.txt"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o640)
    write(sample_transcript(), "txt", path, overwrite=True)
    assert path.read_text(encoding="utf-8").startswith("Welcome back")
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o640  # the replaced file's permissions are kept


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_new_file_gets_default_permissions_not_the_temp_files(host, tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = write(sample_transcript(), "txt", tmp_path / "talk.txt")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def broken_format(after_text: str = "half a file") -> OutputFormat:
    def write_then_fail(transcript, fp, options):
        fp.write(after_text)
        raise RuntimeError("renderer bug")

    return OutputFormat("broken", "srt", write_then_fail, plugin="tests")


def test_failing_format_leaves_existing_file_and_no_temp_files(host, tmp_path):
    path = tmp_path / "talk.srt"
    path.write_text("keep me", encoding="utf-8")
    with pytest.raises(PluginError, match="'broken'.*renderer bug"):
        write(sample_transcript(), broken_format(), path, overwrite=True)
    assert path.read_text(encoding="utf-8") == "keep me"
    assert os.listdir(tmp_path) == ["talk.srt"]


def test_failing_format_creates_nothing(host, tmp_path):
    with pytest.raises(PluginError):
        write(sample_transcript(), broken_format(), tmp_path / "new.srt")
    assert os.listdir(tmp_path) == []


def test_interrupt_while_writing_cleans_up(host, tmp_path):
    def interrupted(transcript, fp, options):
        fp.write("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write(sample_transcript(), OutputFormat("slow", "txt", interrupted), tmp_path / "x.txt")
    assert os.listdir(tmp_path) == []


def test_options_reach_the_format_read_only(host, tmp_path):
    seen = {}

    def record(transcript, fp, options):
        seen.update(options)
        with pytest.raises(TypeError):
            options["max_line_width"] = 1  # type: ignore[index]

    write(sample_transcript(), OutputFormat("rec", "txt", record), tmp_path / "x.txt",
          options={"max_line_width": 42})
    assert seen == {"max_line_width": 42}


def test_words_needed_is_checked_before_writing(host, tmp_path):
    t = sample_transcript()
    t = dataclasses.replace(t, segments=tuple(dataclasses.replace(s, words=None) for s in t.segments))
    fmt = OutputFormat("words", "csv", lambda *a: None, needs_words=True)
    with pytest.raises(OutputError, match="word timestamps"):
        write(t, fmt, tmp_path / "x.csv")
    assert os.listdir(tmp_path) == []


def test_unknown_format_name_lists_known(host, tmp_path):
    with pytest.raises(PluginError, match=r"unknown output format 'str'; known: ass, edl, fcpxml, json, otio, srt, tsv, ttml, txt, vtt"):
        write(sample_transcript(), "str", tmp_path / "x.srt")


def test_write_to_a_directory_is_an_output_error(host, tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        write(sample_transcript(), "srt", tmp_path, overwrite=True)


def test_write_into_a_missing_directory_is_an_output_error(host, tmp_path):
    with pytest.raises(OutputError):
        write(sample_transcript(), "srt", tmp_path / "nope" / "x.srt")


def test_output_path(host, tmp_path):
    assert output_path("media/video.mp4", "srt") == Path("media/video.srt")
    assert output_path("video.mp4", "vtt", output_dir=tmp_path) == tmp_path / "video.vtt"
    assert output_path("archive.v2.mkv", "txt") == Path("archive.v2.txt")
    words = OutputFormat("words-csv", ".words.csv", lambda *a: None)
    assert output_path("talk.mp4", words) == Path("talk.words.csv")


def test_output_path_never_names_the_input(host):
    with pytest.raises(OutputError, match="replace the input"):
        output_path("subs/talk.srt", "srt")


@pytest.mark.skipif(sys.platform == "win32", reason="hard links and modes differ")
def test_no_clobber_even_if_the_file_appears_while_rendering(host, tmp_path):
    path = tmp_path / "race.txt"

    def racing(transcript, fp, options):
        path.write_text("someone else's", encoding="utf-8")  # appears after the exists() check
        fp.write("ours")

    with pytest.raises(OutputError, match="output exists"):
        write(sample_transcript(), OutputFormat("race", "txt", racing), path)
    assert path.read_text(encoding="utf-8") == "someone else's"
    assert os.listdir(tmp_path) == ["race.txt"]
