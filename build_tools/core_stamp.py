"""Whether the compiled core (whispermedia/_C) is up to date with what it is built from.

    python build_tools/core_stamp.py check   # exit 0: built from these sources, for this torch
    python build_tools/core_stamp.py write   # record the current inputs (after a build)

``.ci/setup`` runs ``check`` before building and skips the build when it passes, so running
setup again with nothing changed does not recompile. The stamp (``build/core.stamp``) holds one
SHA-256 over the build's inputs: every file under csrc/, setup.py, pyproject.toml,
CMakeLists.txt and build_tools/*.py (their contents, not their times: a fresh checkout of the
same commit is up to date), the torch and Python versions, and the path the package is
installed from. ``check`` also requires the compiled module to exist beside the package.
Run with the interpreter of the environment the core is built for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Iterable, Optional

ROOT = Path(__file__).resolve().parent.parent
STAMP = Path("build") / "core.stamp"
_INPUT_FILES = ("setup.py", "pyproject.toml", "CMakeLists.txt")


def build_inputs(root: Path) -> Iterable[Path]:
    """The files the compiled core is built from, in a fixed order."""
    files = [root / name for name in _INPUT_FILES if (root / name).is_file()]
    for folder in ("csrc", "build_tools"):
        files += sorted(p for p in (root / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files


def digest(root: Path, torch_version: str, python_version: str, installed_from: str) -> str:
    h = hashlib.sha256()
    for path in build_inputs(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for fact in (torch_version, python_version, installed_from):
        h.update(fact.encode() + b"\0")
    return h.hexdigest()


def _environment(root: Path) -> Optional[str]:
    """The digest for this interpreter, or None when whispermedia is not installed from ``root``
    with its compiled module there, or torch is missing."""
    try:
        import torch
    except ImportError:
        return None
    spec = importlib.util.find_spec("whispermedia")
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).resolve().parent
    if package != (root / "whispermedia").resolve() or not list(package.glob("_C*.so")) + list(package.glob("_C*.pyd")):
        return None
    return digest(root, torch.__version__, sys.version, str(package))


def main(argv) -> int:
    root = ROOT
    if len(argv) != 2 or argv[1] not in ("check", "write"):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: core_stamp.py check|write", file=sys.stderr)
        return 2
    stamp = root / STAMP
    current = _environment(root)
    if argv[1] == "write":
        if current is None:
            print("core_stamp: whispermedia with its compiled core is not installed from here", file=sys.stderr)
            return 1
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(current + "\n")
        return 0
    recorded = stamp.read_text().strip() if stamp.is_file() else None
    return 0 if current is not None and recorded == current else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
