"""A non-seekable byte stream, as a pipe looks to Python, for the media and feature tests."""

from __future__ import annotations

import io
from typing import Optional


class Pipe(io.RawIOBase):
    """Reads ``payload`` once, front to back; ``name`` (when given) is what a pipe's file object
    would call itself, e.g. ``"stdin"``."""

    def __init__(self, payload: bytes, name: Optional[str] = None):
        self._buf = io.BytesIO(payload)
        if name is not None:
            self.name = name

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, b):
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)
