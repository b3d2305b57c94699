"""Subtitle formats through the layout engine: golden files per preset and format, real
parsers reading every file back with the same cues, openai-whisper's writer reproduced byte
for byte under the ``openai`` layout, escaping, karaoke."""

from __future__ import annotations

import dataclasses
import html
import io
import re
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest

from layout_samples import timed_transcript
from test_formats import check_golden
from whispermedia.layout.engine import lay_out
from whispermedia.layout.frames import FrameGrid
from whispermedia.layout.rules import rules_for
from whispermedia.options import TranscribeOptions
from whispermedia.output import format_timestamp, to_milliseconds
from whispermedia.testing import plugin_host, sample_transcript

GOLDEN_CASES = [  # (golden file, format, format options)
    ("sample.default.srt", "srt", {}),
    ("sample.netflix.srt", "srt", {"layout": "netflix", "fps": "23.976"}),
    ("sample.netflix-other.srt", "srt", {"layout": "netflix-other", "fps": "25"}),
    ("sample.bbc.srt", "srt", {"layout": "bbc", "fps": "25"}),
    ("sample.default.vtt", "vtt", {}),
    ("sample.karaoke.vtt", "vtt", {"layout": "netflix", "highlight_words": True}),
    ("sample.default.ass", "ass", {}),
    ("sample.karaoke.ass", "ass", {"highlight_words": True}),
    ("sample.netflix.ttml", "ttml", {"layout": "netflix", "fps": "23.976"}),
    ("sample.openai-42x2.srt", "srt", {"layout": "openai", "max_line_width": 42, "max_line_count": 2}),
    ("sample.openai-highlight.vtt", "vtt", {"layout": "openai", "highlight_words": True}),
    ("long.netflix.srt", "srt", {"layout": "netflix", "fps": "25"}),
    ("long.bbc.vtt", "vtt", {"layout": "bbc", "fps": "25"}),
]


@pytest.fixture(scope="module")
def host():
    with plugin_host() as h:
        yield h


def render(host, name, transcript, options):
    buf = io.StringIO(newline="\n")
    host.output_formats()[name].write(transcript, buf, options)
    return buf.getvalue()


def transcript_for(golden: str):
    return timed_transcript(fps=Fraction(25)) if golden.startswith("long.") else sample_transcript()


