"""Folders as inputs: which files a folder gives, and where their outputs go.

``wm run DIR`` takes the media files in ``DIR`` (with ``--recursive``, in its subfolders too),
in sorted order, hidden files and folders left out (our own atomic writes make hidden
temporary files). Which files count: those with an audio or video extension
(``MEDIA_EXTENSIONS``), or with ``--include GLOB`` those matching a glob; ``--exclude GLOB``
removes matches. A glob with a ``/`` is matched against the path under the folder
(``sub/*.mp4``; ``*`` crosses ``/`` as in ``fnmatch``), one without against the file name.

Outputs of a file found in a folder mirror the tree: ``DIR/a/b.mp4`` with ``-o OUT`` writes
``OUT/a/b.srt`` (without ``-o``, beside the file, as always). Two files of the run that would
write the same output (``a.mp4`` and ``a.wav`` in one folder) are told apart by keeping their
own extension in the name: ``a.mp4.srt`` and ``a.wav.srt``. The rule depends only on the set
of files found, so a rerun (``--resume``) names every output as the first run did. Files named
on the command line keep their documented rule (the second of two is refused).
"""

from __future__ import annotations

import fnmatch
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

#: The extensions a folder's files are taken by, without --include (lower case)
MEDIA_EXTENSIONS = frozenset("""
    aac ac3 aif aifc aiff amr ape au avi caf dts eac3 f4v flac flv m2ts m4a m4b m4v mka mkv mov mp2
    mp3 mp4 mpeg mpg mts mxf oga ogg ogv opus ra rm spx ts vob wav webm wma wmv wv 3gp 3g2
""".split())


@dataclass(frozen=True)
class Found:
    """One input of the run. ``root`` is the folder given on the command line it was found in
    and ``relative`` its path under that folder (POSIX); both None for a file named directly."""

    path: str
    root: Optional[str] = None
    relative: Optional[str] = None
    keep_suffix: bool = False  # its outputs keep the input's extension (a name shared in the run)

    def output_folder(self, output_dir: Optional[str]) -> Path:
        """The folder its outputs go to."""
        if output_dir is None:
            return Path(self.path).parent
        parent = PurePosixPath(self.relative or "").parent
        return Path(output_dir).joinpath(*parent.parts)

    def output_name(self, extension: str) -> str:
        name = Path(self.path).name if self.keep_suffix else Path(self.path).stem
        return f"{name}.{extension}"


def wanted(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a file at ``relative`` (POSIX path under its folder) is an input."""
    name = relative.rsplit("/", 1)[-1]

    def matches(glob: str) -> bool:
        return fnmatch.fnmatchcase(relative if "/" in glob else name, glob)

    if any(matches(g) for g in exclude):
        return False
    if include:
        return any(matches(g) for g in include)
    return "." in name and name.rsplit(".", 1)[1].lower() in MEDIA_EXTENSIONS


def walk(folder: str, recursive: bool, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> List[Found]:
    """The inputs ``folder`` gives, sorted by their path under it. Raises ``OSError`` when the
    folder cannot be listed."""
    found: List[Found] = []
    errors: List[OSError] = []
    for top, dirs, files in os.walk(folder, onerror=errors.append):  # symlinked folders not followed: no loops
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        under = PurePosixPath(*Path(os.path.relpath(top, folder)).parts)
        for name in sorted(files):
            if name.startswith("."):
                continue
            relative = name if str(under) == "." else f"{under}/{name}"
            path = os.path.join(top, name)
            if wanted(relative, include, exclude) and os.path.isfile(path):
                found.append(Found(path, folder, relative))
    if errors and errors[0].filename == folder:
        raise errors[0]
    found.sort(key=lambda f: PurePosixPath(f.relative or "").parts)
    return found


def expand(given: Sequence[str], recursive: bool, include: Sequence[str] = (), exclude: Sequence[str] = (),
           output_dir: Optional[str] = None) -> Tuple[List[Found], List[Tuple[str, str]]]:
    """The run's inputs, in the order given (a folder's files in its place), and the folders
    that gave none or could not be read, as ``(folder, problem)``. Anything that is not a
    folder passes through as it is (``cli_inputs.check_given`` judges it)."""
    inputs: List[Found] = []
    problems: List[Tuple[str, str]] = []
    for item in given:
        if item == "-" or not os.path.isdir(item):
            inputs.append(Found(item))
            continue
        try:
            files = walk(item, recursive, include, exclude)
        except OSError as e:
            problems.append((item, f"cannot list the folder: {e.strerror or e}"))
            continue
        if not files:
            what = f"matching {', '.join(include)}" if include else "with an audio or video extension"
            deeper = "" if recursive else " (--recursive looks in subfolders)"
            problems.append((item, f"is a folder with no files {what}{deeper}"))
        inputs.extend(files)
    return tell_apart(inputs, output_dir), problems


def tell_apart(inputs: Iterable[Found], output_dir: Optional[str] = None) -> List[Found]:
    """``inputs`` with ``keep_suffix`` set on the files found in folders whose outputs would
    share a name and folder with another's."""
    inputs = list(inputs)
    groups: Dict[Tuple[str, str], List[int]] = defaultdict(list)
    for i, item in enumerate(inputs):
        if item.root is not None:
            key = (os.path.abspath(item.output_folder(output_dir)), Path(item.path).stem)
            groups[key].append(i)
    out = list(inputs)
    for members in groups.values():
        if len(members) > 1:
            for i in members:
                item = inputs[i]
                out[i] = Found(item.path, item.root, item.relative, keep_suffix=True)
    return out
