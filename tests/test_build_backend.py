"""The build backend builds against the torch the package will run with, never a second one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _backend():
    spec = importlib.util.spec_from_file_location("wm_build_backend", ROOT / "build_tools" / "wm_build_backend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_target_torch_is_the_running_one():
    folder = _backend()._target_site_with_torch()
    assert folder is not None
    assert Path(torch.__file__).resolve().is_relative_to(Path(folder).resolve())


def test_no_torch_requirement_when_torch_is_installed():
    assert not any(r.startswith("torch") for r in _backend().get_requires_for_build_wheel())


def test_torch_is_asked_for_only_when_there_is_none(monkeypatch):
    backend = _backend()
    monkeypatch.setattr(backend, "_torch_importable", lambda: False)
    assert backend.get_requires_for_build_wheel() == ["wheel", backend.TORCH_REQUIREMENT]
    # the package's own requirement, so build and run resolve to the same release
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"{backend.TORCH_REQUIREMENT}"' in pyproject
