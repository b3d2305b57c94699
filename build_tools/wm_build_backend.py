"""PEP 517 build backend: setuptools', building ``_C`` against the torch the package will run with.

A compiled torch extension must be built against the same torch it is imported into. pip's
isolated build would install its own torch for the build (the newest release, gigabytes of CUDA
packages) and produce an extension for that torch instead. So:

- torch importable in the build environment (``--no-build-isolation``, or a build env that has
  one): used as it is.
- otherwise, the torch installed in the target environment (the interpreter running this
  backend) is put on the build's path; nothing is downloaded.
- no torch anywhere: ``torch>=2.4`` is asked for, the same requirement the package itself has,
  so build and run resolve to the same release.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import sysconfig

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 - every hook not overridden below

TORCH_REQUIREMENT = "torch>=2.4"


def _target_site_with_torch():
    """The target environment's site-packages folder holding torch, or None."""
    for key in ("purelib", "platlib"):
        folder = sysconfig.get_paths()[key]
        for dist in importlib.metadata.distributions(path=[folder]):
            if (dist.metadata["Name"] or "").lower() == "torch":
                return folder
    return None


def _torch_importable() -> bool:
    return importlib.util.find_spec("torch") is not None


def _use_target_torch() -> None:
    if not _torch_importable():
        folder = _target_site_with_torch()
        if folder and folder not in sys.path:
            sys.path.append(folder)  # after the build env's own packages, which keep priority


# every hook runs setup.py, which imports torch: settle where torch comes from first
_use_target_torch()


def get_requires_for_build_wheel(config_settings=None):
    if not _torch_importable():  # setup.py cannot even be read without torch: ask for it first
        return ["wheel", TORCH_REQUIREMENT]
    return _setuptools.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_editable(config_settings=None):
    if not _torch_importable():
        return ["wheel", TORCH_REQUIREMENT]
    return _setuptools.get_requires_for_build_editable(config_settings)
