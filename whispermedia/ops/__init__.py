"""The fused ops, compiled when possible and pure torch otherwise.

``log_mel_spectrogram``, ``log_mel_frames`` and ``kv_attention`` call
``torch.ops.whispermedia.*`` (the ``whispermedia._C`` extension) when it is loaded and has a
kernel for the input's device, and otherwise :mod:`whispermedia.ops.reference`, warning once
per (op, reason). The environment variable ``WM_FORCE_REFERENCE=1`` selects the reference
everywhere (read at each call). :func:`backend_info` says which path is live; ``wm doctor``
prints it.
"""

from __future__ import annotations

import os
import warnings
from typing import Optional

import torch

from whispermedia.ops import reference

__all__ = ["log_mel_spectrogram", "log_mel_frames", "kv_attention", "backend_info", "reference"]

_OPS = ("log_mel_spectrogram", "log_mel_frames", "kv_attention")
# What backend_info() lists: log_mel_frames is log_mel_spectrogram's kernel with another
# maximum, registered by the same backend files, so it is live exactly where that one is.
_REPORTED_OPS = ("log_mel_spectrogram", "kv_attention")
# The decode step's CPU-only kernels: few-row linears on compactly stored weights
# (csrc/cpu/linear_lowp.cpp) and the cross-attention over the cached encoder K/V
# (csrc/cpu/cross_attention.cpp). A GPU runs float16 GEMMs and SDPA instead; without them
# whispermedia.model falls back to F.linear on widened weights and to SDPA.
_CPU_OPS = ("linear_f16w", "linear_i8w", "cross_attention")

try:
    from whispermedia import _C  # noqa: F401  (loading the library registers the ops)
except (ImportError, OSError) as exc:  # a source checkout without a build, or an ABI mismatch with torch
    _C = None
    _EXTENSION_ERROR: str | None = f"{type(exc).__name__}: {exc}"
else:
    _EXTENSION_ERROR = None
    from whispermedia.ops import _fake  # noqa: F401  (needs the schemas defined by _C)


def _has_kernel(op: str, dispatch_key: str) -> bool:
    if _C is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"whispermedia::{op}", dispatch_key)


# Registrations happen when _C loads and never change afterwards, so they are looked up
# once; a plain dict also keeps the wrappers traceable by torch.compile.
# "meta" is the fake kernel: shape inference on meta tensors goes through the op as well.
_COMPILED: dict[str, dict[str, bool]] = {
    op: {"cpu": _has_kernel(op, "CPU"), "cuda": _has_kernel(op, "CUDA"), "meta": _has_kernel(op, "Meta")}
    for op in _OPS
}
_CPU_COMPILED: dict[str, bool] = {op: _has_kernel(op, "CPU") for op in _CPU_OPS}
_warned: set[tuple[str, str]] = set()


def cpu_kernel_compiled(op: str) -> bool:
    """Whether ``_C`` registered a CPU kernel for the CPU-only op ``op`` (``linear_f16w``,
    ``linear_i8w``, ``cross_attention``)."""
    return _CPU_COMPILED[op]


def use_cpu_kernel(op: str) -> bool:
    """Whether the CPU-only op ``op`` should run now: compiled, and ``WM_FORCE_REFERENCE=1``
    not set (read at each call, as for the fused ops)."""
    return _CPU_COMPILED[op] and not _forced_reference()


def _forced_reference() -> bool:
    return os.environ.get("WM_FORCE_REFERENCE", "") == "1"


def _use_compiled(op: str, device: torch.device) -> bool:
    if _forced_reference():
        return False
    if _COMPILED[op].get(device.type, False):
        return True
    reason = (f"whispermedia._C is not loaded ({_EXTENSION_ERROR})" if _C is None
              else f"whispermedia._C has no {device.type} kernel")
    if (op, reason) not in _warned:
        _warned.add((op, reason))
        warnings.warn(f"{op}: {reason}; using the slower pure-torch reference "
                      "(see `wm doctor`)", RuntimeWarning, stacklevel=3)
    return False


