"""Errors the library raises on bad input, and the CLI's exit codes for them.

Each error carries the path it is about, so the CLI can print one line
``wm: <path>: <problem>`` with no traceback and exit with the code documented here
(and in docs/cli.md).
"""

from __future__ import annotations

from typing import Optional

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: an unexpected exception (traceback shown)
EXIT_USAGE = 2  # bad command line: unknown option or plugin name (click's own code)
EXIT_INPUT = 3  # an input could not be read: missing, empty, not media, no audio, truncated
EXIT_MODEL = 4  # the model could not be found, failed its checksum, or is malformed
EXIT_OUTPUT = 5  # an output could not be written, or exists and --overwrite was not given


class WhisperMediaError(Exception):
    """Base class. ``path`` is the file the problem is about (None when there is none)."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MediaError(WhisperMediaError):
    """The input cannot be decoded into audio."""

    exit_code = EXIT_INPUT


class ModelError(WhisperMediaError):
    """The model cannot be found, verified or loaded."""

    exit_code = EXIT_MODEL


class OutputError(WhisperMediaError):
    """An output cannot be written (or exists and overwriting was not asked for)."""

    exit_code = EXIT_OUTPUT


class PluginError(WhisperMediaError):
    """A plugin name is unknown, or a plugin failed while it was called."""

    exit_code = EXIT_USAGE
