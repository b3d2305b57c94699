"""``wm run``'s inputs and outputs, checked before any model loads.

Everything here is cheap (a ``stat``, opening a container and reading its stream headers, a
temporary file created and removed in an output folder): ``wm run`` settles every input this
way first, so a bad input or an unwritable folder is refused in milliseconds, and the model is
loaded only when some input has work (``whispermedia.cli_run``).

- ``check_given``: the input as typed exists and can be media (not missing, a folder, empty,
  a terminal or another device); ``-`` is stdin.
- ``open_input``: the input opened and probed (``media.open_source``: a pipe, a FIFO or stdin
  is spooled to a temporary file), its audio stream chosen by ``audio_streams``' rule.
- ``output_target`` / ``Folders``: where each output goes and whether its folder takes files.

stdin: ``wm run -`` reads the media from stdin; its outputs are named ``stdin.<ext>``, in
``--output-dir`` or else the current folder. Only one ``-`` per run (stdin is read once).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Optional

from whispermedia.errors import MediaError, OutputError

STDIN = "-"
#: the name outputs of stdin take: ``stdin.srt``
STDIN_STEM = "stdin"


def check_given(given: str) -> None:
    """``MediaError`` when ``given`` cannot be an input (the cheap checks: no file opened)."""
    if given == STDIN:
        if _stdin_is_terminal():
            raise MediaError("stdin is a terminal: pipe the media into it (cat talk.mp4 | wm run -p srt -)", STDIN)
        return
    try:
        st = os.stat(given)
    except FileNotFoundError:
        raise MediaError("no such file", given) from None
    except NotADirectoryError:
        raise MediaError("no such file (a parent in the path is not a directory)", given) from None
    except PermissionError:
        raise MediaError("permission denied", given) from None
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot access the file ({getattr(exc, 'strerror', None) or exc})", given) from None
    if stat.S_ISDIR(st.st_mode):
        raise MediaError("is a directory", given)
    if stat.S_ISREG(st.st_mode):
        if st.st_size == 0:
            raise MediaError("empty file (0 bytes)", given)
        return
    if stat.S_ISFIFO(st.st_mode):
        return  # read (and spooled) when opened
    from whispermedia.media import refuse_device  # the media layer's own rule and words

    refuse_device(given, st.st_mode)


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def stdin_bytes() -> IO[bytes]:
    """The binary stdin (a test runner's replacement too)."""
    stream = sys.stdin
    return getattr(stream, "buffer", stream)


@dataclass
class Input:
    """One opened input: ``audio`` is what ``transcribe`` gets (the path as given, or the
    opened source of a pipe, which cannot be read again), ``source`` the media layer's view."""

    given: str
    audio: Any
    source: Any  # whispermedia.media.AudioSource

    @property
    def choice(self):
        """Which audio stream is decoded and why (``audio_streams.StreamChoice``), or None."""
        return self.source.stream_choice

    def close(self) -> None:
        """Delete a spooled pipe's temporary copy."""
        self.source.close()


def open_input(given: str, audio_stream: Any) -> Input:
    """``given`` opened and probed, its stream chosen; ``MediaError`` when it is not usable media."""
    from whispermedia.media import open_source

    source = open_source(stdin_bytes() if given == STDIN else given, audio_stream)
    return Input(given, given if source.kind == "path" else source, source)


def output_target(given: str, fmt: str, output_dir: Optional[str]) -> Path:
    """Where ``given``'s output in format ``fmt`` goes (``OutputError`` when it would be the
    input itself)."""
    from whispermedia import output as wm_output

    return Path(wm_output.output_path(STDIN_STEM if given == STDIN else given, fmt, output_dir))


class Folders:
    """Whether output folders take new files, tried once per folder: a hidden temporary file is
    created and removed (the one test that holds for read-only mounts and for root too). A
    folder that does not exist yet is judged by its nearest existing parent, where it would be
    made."""

    def __init__(self) -> None:
        self._seen: Dict[Path, Optional[str]] = {}

    def problem(self, folder: Path) -> Optional[str]:
        """Why files cannot be written in ``folder``, or None."""
        folder = Path(os.path.abspath(folder))
        if folder not in self._seen:
            self._seen[folder] = self._try(folder)
        return self._seen[folder]

    @staticmethod
    def _try(folder: Path) -> Optional[str]:
        probe = folder
        while not os.path.lexists(probe) and probe.parent != probe:
            probe = probe.parent
        if not probe.is_dir():
            return f"{probe} is not a folder"
        try:
            with tempfile.TemporaryFile(dir=probe, prefix=".wm-write-test-"):
                pass
        except OSError as exc:
            return f"cannot write in {probe}: {exc.strerror or exc}"
        return None

    def check(self, folder: Path, target: Path) -> None:
        why = self.problem(folder)
        if why is not None:
            raise OutputError(why, str(target))