@pytest.mark.parametrize("golden, fmt, options", GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_golden(host, golden, fmt, options):
    check_golden(golden, render(host, fmt, transcript_for(golden), options))


def test_every_layout_format_has_golden_files(host):
    layout_formats = {n for n, f in host.output_formats().items() if f.uses_layout}
    assert layout_formats == {"srt", "vtt", "ass", "ttml"}
    assert layout_formats <= {fmt for _, fmt, _ in GOLDEN_CASES}


# -- read back by real parsers ---------------------------------------------------------------

def _transcripts():
    long = timed_transcript(fps=Fraction(24000, 1001), speech=True)
    tricky = timed_transcript("Press <Enter> & then type --> to continue. A {brace} and a back\\slash.",
                              fps=Fraction(25))
    return [sample_transcript(), long, tricky]


LAYOUTS = [{"layout": "default"}, {"layout": "netflix"}, {"layout": "bbc"}, {"layout": "raw"}]


def _expected(transcript, options):
    from whispermedia.layout.engine import layout_for
    from whispermedia.layout.settings import layout_settings

    return layout_for(transcript, layout_settings(transcript, options)).cues


@pytest.mark.parametrize("options", LAYOUTS, ids=lambda o: o["layout"])
def test_srt_reads_back_with_srt_and_pysubs2(host, options):
    srt = pytest.importorskip("srt")
    pysubs2 = pytest.importorskip("pysubs2")
    for t in _transcripts():
        text = render(host, "srt", t, options)
        cues = _expected(t, options)
        parsed = list(srt.parse(text))
        assert [p.index for p in parsed] == list(range(1, len(cues) + 1))
        assert [p.content for p in parsed] == ["\n".join(c.text_lines) for c in cues]
        assert [round(p.start.total_seconds() * 1000) for p in parsed] == [to_milliseconds(c.start) for c in cues]
        subs = pysubs2.SSAFile.from_string(text, format_="srt")
        assert [e.start for e in subs] == [to_milliseconds(c.start) for c in cues]
        assert [e.end for e in subs] == [to_milliseconds(c.end) for c in cues]


@pytest.mark.parametrize("options", LAYOUTS + [{"layout": "netflix", "highlight_words": True}],
                         ids=lambda o: o["layout"] + ("-karaoke" if o.get("highlight_words") else ""))
def test_vtt_reads_back_with_webvtt_and_pysubs2(host, options, tmp_path):
    webvtt = pytest.importorskip("webvtt")
    pysubs2 = pytest.importorskip("pysubs2")
    for t in _transcripts():
        text = render(host, "vtt", t, options)
        cues = _expected(t, options)
        path = tmp_path / "out.vtt"
        path.write_text(text, encoding="utf-8")
        parsed = webvtt.read(str(path))
        assert len(parsed.captions) == len(cues)
        for caption, cue in zip(parsed.captions, cues):
            assert (caption.start, caption.end) == (format_timestamp(cue.start, "."), format_timestamp(cue.end, "."))
            # tags (karaoke timestamps) out and entities decoded: what the viewer reads
            shown = html.unescape(re.sub(r"<[^>]+>", "", caption.raw_text))
            assert shown == "\n".join(cue.text_lines)
        if options.get("highlight_words"):
            continue  # pysubs2 takes any line with two timestamps for a timing line (karaoke lines have them)
        subs = pysubs2.SSAFile.from_string(text, format_="vtt")
        assert [e.start for e in subs] == [to_milliseconds(c.start) for c in cues]
        # pysubs2 keeps WebVTT's entities as written and reads {...} as an ASS override block
        assert [html.unescape(e.plaintext) for e in subs] == [re.sub(r"\{[^}]*\}", "", "\n".join(c.text_lines))
                                                              for c in cues]


def test_vtt_karaoke_timestamps_are_inside_the_cue_and_increasing(host):
    t = timed_transcript(fps=Fraction(25), speech=True)
    text = render(host, "vtt", t, {"layout": "netflix", "highlight_words": True})
    blocks = text.split("\n\n")[1:-1]
    assert len(blocks) == len(_expected(t, {"layout": "netflix"}))  # one cue per subtitle, not per word
    def ms(stamp):
        h, m, s = stamp.split(":")
        return round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)
    for block in blocks:
        timing, payload = block.split("\n", 1)
        start, end = (ms(x) for x in timing.split(" --> "))
        stamps = [ms(x) for x in re.findall(r"<(\d\d:\d\d:\d\d\.\d{3})>", payload)]
        assert stamps == sorted(set(stamps))
        assert all(start < s < end for s in stamps)
        assert len(stamps) == len(re.sub(r"<[^>]+>", "", payload).split()) - 1


def test_ass_reads_back_with_pysubs2(host):
    pysubs2 = pytest.importorskip("pysubs2")
    for options in ({}, {"highlight_words": True}):
        for t in _transcripts():
            text = render(host, "ass", t, options)
            cues = _expected(t, options)
            subs = pysubs2.SSAFile.from_string(text, format_="ass")
            assert len(subs) == len(cues)
            for event, cue in zip(subs, cues):
                assert abs(event.start - cue.start * 1000) <= 5 and abs(event.end - cue.end * 1000) <= 5
                shown = re.sub(r"\{[^}]*\}", "", event.text.replace("\\{", "\x00").replace("\\}", "\x01"))
                shown = shown.replace("\x00", "{").replace("\x01", "}").replace("\\\u2060", "\\")
                assert shown.split("\\N") == list(cue.text_lines)
                if options:
                    ks = [int(k) for k in re.findall(r"\\k(\d+)", event.text)]
                    assert len(ks) == len(cue.words)
                    assert sum(ks) == round(cue.end * 100) - round(cue.start * 100)


