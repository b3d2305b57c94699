"""Repo-wide test settings: the ``cuda`` and ``slow`` markers (declared in pyproject.toml).

- ``@pytest.mark.cuda``: needs a CUDA GPU; skipped, with the reason, where torch sees none.
- ``@pytest.mark.slow``: runs the real model end to end. It runs by default (CI runs it);
  ``-m "not slow"`` leaves it out for a quick loop.

Fixtures that belong to one area live beside that area's tests, not here.
"""

from __future__ import annotations

import pytest


def _cuda_skip_reason() -> str | None:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a hard dependency
        return f"torch is not importable: {e}"
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (torch.cuda.is_available() is False)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return  # don't import torch just to decide nothing
    reason = _cuda_skip_reason()
    if reason:
        for item in cuda_items:
            item.add_marker(pytest.mark.skip(reason=reason))
