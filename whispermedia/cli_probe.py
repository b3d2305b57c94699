"""``wm probe FILE [--json]``: what a media file holds, as a pipeline script asks before it
chooses options: container, duration, the video's codec, size, frame rate and start timecode,
and every audio stream (codec, rate, channels, duration, language, default).

Nothing is decoded. The start timecode is read as ``wm run``'s timeline formats read it, and
its frame count and exact seconds are given when the file has a frame rate.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import click

from whispermedia.errors import WhisperMediaError
from whispermedia.media_info import MediaInfo


def probe_report(info: MediaInfo) -> Dict[str, Any]:
    """``info.to_dict()`` plus ``timecode``: the start timecode read at the video's frame rate
    (``{"start", "drop_frame", "frames", "seconds"}``), None without a timecode or frame rate."""
    from whispermedia.timecode import Timecode

    report = info.to_dict()
    report["timecode"] = None
    if info.start_timecode and info.frame_rate:
        try:
            tc = Timecode.parse(info.start_timecode, info.frame_rate)
        except ValueError as e:
            report["timecode"] = {"start": info.start_timecode, "error": str(e)}
        else:
            report["timecode"] = {"start": str(tc), "drop_frame": tc.drop_frame, "frames": tc.frames,
                                  "seconds": float(tc.seconds)}
    return report


def probe_lines(report: Dict[str, Any]) -> List[str]:
    """The human-readable report, one fact per line."""
    duration = report["duration"]
    lines = [f"{report['path']}: {report['container']}, "
             f"{'duration unknown' if duration is None else f'{duration:.3f} s'}"]
    if report["has_video"]:
        rate = report["frame_rate"]
        fps = "unknown fps"
        if rate:
            num, den = (int(x) for x in rate.split("/"))
            fps = f"{num / den:.3f}".rstrip("0").rstrip(".") + f" fps ({rate})"
        size = f"{report['width']}x{report['height']}" if report["width"] else "size unknown"
        lines.append(f"  video: {report['video_codec'] or 'unknown'}, {size}, {fps}")
    else:
        lines.append("  video: none")
    tc = report["timecode"]
    if tc and "error" not in tc:
        kind = "drop-frame" if tc["drop_frame"] else "non-drop"
        lines.append(f"  start timecode: {tc['start']} ({kind}, frame {tc['frames']}, {tc['seconds']:.6f} s)")
    elif report["start_timecode"]:
        lines.append(f"  start timecode: {report['start_timecode']}" + (f" ({tc['error']})" if tc else ""))
    else:
        lines.append("  start timecode: none")
    for s in report["audio_streams"]:
        dur = "" if s["duration"] is None else f", {s['duration']:.3f} s"
        lang = f", {s['language']}" if s["language"] else ""
        default = ", default" if s["default"] else ""
        lines.append(f"  audio {s['index']}: {s['codec']}, {s['sample_rate']} Hz, {s['channels']} ch"
                     f"{dur}{lang}{default}")
    if not report["audio_streams"]:
        lines.append("  audio: none")
    return lines


@click.command("probe")
@click.argument("file", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def probe_command(file: str, as_json: bool) -> None:
    """Show FILE's streams, codecs, durations, frame rate and start timecode (nothing is decoded)."""
    from whispermedia.cli_render import exit_code_for
    from whispermedia.media import probe

    try:
        report = probe_report(probe(file))
    except WhisperMediaError as e:
        click.echo(f"wm: {e.path or file}: {e.message}", err=True)
        raise click.exceptions.Exit(exit_code_for(e)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for line in probe_lines(report):
        click.echo(line)