def test_ttml_is_imsc11_text_and_reads_back_with_ttconv(host):
    pytest.importorskip("ttconv")
    from ttconv.filters.doc.imsc11text import IMSC11TextFilter
    from ttconv.imsc.reader import to_model

    for options in ({"layout": "netflix"}, {"layout": "raw"}, {"layout": "bbc", "fps": "29.97"}):
        for t in _transcripts():
            text = render(host, "ttml", t, options)
            doc = to_model(ET.ElementTree(ET.fromstring(text.encode("utf-8"))))
            IMSC11TextFilter().process(doc)  # raises on an IMSC 1.1 Text profile violation
            cues = _expected(t, options)
            ps = [p for div in doc.get_body() for p in div]
            assert len(ps) == len(cues)
            for p, cue in zip(ps, cues):
                begin = p.get_begin() or 0
                assert float(begin) == pytest.approx(cue.start, abs=1e-6)
                assert float(p.get_end()) == pytest.approx(cue.end, abs=1e-6)
                lines, current = [], []
                for child in p:
                    if type(child).__name__ == "Br":
                        lines.append("".join(current))
                        current = []
                    else:
                        current.extend(text_node.get_text() for text_node in child)
                lines.append("".join(current))
                assert tuple(lines) == cue.text_lines


def test_ttml_frame_times_are_exact_frames(host):
    t = timed_transcript(fps=Fraction(24000, 1001))
    text = render(host, "ttml", t, {"layout": "netflix"})
    assert 'ttp:frameRate="24" ttp:frameRateMultiplier="1000 1001"' in text
    frames = [int(f) for f in re.findall(r'"(\d+)f"', text)]
    layout = lay_out(t, rules_for("netflix"))
    assert frames == [f for c in layout.cues for f in (c.in_frame, c.out_frame)]


# -- openai-whisper's own writer -----------------------------------------------------------------

OPENAI_CASES = [{}, {"max_line_width": 42, "max_line_count": 2}, {"max_line_width": 20, "max_line_count": 1},
                {"highlight_words": True}, {"max_words_per_line": 3},
                {"max_line_width": 30, "max_line_count": 2, "highlight_words": True}]


@pytest.mark.parametrize("openai_options", OPENAI_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
                         or "plain")
@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_openai_layout_is_openai_whispers_writer_byte_for_byte(host, fmt, openai_options):
    utils = pytest.importorskip("whisper.utils")
    writer_class = utils.WriteSRT if fmt == "srt" else utils.WriteVTT
    for t in (sample_transcript(), timed_transcript(fps=Fraction(25)),
              dataclasses.replace(sample_transcript(),
                                  segments=tuple(dataclasses.replace(s, words=None)
                                                 for s in sample_transcript().segments))):
        result = t.to_dict()
        if t.segments[0].words is None:
            for segment in result["segments"]:
                segment.pop("words", None)
        expected = io.StringIO()
        writer_class(".").write_result(result, expected, {"max_line_width": None, "max_line_count": None,
                                                          "highlight_words": False, "max_words_per_line": None,
                                                          **openai_options})
        ours = render(host, fmt, t, {"layout": "openai", **openai_options})
        assert ours == expected.getvalue()


def test_openai_preset_means_the_openai_layout(host):
    t = sample_transcript()
    t = dataclasses.replace(t, info=dataclasses.replace(t.info, options=TranscribeOptions.from_kwargs("openai")))
    assert render(host, "srt", t, {}) == render(host, "srt", t, {"layout": "openai"})


# -- escaping --------------------------------------------------------------------------------

def test_every_writer_escapes(host):
    t = timed_transcript("Press <Enter> & then type --> now. A {brace} and a back\\Nslash.", fps=Fraction(25))
    vtt = render(host, "vtt", t, {"layout": "netflix"})
    body = vtt.split("\n\n", 1)[1]
    payload = [ln for ln in body.splitlines() if ln and "-->" not in ln or ln.count("-->") > 1]
    assert "&lt;Enter> &amp; then type --&gt; now." in vtt
    assert not any("-->" in ln for ln in payload)
    ttml = render(host, "ttml", t, {"layout": "netflix"})
    ET.fromstring(ttml.encode())  # well-formed
    assert "&lt;Enter&gt; &amp;" in ttml
    ass = render(host, "ass", t, {"layout": "netflix"})
    dialogue = "".join(ln for ln in ass.splitlines() if ln.startswith("Dialogue:"))
    assert "\\{brace\\}" in dialogue and "back\\\u2060Nslash" in dialogue


def test_a_frame_grid_puts_every_time_on_a_frame(host):
    for fps in (Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001), Fraction(60000, 1001)):
        t = timed_transcript(fps=fps)
        grid = FrameGrid(fps)
        text = render(host, "srt", t, {"layout": "netflix"})
        for h, m, s, ms in re.findall(r"(\d\d):(\d\d):(\d\d),(\d{3})", text):
            assert grid.on_grid(int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000)
