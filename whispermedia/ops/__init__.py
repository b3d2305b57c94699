"""The compiled ops, called through typed wrappers that fall back to pure torch.

Each op has five parts (``docs/ops.md``): its schema in ``csrc/ops.cpp``, kernels in
``csrc/cpu`` and ``csrc/cuda``, a fake kernel in :mod:`whispermedia.ops._fake`, a pure-torch
reference in :mod:`whispermedia.ops.reference`, and a wrapper here:

- ``log_mel_spectrogram``, ``log_mel_frames``, ``kv_attention``: CPU and CUDA kernels;
- ``linear`` (over ``linear_f16w`` and ``linear_i8w``) and ``cross_attention``: CPU kernels
  of the decode step, used where they beat torch (few rows of float32 activations); a GPU
  runs torch's own GEMMs and SDPA, which is what their references are.

One rule decides every call (:func:`_use_compiled`): the kernel runs when ``whispermedia._C``
registered one for the input's device and ``WM_FORCE_REFERENCE=1`` is not set (read at each
call); otherwise the reference runs, with one ``RuntimeWarning`` per (op, reason) when a kernel
was expected on that device. :func:`backend_info` says which path is live; ``wm doctor`` prints
it.
"""

from __future__ import annotations

import os
import warnings
from typing import Optional

import torch
import torch.nn.functional as F

from whispermedia.ops import reference

__all__ = ["log_mel_spectrogram", "log_mel_frames", "kv_attention", "linear", "cross_attention", "has_kernel",
           "backend_info", "reference", "COMPACT_MAX_ROWS", "CROSS_MAX_ROWS"]

# Every op of whispermedia._C and the devices it has kernels for by design. The CPU-only ops
# have no CUDA kernel on purpose: there the reference (torch's GEMMs, SDPA) is the fast path.
_BACKENDS: dict[str, tuple[str, ...]] = {
    "log_mel_spectrogram": ("cpu", "cuda"),
    "log_mel_frames": ("cpu", "cuda"),
    "kv_attention": ("cpu", "cuda"),
    "linear_f16w": ("cpu",),
    "linear_i8w": ("cpu",),
    "cross_attention": ("cpu",),
}
# backend_info() leaves out log_mel_frames: it is log_mel_spectrogram's kernel with another
# maximum, registered by the same backend files, so it is live exactly where that one is.
_UNREPORTED = ("log_mel_frames",)

# Up to this many rows of x, linear() uses the compact-weight kernels (memory-bound: one pass
# over the weights); beyond, the BLAS GEMM on weights widened for the call (compute-bound: long
# prompts, 1500 audio rows). Measured on a 2048 x 512 weight: the kernel wins up to 64 rows, the
# BLAS from 128.
COMPACT_MAX_ROWS = 64
# Up to this many query rows per audio, cross_attention() uses the kernel (a one-token step:
# greedy, 5 beams or 5 samples), where reading the K/V from memory is the cost; beyond (prompt
# steps: rows x prompt tokens), SDPA, whose GEMM blocking wins once the arithmetic is (measured:
# 8 rows from cache 1.5x slower than SDPA, 228 rows 1.7x; 5 rows inside a step 0.7 ms against 1.1 ms).
CROSS_MAX_ROWS = 5

try:
    from whispermedia import _C  # noqa: F401  (loading the library registers the ops)
except (ImportError, OSError) as exc:  # a source checkout without a build, or an ABI mismatch with torch
    _C = None
    _EXTENSION_ERROR: str | None = f"{type(exc).__name__}: {exc}"
else:
    _EXTENSION_ERROR = None
    from whispermedia.ops import _fake  # noqa: F401  (needs the schemas defined by _C)


def _registered(op: str, dispatch_key: str) -> bool:
    if _C is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"whispermedia::{op}", dispatch_key)


# Registrations happen when _C loads and never change afterwards, so they are looked up
# once; a plain dict also keeps the wrappers traceable by torch.compile.
# "meta" is the fake kernel: shape inference on meta tensors goes through the op as well.
_COMPILED: dict[str, dict[str, bool]] = {
    op: {"cpu": _registered(op, "CPU"), "cuda": _registered(op, "CUDA"), "meta": _registered(op, "Meta")}
    for op in _BACKENDS
}
_warned: set[tuple[str, str]] = set()


