"""Subtitle QC counts and the cost of the layout, on one real-speech video.

    python bench/subtitle_qc.py --model base --fps 23.976 --repeat 4 --out /tmp/subqc

Builds a video from the repo's clips (tests/subtitle_media.py: silences of 0.35 s to 3 s, hard
cuts near speech edges; ``--repeat 4`` is about three minutes), transcribes it with the
``default`` decoding preset without and with word timestamps and with ``--preset openai`` and
word timestamps, writes SRT four ways and checks each with ``wm qc``'s rules (the ``netflix``
preset, the video's frame rate and its detected shot changes):

- ``raw``: one cue per segment (what ``wm run -p srt`` wrote before the layout engine);
- ``default``: our default layout (``wm run -p srt``);
- ``netflix``: ``--layout netflix``;
- ``openai 42x2``: openai-whisper's own ``WriteSRT`` with ``max_line_width=42,
  max_line_count=2`` on the openai-preset transcript (and our ``--preset openai`` layout is
  checked to give the same bytes).

It prints a Markdown table of the counts per rule, the cues that start more than 0.3 s before
their speech (over the silence between clips; not counting in-times snapped to a cut), and the
times: transcription without and
with word timestamps, shot-change detection, layout and QC.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import whispermedia as wm  # noqa: E402
from subtitle_media import make_speech_video  # noqa: E402
from whispermedia.layout.engine import lay_out  # noqa: E402
from whispermedia.layout.frames import parse_fps  # noqa: E402
from whispermedia.layout.rules import rules_for  # noqa: E402
from whispermedia.options import TranscribeOptions  # noqa: E402
from whispermedia.qc import check  # noqa: E402
from whispermedia.shots import detect_cuts  # noqa: E402
from whispermedia.subtitle_files import read_subtitles  # noqa: E402
from whispermedia.testing import plugin_host  # noqa: E402

RULES = ("line-length", "line-count", "min-duration", "max-duration", "min-gap", "overlap", "frame-grid",
         "reading-speed", "chaining", "shot-change")


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _early(start: float, clips, cuts) -> bool:
    """A cue that starts over the silence between clips more than 0.3 s before the next clip's
    audio (the clips' own first 0.1-0.3 s is quiet too, so this undercounts), and not on a shot
    change (an in-time snapped to a cut just before the speech is the guide's rule)."""
    if any(a <= start < b for a, b in clips) or any(abs(start - c) < 0.021 for c in cuts):
        return False
    later = [a for a, _ in clips if a > start]
    return bool(later) and later[0] - start > 0.3


def _srt(host, transcript, options) -> str:
    buf = io.StringIO()
    host.output_formats()["srt"].write(transcript, buf, options)
    return buf.getvalue()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="base")
    p.add_argument("--fps", default="23.976")
    p.add_argument("--repeat", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("/tmp/subtitle_qc"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fps = parse_fps(args.fps)
    video = make_speech_video(args.out / "talk.mp4", fps, repeat=args.repeat)
    print(f"video: {video.path} {video.duration:.1f} s at {float(fps):.3f} fps, {len(video.cuts)} cuts", file=sys.stderr)

    model = wm.load_model(args.model)
    run = lambda **kw: wm.transcribe(str(video.path), model=model,  # noqa: E731
                                     options=TranscribeOptions.from_kwargs(language="en", **kw))
    plain, t_plain = _timed(lambda: run())
    words, t_words = _timed(lambda: run(word_timestamps=True))
    openai, t_openai = _timed(lambda: run(preset="openai", word_timestamps=True))
    cuts, t_cuts = _timed(lambda: detect_cuts(str(video.path)))
    found = sum(any(abs(c - k) < 0.5 / float(fps) for k in cuts) for c in video.cuts)

    netflix = rules_for("netflix")
    layout_runs = 20
    _, t_layout = _timed(lambda: [lay_out(words, netflix, cuts=cuts) for _ in range(layout_runs)])
    t_layout /= layout_runs

    with plugin_host() as host:
        files = {
            "raw (before the engine)": _srt(host, plain, {"layout": "raw"}),
            "default": _srt(host, words, {}),
            "netflix": _srt(host, words, {"layout": "netflix"}),
        }
        from whisper.utils import WriteSRT

        expected = io.StringIO()
        WriteSRT(str(args.out)).write_result(openai.to_dict(), expected, {
            "max_line_width": 42, "max_line_count": 2, "highlight_words": False, "max_words_per_line": None})
        files["openai-whisper WriteSRT 42x2"] = expected.getvalue()
        ours = _srt(host, openai, {"max_line_width": 42, "max_line_count": 2})
        same = "identical" if ours == expected.getvalue() else "DIFFERENT"

    rows = []
    t_qc = 0.0
    for name, text in files.items():
        path = args.out / (name.split()[0] + ".srt")
        path.write_text(text, encoding="utf-8")
        report, t = _timed(lambda: check(read_subtitles(str(path)), netflix, fps=fps, cuts=cuts))
        t_qc = max(t_qc, t)
        counts = report.counts()
        early = sum(_early(c.start, video.clips, cuts) for c in read_subtitles(str(path)))
        rows.append((name, report.cues, report.errors, report.warnings, counts,
                     100.0 * report.within_reading_speed / max(report.cues, 1), early))
    print(f"| SRT | cues | errors | warnings | {' | '.join(RULES)} | within 20 cps | early starts |")
    print("|---" * (len(RULES) + 6) + "|")
    for name, cues, errors, warnings, counts, within, early in rows:
        print(f"| {name} | {cues} | {errors} | {warnings} | " + " | ".join(str(counts.get(r, 0)) for r in RULES)
              + f" | {within:.0f}% | {early} |")
    print()
    print(f"transcription ({args.model}, CPU): {t_plain:.1f} s without word timestamps, {t_words:.1f} s with "
          f"(+{100 * (t_words - t_plain) / t_plain:.0f}%); openai preset with words {t_openai:.1f} s")
    print(f"shot changes: {t_cuts:.2f} s to decode and detect ({found}/{len(video.cuts)} made cuts found, "
          f"{len(cuts)} detected); layout (netflix): {1000 * t_layout:.1f} ms for "
          f"{sum(len(s.words or ()) for s in words.segments)} words; QC: {1000 * t_qc:.1f} ms per file")
    print(f"our --preset openai --max-line-width 42 --max-line-count 2 vs openai-whisper's WriteSRT: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
