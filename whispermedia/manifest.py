"""The manifest of a run: one JSON line per input, appended and flushed as each input ends.

A record says what happened to one input (``Record``): its absolute path, the SHA-256 of its
bytes and of the options that shape its outputs, the status (``done``, ``failed``,
``skipped``: every output existed and was kept), the seconds of audio and of wall time, the
outputs written and kept, the warnings, and the error (exit code and the one-line message).

``--resume FILE`` reads such a file back (``Resume``): an input whose last record is ``done``
with the same input hash and options hash, and whose outputs all still exist, is finished and
is not redone; anything else (no record, a failure, changed bytes or options, a missing output)
is redone. Because each record is written only after the input's outputs are in place (each
written atomically), a run stopped at any moment (a crash, SIGKILL, Ctrl-C) leaves records
only for inputs that are really finished; a line cut short by a kill is ignored on reading.

Hashing a large video reads it all, so ``Resume`` trusts a record's hash while the file's
size and modification time (nanoseconds) are those it recorded, as ``git`` and ``rsync`` do;
otherwise it hashes the bytes again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import IO, Any, Dict, Iterable, Optional, Tuple

from whispermedia.output import finite_json

#: the statuses a record can have
DONE, FAILED, SKIPPED = "done", "failed", "skipped"


@dataclass(frozen=True)
class Record:
    """One input's line in the manifest."""

    path: str  # absolute
    status: str  # DONE, FAILED or SKIPPED
    options_sha256: str
    input_sha256: Optional[str] = None  # None when the input could not be read
    audio_seconds: Optional[float] = None
    seconds: float = 0.0  # wall time spent on it by this run
    outputs: Tuple[str, ...] = ()  # written
    kept: Tuple[str, ...] = ()  # existed and were kept
    warnings: Tuple[str, ...] = ()
    error: Optional[Dict[str, Any]] = None  # {"code": exit code, "message": the stderr line}
    size: Optional[int] = None  # the input's size and mtime when hashed (the resume quick check)
    mtime_ns: Optional[int] = None
    worker: str = "local"  # "local", or "ray:<node id>" for a Ray actor
    finished: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return json.dumps(finite_json(data), ensure_ascii=False, allow_nan=False, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Record":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for name in ("outputs", "kept", "warnings"):
            kwargs[name] = tuple(kwargs.get(name) or ())
        return cls(**kwargs)


@dataclass(frozen=True)
class Fingerprint:
    """An input's content hash with the size and mtime it was taken at."""

    sha256: str
    size: int
    mtime_ns: int


def fingerprint(path: str, chunk: int = 1 << 20) -> Fingerprint:
    """The SHA-256 of ``path``'s bytes (``OSError`` when it cannot be read)."""
    st = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            digest.update(block)
    return Fingerprint(digest.hexdigest(), st.st_size, st.st_mtime_ns)


def options_sha256(settings: Dict[str, Any]) -> str:
    """The SHA-256 of the JSON of ``settings`` (everything that shapes the outputs: formats,
    model, compute type, audio stream, the transcription options), keys sorted."""
    text = json.dumps(finite_json(settings), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Manifest:
    """A manifest file open for appending; each ``write`` is one line, flushed and fsynced."""

    def __init__(self, path: str):
        self.path = path
        self._file: IO[str] = open(path, "a+", encoding="utf-8", newline="\n")
        self._file.seek(0, os.SEEK_END)
        if self._file.tell() > 0:
            self._file.seek(self._file.tell() - 1)
            if self._file.read(1) != "\n":  # a line cut short by a kill: start a fresh one
                self._file.write("\n")

    def write(self, record: Record) -> None:
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_records(path: str) -> Iterable[Record]:
    """The records of a manifest file, in order; lines that are not records (one cut short by a
    kill) are skipped. ``OSError`` when the file cannot be read (a missing one has none)."""
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            try:
                data = json.loads(line)
                if isinstance(data, dict) and "path" in data and "status" in data:
                    yield Record.from_dict(data)
            except (ValueError, TypeError):
                continue


class Resume:
    """The finished inputs of an earlier run, from its manifest."""

    def __init__(self, path: str):
        self.path = path
        self.last: Dict[str, Record] = {}
        for record in read_records(path):
            self.last[record.path] = record

    def finished(self, path: str, options_hash: str) -> Optional[Record]:
        """The record that makes ``path`` finished, or None when it must be (re)done."""
        record = self.last.get(os.path.abspath(path))
        if record is None or record.status != DONE or record.options_sha256 != options_hash:
            return None
        if not all(os.path.isfile(p) for p in record.outputs + record.kept):
            return None
        try:
            st = os.stat(path)
            if (st.st_size, st.st_mtime_ns) != (record.size, record.mtime_ns):
                if fingerprint(path).sha256 != record.input_sha256:
                    return None
        except OSError:
            return None
        return record
