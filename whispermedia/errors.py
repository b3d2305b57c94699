"""Errors the library raises on bad input.

Each error carries the path it is about, so a caller can print one line
``<path>: <problem>`` with no traceback. Which exit code each stands for is the command
line's business (``whispermedia.cli_render.EXIT_CODES``, docs/cli.md), not the library's.
Bad options are ``whispermedia.options.OptionError``, a ``ValueError``.
"""

from __future__ import annotations

from typing import Optional


class WhisperMediaError(Exception):
    """Base class. ``path`` is the file the problem is about (None when there is none)."""

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MediaError(WhisperMediaError):
    """The input cannot be decoded into audio."""


class ModelError(WhisperMediaError):
    """The model cannot be found, verified or loaded."""


class OutputError(WhisperMediaError):
    """An output cannot be written (or exists and overwriting was not asked for)."""


class MissingDependency(WhisperMediaError):
    """An optional dependency is not installed; the message names the extra and how to install it."""


class PluginError(WhisperMediaError):
    """Something about a plugin: one of the two kinds below."""


class PluginNotFound(PluginError):
    """No plugin registers the output format, task or plugin name asked for (the caller's typo)."""


class PluginFailed(PluginError):
    """A plugin raised, or answered with the wrong type, while it was called (the plugin's fault)."""