def has_kernel(op: str, device: str = "cpu") -> bool:
    """Whether ``whispermedia._C`` registered a kernel of ``op`` (a name of
    ``torch.ops.whispermedia``) for ``device`` (``"cpu"``, ``"cuda"``, ``"meta"``), whatever
    ``WM_FORCE_REFERENCE`` says: what the model may lay its weights out for."""
    return _COMPILED[op].get(device, False)


def _forced_reference() -> bool:
    return os.environ.get("WM_FORCE_REFERENCE", "") == "1"


def _use_compiled(op: str, device: torch.device) -> bool:
    """The one dispatch rule: the kernel when it is registered for ``device`` and the
    reference is not forced; a missing kernel where ``op`` has one by design warns once."""
    if _forced_reference():
        return False
    if _COMPILED[op].get(device.type, False):
        return True
    if device.type not in _BACKENDS[op]:
        return False
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


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
           scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x @ (weight * scale[:, None]).T + bias`` in x's dtype, whatever the weight is stored as.

    x: shape = (..., K); weight: shape = (N, K), in x's dtype, or float16, or int8 with
    ``scale``: float, shape = (N,), one per output row; bias: shape = (N,) or None; returns
    shape = (..., N) in x's dtype. A weight in x's dtype is a plain ``F.linear``. Float32 x of at
    most ``COMPACT_MAX_ROWS`` rows goes through ``linear_f16w`` (float16 weights: the same
    float32 products, accumulated in float32) or ``linear_i8w`` (int8 weights), one pass over
    the compact weights; anything else widens the weight for the call
    (:func:`reference.linear_f16w`, :func:`reference.linear_i8w`).
    """
    if scale is None and weight.dtype == x.dtype:
        return F.linear(x, weight, None if bias is None else bias.to(x.dtype))
    if x.dtype == torch.float32 and x.numel() <= COMPACT_MAX_ROWS * x.shape[-1]:
        b = None if bias is None else bias.float()
        if scale is None and weight.dtype == torch.float16 and _use_compiled("linear_f16w", x.device):
            return torch.ops.whispermedia.linear_f16w(x, weight, b)
        if scale is not None and weight.dtype == torch.int8 and _use_compiled("linear_i8w", x.device):
            return torch.ops.whispermedia.linear_i8w(x, weight, scale.float(), b)
    if scale is None:
        return reference.linear_f16w(x, weight, bias)
    return reference.linear_i8w(x, weight, scale, bias)


def cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(scale * q @ k^T) @ v`` over the cached encoder K/V; see
    :func:`reference.cross_attention`.

    q: shape = (A, H, G, D), the G query rows of each of A audios; k, v: shape = (A, H, S, D);
    returns shape = (A, H, G, D) in q's dtype. Float32 with G <= ``CROSS_MAX_ROWS`` goes through
    the kernel (the K/V read once for all G rows: a 5-beam step spent 40% of its time in SDPA
    there); anything else through the reference, SDPA.
    """
    if q.dtype == torch.float32 and q.shape[2] <= CROSS_MAX_ROWS and _use_compiled("cross_attention", q.device):
        return torch.ops.whispermedia.cross_attention(q, k, v, scale)
    return reference.cross_attention(q, k, v, scale)


def backend_info() -> dict:
    """Which implementation of each op is live, for ``wm doctor`` and bug reports.

    Returns ``{"extension_loaded", "extension_error", "extension_path", "cuda_built",
    "forced_reference", "ops": {op: {"cpu": ..., "cuda": ...}}}``. Per device the value is
    ``"compiled"`` or ``"reference"``; ``"cuda"`` is ``"not used"`` for the CPU-only ops and
    ``"unavailable"`` for the others when torch sees no CUDA device. ``cuda_built`` says
    whether the CUDA kernels are registered at all.
    """
    forced = _forced_reference()
    cuda_available = torch.cuda.is_available()

    def path(op: str, device: str) -> str:
        if device not in _BACKENDS[op]:
            return "not used"
        if device == "cuda" and not cuda_available:
            return "unavailable"
        return "compiled" if _COMPILED[op][device] and not forced else "reference"

    return {
        "extension_loaded": _C is not None,
        "extension_error": _EXTENSION_ERROR,
        "extension_path": getattr(_C, "__file__", None),
        "cuda_built": all(_COMPILED[op]["cuda"] for op, devices in _BACKENDS.items() if "cuda" in devices),
        "forced_reference": forced,
        "ops": {op: {"cpu": path(op, "cpu"), "cuda": path(op, "cuda")}
                for op in _BACKENDS if op not in _UNREPORTED},
    }
