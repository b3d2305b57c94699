"""Builds whispermedia._C, the compiled core, from csrc/ (metadata lives in pyproject.toml).

Knobs (environment variables):
  WM_CUDA=1|0      force the CUDA kernels on or off; unset: on when a CUDA toolkit (CUDA_HOME)
                   and a CUDA build of torch are both present. Never decided by whether a GPU
                   is visible, so a GPU-less build machine still produces GPU wheels.
  WM_CUDA_ARCHS    semicolon list of SM versions for nvcc (default "80;90"; "90a" style allowed)
  WM_DEBUG=1       -O0 -g, device debug info, no -DNDEBUG
  MAX_JOBS         parallel compile jobs (read by torch's ninja build)
"""
import glob
import os
import sys

from setuptools import setup

import torch
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = "csrc"


def _flag(name):
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    sys.exit(f"setup.py: {name}={os.environ[name]!r}; expected 1 or 0")


def _want_cuda():
    forced = _flag("WM_CUDA")
    have_toolkit = CUDA_HOME is not None
    have_torch = torch.version.cuda is not None
    if forced is False:
        return False
    if forced is True:
        if not (have_toolkit and have_torch):
            sys.exit(
                "setup.py: WM_CUDA=1 needs a CUDA toolkit (CUDA_HOME) and a CUDA build of torch; "
                f"found CUDA_HOME={CUDA_HOME}, torch {torch.__version__} (CUDA {torch.version.cuda})"
            )
        return True
    return have_toolkit and have_torch


def _gencode(archs):
    flags = []
    for arch in filter(None, (a.strip() for a in archs.split(";"))):
        flags.append(f"-gencode=arch=compute_{arch},code=sm_{arch}")
    # PTX of the last listed arch as well, so that GPUs newer than all of them can JIT it.
    if flags:
        last = flags[-1].split("arch=compute_")[1].split(",")[0]
        flags.append(f"-gencode=arch=compute_{last},code=compute_{last}")
    return flags


def _sources(pattern):
    # Relative paths: setuptools rejects absolute ones in an editable/PEP 660 build.
    return sorted(glob.glob(os.path.join(CSRC, pattern)))


def extensions():
    debug = _flag("WM_DEBUG") is True
    use_cuda = _want_cuda()

    cxx = ["-fvisibility=hidden", "-fno-math-errno", "-Wall", "-Wno-unknown-pragmas"]
    cxx += ["-O0", "-g"] if debug else ["-O3", "-DNDEBUG"]
    sources = _sources("*.cpp") + _sources(os.path.join("cpu", "*.cpp"))
    extra = {"cxx": cxx}

    if use_cuda:
        sources += _sources(os.path.join("cuda", "*.cu")) + _sources(os.path.join("cuda", "*.cpp"))
        nvcc = ["--expt-relaxed-constexpr", "-lineinfo"]
        nvcc += ["-O0", "-g", "-G"] if debug else ["-O3", "-DNDEBUG"]
        nvcc += _gencode(os.environ.get("WM_CUDA_ARCHS", "80;90"))
        extra["nvcc"] = nvcc
        ext_cls = CUDAExtension
    else:
        ext_cls = CppExtension

    return [
        ext_cls(
            name="whispermedia._C",
            sources=sources,
            include_dirs=[os.path.join(ROOT, CSRC)],
            extra_compile_args=extra,
        )
    ]


setup(
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExtension},
)
