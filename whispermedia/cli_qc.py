"""``wm qc``: check a subtitle file against a layout preset; and the ``wm run --qc`` summary.

``wm qc FILE.srt|FILE.vtt [--layout NAME] [--video MEDIA | --fps F] [--json]`` prints one line
per violation (severity, rule, cue number, timecode, what is wrong, the proposed fix) and a
summary line on stdout; ``--json`` prints one JSON object instead. Exit codes: 0 when no hard
rule is broken (warnings allowed; with ``--strict`` none either), ``EXIT_QC`` (7) otherwise,
``EXIT_INPUT`` (3) for a file that cannot be read, ``EXIT_USAGE`` (2) for bad options.
The rule flags (``--max-line-width`` ...) are the ``TranscribeOptions`` fields of ``wm run``,
built from the same definitions.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import click

from whispermedia.cli_options import flag_of, option_params
from whispermedia.cli_render import EXIT_INPUT, EXIT_QC, EXIT_USAGE
from whispermedia.errors import WhisperMediaError
from whispermedia.layout.settings import RULE_OPTIONS
from whispermedia.options import OptionError, TranscribeOptions, parse_option

_QC_OPTIONS = ("layout", *RULE_OPTIONS, "fps", "shot_changes")


def _fail(message: str, code: int) -> click.exceptions.Exit:
    click.echo(f"wm: {message}", err=True)
    return click.exceptions.Exit(code)


def _rules(values: dict):
    from whispermedia.layout.rules import rules_for

    name = values.pop("layout", None) or "netflix"
    rules = rules_for(name)
    if rules.mode != "engine":
        raise OptionError("layout", f"{{layout}}: {name} has no rules to check against (use netflix, "
                                    f"netflix-other, bbc or default)")
    return rules.with_overrides(**{k: v for k, v in values.items() if k not in ("fps", "shot_changes")})


def run_qc(path: str, rules, *, fps=None, video: Optional[str] = None, shot_changes: str = "auto"):
    """The ``QcReport`` of subtitle file ``path``: the frame rate from ``fps`` or ``video``,
    shot changes detected in ``video`` (``auto``) or read from a cut list."""
    from whispermedia.qc import check
    from whispermedia.shots import detect_cuts, read_cut_list
    from whispermedia.subtitle_files import read_subtitles

    cues = read_subtitles(path)
    if video is not None and fps is None:
        from whispermedia.media import probe

        fps = probe(video).frame_rate
    cuts = ()
    if shot_changes == "auto" and video is not None:
        cuts = detect_cuts(video)
    elif shot_changes not in ("auto", "off"):
        cuts = read_cut_list(shot_changes, fps)
    return check(cues, rules, fps=fps, cuts=cuts)


@click.command("qc")
@click.argument("file", metavar="FILE.srt|FILE.vtt")
@click.option("--video", default=None, metavar="MEDIA", help="The video the subtitles are for: its frame rate, "
              "and its shot changes with --shot-changes auto.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--strict", is_flag=True, help="Warnings (reading speed, chaining, shot changes) fail too.")
def qc_command(file: str, video: Optional[str], as_json: bool, strict: bool, **values: Any) -> None:
    """Check a subtitle file against a layout preset (default: netflix).

    One line per violation on stdout, then a summary. Exit 0: no hard rule broken; 7: some
    are (with --strict, any violation); 3: the file cannot be read.
    """
    given = {}
    try:
        for name, value in values.items():
            if value is not None:
                given[name] = parse_option(TranscribeOptions, name, value) if isinstance(value, str) else value
        if given.get("fps") is not None and video is not None:
            raise OptionError("fps", "{fps} and --video both give the frame rate: use one")
        fps = given.get("fps")
        shots = given.get("shot_changes") or "auto"
        rules = _rules(dict(given))
    except OptionError as e:
        raise _fail(e.render(flag_of), EXIT_USAGE) from None
    except ValueError as e:
        raise _fail(str(e), EXIT_USAGE) from None
    try:
        report = run_qc(file, rules, fps=fps, video=video, shot_changes=shots)
    except WhisperMediaError as e:
        raise _fail(f"{e.path or file}: {e.message}", EXIT_INPUT) from None
    if as_json:
        click.echo(json.dumps({"file": file, **report.to_dict()}, indent=2, ensure_ascii=False))
    else:
        for v in report.violations:
            click.echo(f"{file}: {v.line()}")
        click.echo(f"{file}: {report.summary()}")
    failed = report.errors > 0 or (strict and report.warnings > 0)
    raise click.exceptions.Exit(EXIT_QC if failed else 0)


qc_command.params.extend(option_params(_QC_OPTIONS))


def qc_summary(path: str, transcript) -> Optional[str]:
    """``wm run --qc``: the QC summary of one written SRT or WebVTT file, checked against the
    layout it was written with; None for other files and for layouts without rules (raw, openai)."""
    from whispermedia.layout.engine import source_fps
    from whispermedia.layout.settings import layout_settings
    from whispermedia.qc import check
    from whispermedia.shots import cut_times
    from whispermedia.subtitle_files import read_subtitles

    settings = layout_settings(transcript)
    if settings.mode != "engine" or not str(path).endswith((".srt", ".vtt")):
        return None
    report = check(read_subtitles(str(path)), settings.rules, fps=source_fps(transcript, settings.fps),
                   cuts=cut_times(settings.shot_changes, transcript))
    return report.summary()
