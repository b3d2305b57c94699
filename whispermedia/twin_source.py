"""A second handle on an opened input, for decoding it at two places at once.

``regions`` batch mode (``whispermedia.regions``) decodes the parts of one file side by side,
each reading the file forward from its own place (``MelWindows.reader``). A path is opened anew
by every decode and samples are sliced, so those are shared as they are; a spooled pipe (a
temporary file) and a caller's file object have one file position, which two decoders would
move under each other. Their twin reads the same bytes through the file descriptor with
``os.pread``, at a position of its own: the caller's position and the spool are untouched, and
nothing is copied. An object with no file descriptor (``io.BytesIO``) has no twin.
"""

from __future__ import annotations

import io
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .media import AudioSource

__all__ = ["twin_source"]


class PositionalFile(io.RawIOBase):
    """Read-only bytes of an open file descriptor at a position of its own (``os.pread``); the
    descriptor stays its owner's (never closed here)."""

    def __init__(self, fd: int, name: str):
        super().__init__()
        self._fd = fd
        self._pos = 0
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.pread(self._fd, len(buffer), self._pos)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: os.fstat(self._fd).st_size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


def twin_source(source: "AudioSource") -> Optional["AudioSource"]:
    """An ``AudioSource`` for the same input whose decodes (``chunks()``) can run beside the
    original's: the source itself for a path or samples, a ``PositionalFile`` over the file
    descriptor of a spool or a file object, None when there is none to read by position."""
    if source.kind in ("path", "samples"):
        return source
    if not hasattr(os, "pread"):
        return None
    try:
        fd = source._data.fileno()
        os.pread(fd, 0, 0)  # a descriptor that can be read by position (not a pipe or a socket)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return replace(source, kind="file", _data=PositionalFile(fd, source.label))
