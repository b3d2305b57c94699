"""Fake (meta) kernels of the compiled ops, for torch.compile and FakeTensor tracing.

Shape and dtype only, mirroring the checks of the real kernels with ``torch._check`` so a
traced graph fails at trace time for inputs the kernels would reject. Imported by
:mod:`whispermedia.ops` after ``whispermedia._C`` has defined the schemas.
"""

from __future__ import annotations

import torch

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _log_mel_shape(audio: torch.Tensor, filters: torch.Tensor, hop_length: int) -> torch.Tensor:
    torch._check(audio.dim() in (1, 2), lambda: f"audio must be [N] or [B, N], got {tuple(audio.shape)}")
    torch._check(filters.dim() == 2, lambda: f"filters must be 2-D, got {tuple(filters.shape)}")
    torch._check(audio.dtype == torch.float32 and filters.dtype == torch.float32,
                 lambda: "audio and filters must be float32")
    torch._check(audio.device == filters.device, lambda: "audio and filters must be on the same device")
    torch._check(hop_length > 0, lambda: f"hop_length must be positive, got {hop_length}")
    n_fft = 2 * (filters.shape[1] - 1)
    n_samples = audio.shape[-1]
    torch._check(n_samples > n_fft // 2, lambda: f"audio of {n_samples} samples is too short to reflect-pad")
    n_frames = n_samples // hop_length
    if audio.dim() == 1:
        return audio.new_empty((filters.shape[0], n_frames))
    return audio.new_empty((audio.shape[0], filters.shape[0], n_frames))


@torch.library.register_fake("whispermedia::log_mel_spectrogram")
def _log_mel_spectrogram_fake(audio: torch.Tensor, filters: torch.Tensor, hop_length: int) -> torch.Tensor:
    return _log_mel_shape(audio, filters, hop_length)


@torch.library.register_fake("whispermedia::log_mel_frames")
def _log_mel_frames_fake(audio: torch.Tensor, filters: torch.Tensor, hop_length: int,
                         maximum: float | None = None) -> torch.Tensor:
    return _log_mel_shape(audio, filters, hop_length)


@torch.library.register_fake("whispermedia::kv_attention")
def _kv_attention_fake(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
    seqlens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    torch._check(q.dim() == 4, lambda: f"q must be [B, Tq, H, D], got {tuple(q.shape)}")
    B, Tq, H, D = q.shape
    torch._check(k_cache.dim() == 4 and v_cache.shape == k_cache.shape, lambda: "caches must be [B, Tmax, H, D]")
    torch._check(k_cache.shape[0] == B and k_cache.shape[2] == H and k_cache.shape[3] == D,
                 lambda: f"cache shape {tuple(k_cache.shape)} does not match q {tuple(q.shape)}")
    torch._check(k_new.shape == q.shape and v_new.shape == q.shape, lambda: "k_new and v_new must match q")
    torch._check(seqlens.dim() == 1 and seqlens.shape[0] == B and seqlens.dtype == torch.int32,
                 lambda: "seqlens must be int32 [B]")
    torch._check(q.dtype in _DTYPES, lambda: f"unsupported dtype {q.dtype}")
    torch._check(all(t.dtype == q.dtype for t in (k_cache, v_cache, k_new, v_new)),
                 lambda: "q, caches, k_new and v_new must share one dtype")
    torch._check(Tq <= k_cache.shape[1], lambda: "Tq exceeds the cache length")
    # The kernels return a fresh contiguous tensor, never a view of an input.
    return torch.empty((B, Tq, H, D), dtype=q.dtype, device=q.device)


def _check_linear(x: torch.Tensor, weight: torch.Tensor, weight_dtype: torch.dtype,
                  scale: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    torch._check(x.dim() >= 1, lambda: "x must have at least one dimension")
    torch._check(weight.dim() == 2, lambda: f"weight must be 2-D, got {tuple(weight.shape)}")
    torch._check(x.dtype == torch.float32, lambda: f"x must be float32, got {x.dtype}")
    torch._check(weight.dtype == weight_dtype, lambda: f"weight must be {weight_dtype}, got {weight.dtype}")
    torch._check(x.shape[-1] == weight.shape[1],
                 lambda: f"x has {x.shape[-1]} features, weight expects {weight.shape[1]}")
    for name, t in (("scale", scale), ("bias", bias)):
        if t is not None:
            torch._check(t.dtype == torch.float32 and t.dim() == 1 and t.shape[0] == weight.shape[0],
                         lambda: f"{name} must be float32 of shape ({weight.shape[0]},), got {tuple(t.shape)}")
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


@torch.library.register_fake("whispermedia::linear_f16w")
def _linear_f16w_fake(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return _check_linear(x, weight, torch.float16, None, bias)


@torch.library.register_fake("whispermedia::linear_i8w")
def _linear_i8w_fake(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor,
                     bias: torch.Tensor | None = None) -> torch.Tensor:
    return _check_linear(x, weight, torch.int8, scale, bias)


@torch.library.register_fake("whispermedia::cross_attention")
def _cross_attention_fake(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    torch._check(q.dim() == 4 and k.dim() == 4 and v.dim() == 4,
                 lambda: f"q, k and v must be [A, H, G|S, D], got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    torch._check(all(t.dtype == torch.float32 for t in (q, k, v)), lambda: "q, k and v must be float32")
    torch._check(k.shape == v.shape,
                 lambda: f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    torch._check(q.shape[0] == k.shape[0] and q.shape[1] == k.shape[1] and q.shape[3] == k.shape[3],
                 lambda: f"q [A, H, G, D] and k [A, H, S, D] disagree: {tuple(q.shape)} and {tuple(k.shape)}")
    torch._check(k.shape[2] > 0, lambda: "k and v must hold at least one position")
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)
