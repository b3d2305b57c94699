"""Reading SRT and WebVTT files back as plain cues (for ``wm qc``), ours or anyone's.

Tolerant where players are (a BOM, CRLF, missing or extra blank lines between cues, WebVTT
cue identifiers, settings, NOTE/STYLE/REGION blocks, hours left out), strict where a file is
unusable: a timing line that does not parse is a ``MediaError`` naming the file and line.
WebVTT tags (``<i>``, inline timestamps) are removed and entities decoded, so the text is
what a viewer reads.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from .errors import MediaError

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class FileCue:
    """One cue as a file holds it: ``number`` (1-based position in the file), times in
    seconds, the text lines as shown."""

    number: int
    start: float
    end: float
    lines: Tuple[str, ...]


def _seconds(h, m, s, ms) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def read_subtitles(path: str) -> List[FileCue]:
    """The cues of an SRT or WebVTT file (by content: a ``WEBVTT`` first line is WebVTT)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise MediaError(f"cannot read: {e.strerror or e}", path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # legacy SRT: Windows-1252 is the usual guess
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    vtt = bool(lines) and lines[0].startswith("WEBVTT")
    cues: List[FileCue] = []
    k = 1 if vtt else 0
    while k < len(lines):
        line = lines[k]
        if vtt and re.match(r"^(NOTE|STYLE|REGION)(\s|$)", line):
            while k < len(lines) and lines[k].strip():
                k += 1
            continue
        m = _TIMING.match(line)
        if not m:
            if "-->" in line:
                raise MediaError(f"line {k + 1}: not a timing line: {line.strip()!r}", path)
            k += 1  # a cue number or identifier, or a blank line
            continue
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        k += 1
        body = []
        while k < len(lines) and lines[k].strip() and not _TIMING.match(lines[k]):
            body.append(lines[k])
            k += 1
        if vtt:
            body = [html.unescape(_TAG.sub("", b)) for b in body]
        else:
            body = [_TAG.sub("", b) if re.search(r"</?[biu]>|</?font", b) else b for b in body]
        if body and not vtt and re.fullmatch(r"\d+", body[-1].strip()) and k < len(lines) and _TIMING.match(lines[k]):
            body.pop()  # an SRT without blank lines: the next cue's number
        cues.append(FileCue(len(cues) + 1, start, end, tuple(b.rstrip() for b in body)))
    if not cues and text.strip():
        raise MediaError("no subtitle cues found (not SRT or WebVTT?)", path)
    return cues