def log_mel_spectrogram(audio: torch.Tensor, filters: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Whisper-normalised log-mel spectrogram; see :func:`reference.log_mel_spectrogram`.

    audio: float32, shape = (B, N) or (N,), samples; filters: float32, shape =
    (n_mels, n_fft // 2 + 1); returns float32, shape = (B, n_mels, N // hop_length) or
    (n_mels, N // hop_length), clamped to each row's max - 8 (log10 units) and scaled.
    """
    if _use_compiled("log_mel_spectrogram", audio.device):
        return torch.ops.whispermedia.log_mel_spectrogram(audio, filters, hop_length)
    return reference.log_mel_spectrogram(audio, filters, hop_length)


def log_mel_frames(audio: torch.Tensor, filters: torch.Tensor, hop_length: int,
                   maximum: Optional[float] = None) -> torch.Tensor:
    """The frames of :func:`log_mel_spectrogram` normalised with a given ``maximum`` (of log10
    mel, e.g. a whole file's) instead of each row's own, or not normalised at all
    (``log10(max(mel, 1e-10))``) when ``maximum`` is None; see
    :func:`reference.log_mel_frames`. Same arguments and shapes as :func:`log_mel_spectrogram`,
    and ``log_mel_frames(x, f, h, log_mel_frames(x, f, h).max())`` equals
    ``log_mel_spectrogram(x, f, h)`` bit for bit on the compiled kernels.
    """
    if _use_compiled("log_mel_frames", audio.device):
        return torch.ops.whispermedia.log_mel_frames(audio, filters, hop_length, maximum)
    return reference.log_mel_frames(audio, filters, hop_length, maximum)


def kv_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
    seqlens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Append this step's keys/values to the caches and attend causally; see
    :func:`reference.kv_attention`.

    q, k_new, v_new: shape = (B, Tq, H, D); k_cache, v_cache: shape = (B, Tmax, H, D),
    written in place at rows [seqlens[b], seqlens[b] + Tq); seqlens: int32, shape = (B,),
    not advanced; returns shape = (B, Tq, H, D) in q's dtype.
    """
    if _use_compiled("kv_attention", q.device):
        return torch.ops.whispermedia.kv_attention(q, k_cache, v_cache, k_new, v_new, seqlens, scale)
    return reference.kv_attention(q, k_cache, v_cache, k_new, v_new, seqlens, scale)


def backend_info() -> dict:
    """Which implementation of each op is live, for ``wm doctor`` and bug reports.

    Returns ``{"extension_loaded", "extension_error", "extension_path", "cuda_built",
    "forced_reference", "ops": {op: {"cpu": ..., "cuda": ...}}}``. Per device the value is
    ``"compiled"`` or ``"reference"``; ``"cuda"`` is ``"unavailable"`` when torch sees no
    CUDA device, and ``"not used"`` for the CPU-only decode-step linears. ``cuda_built`` says
    whether the CUDA kernels are registered at all.
    """
    forced = _forced_reference()
    cuda_available = torch.cuda.is_available()

    def path(op: str, device: str) -> str:
        if device == "cuda" and not cuda_available:
            return "unavailable"
        return "compiled" if _COMPILED[op][device] and not forced else "reference"

    return {
        "extension_loaded": _C is not None,
        "extension_error": _EXTENSION_ERROR,
        "extension_path": getattr(_C, "__file__", None),
        "cuda_built": all(_COMPILED[op]["cuda"] for op in _OPS),
        "forced_reference": forced,
        "ops": {
            **{op: {"cpu": path(op, "cpu"), "cuda": path(op, "cuda")} for op in _REPORTED_OPS},
            **{op: {"cpu": "compiled" if use_cpu_kernel(op) else "reference", "cuda": "not used"} for op in _CPU_OPS},
        },
    }
