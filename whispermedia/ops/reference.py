"""Pure-torch reference of the compiled ops: the executable contract of ``whispermedia._C``.

Every compiled kernel (CPU and CUDA) is tested against these functions, and
:mod:`whispermedia.ops` falls back to them when the extension is missing. They run on any
device torch supports and favour clarity over speed.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["log_mel_spectrogram", "log_mel_frames", "kv_attention", "linear_f16w", "linear_i8w", "cross_attention"]

_LOG_FLOOR = 1e-10
_DYNAMIC_RANGE = 8.0  # log10 units kept below each row's maximum
_OFFSET = 4.0


def log_mel_spectrogram(audio: torch.Tensor, filters: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Whisper-normalised log-mel spectrogram.

    Parameters
    ----------
    audio: torch.Tensor, float32, shape = (B, N) or (N,)
        Waveform samples (Whisper expects 16 kHz mono in [-1, 1]). N must exceed n_fft // 2,
        the amount of reflect padding on each side.
    filters: torch.Tensor, float32, shape = (n_mels, n_fft // 2 + 1)
        Mel filter bank; its width fixes n_fft = 2 * (filters.shape[1] - 1) (400 for Whisper).
    hop_length: int
        Samples between frame centres (160 for Whisper, i.e. 100 frames per second).

    Returns
    -------
    torch.Tensor, float32, shape = (B, n_mels, N // hop_length) or (n_mels, N // hop_length)
        For each batch row b independently (as openai-whisper does for one clip, ref:
        https://github.com/openai/whisper/blob/c0d2f62/whisper/audio.py#L110-L157):

        1. reflect-pad the row by n_fft // 2 on both sides (``torch.stft(center=True,
           pad_mode="reflect")``) and cut frames of n_fft samples every hop_length samples,
           giving 1 + N // hop_length frames; frame t is centred on sample t * hop_length;
        2. multiply by the periodic Hann window of length n_fft; real FFT; power ``|X|^2``;
        3. drop the last frame (openai-whisper's ``stft[..., :-1]``): N // hop_length remain;
        4. ``mel = filters @ power``; ``x = log10(max(mel, 1e-10))``;
        5. ``x = max(x, x[b].max() - 8)``: the dynamic-range clamp uses the maximum of the
           whole row b (over all mels and frames), so a batch of unrelated clips gives each
           clip the numbers it would get alone, and a row equals openai-whisper's
           ``log_mel_spectrogram`` of that clip;
        6. ``(x + 4) / 4``.
    """
    log_spec = _log10_mel(audio, filters, hop_length)
    row_max = log_spec.amax(dim=(-2, -1), keepdim=True)
    return _normalize(log_spec, row_max)


def log_mel_frames(audio: torch.Tensor, filters: torch.Tensor, hop_length: int,
                   maximum: Optional[float] = None) -> torch.Tensor:
    """:func:`log_mel_spectrogram` with the maximum of step 5 given instead of found.

    Same arguments and shape, plus ``maximum``: a float, in log10 units like the values of
    step 4. Given, every row is clamped at ``maximum - 8`` and scaled (steps 5 and 6 with that
    maximum); None, steps 5 and 6 are left out and the result is ``log10(max(mel, 1e-10))``.

    What it is for: each frame depends only on the n_fft samples around it, so frames [a, b)
    of a long input can be computed from a slice of it (with n_fft // 2 samples of context on
    each side, the input's own reflect padding only at its true ends), and normalised with the
    maximum of the whole input found by an earlier pass over it with ``maximum=None``. The
    clamp is one float32 ``max`` against the same float32 bound and ``(x + 4) / 4`` is exact
    scaling, so on the compiled kernels such frames equal the whole input's
    :func:`log_mel_spectrogram` bit for bit.
    """
    log_spec = _log10_mel(audio, filters, hop_length)
    return log_spec if maximum is None else _normalize(log_spec, maximum)


def _log10_mel(audio: torch.Tensor, filters: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Steps 1 to 4: ``log10(max(filters @ |STFT|^2, 1e-10))``."""
    if audio.dtype != torch.float32 or filters.dtype != torch.float32:
        raise TypeError(f"audio and filters must be float32, got {audio.dtype} and {filters.dtype}")
    if audio.dim() not in (1, 2) or filters.dim() != 2:
        raise ValueError(f"audio must be [N] or [B, N] and filters [n_mels, n_fft//2+1], got "
                         f"{tuple(audio.shape)} and {tuple(filters.shape)}")
    n_fft = 2 * (filters.shape[1] - 1)
    n_samples = audio.shape[-1]
    if n_samples <= n_fft // 2:
        raise RuntimeError(f"log_mel_spectrogram: audio of {n_samples} samples is too short to "
                           f"reflect-pad by n_fft / 2 = {n_fft // 2} (need more than {n_fft // 2} samples)")
    if hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length}")

    x = audio if audio.dim() == 2 else audio.unsqueeze(0)
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float32, device=audio.device)
    stft = torch.stft(x, n_fft, hop_length, window=window, center=True, pad_mode="reflect",
                      return_complex=True)                      # [B, n_fft//2+1, 1 + N//hop]
    power = stft[..., :-1].abs() ** 2                           # [B, n_bins, N//hop]
    mel = filters.to(audio.device) @ power                      # [B, n_mels, N//hop]
    log_spec = torch.clamp(mel, min=_LOG_FLOOR).log10()
    return log_spec if audio.dim() == 2 else log_spec.squeeze(0)


def _normalize(log_spec: torch.Tensor, maximum) -> torch.Tensor:
    """Steps 5 and 6 with a given maximum (a float, or a tensor broadcasting per row), float32."""
    lo = torch.as_tensor(maximum, dtype=torch.float32, device=log_spec.device) - _DYNAMIC_RANGE
    return (torch.maximum(log_spec, lo) + _OFFSET) / _OFFSET


def kv_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
    seqlens: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """One decoder self-attention step over a preallocated key/value cache.

    Parameters
    ----------
    q: torch.Tensor, shape = (B, Tq, H, D)
        Queries of this step's Tq tokens (Tq = 1 while decoding, the prompt length at first).
    k_cache, v_cache: torch.Tensor, shape = (B, Tmax, H, D), modified in place
        Keys/values of the tokens seen so far; rows ``[seqlens[b], seqlens[b] + Tq)`` of
        batch row b receive ``k_new[b]`` / ``v_new[b]``, every other row is left untouched.
        Rows from ``seqlens[b] + Tq`` on are never used and may hold any bits (NaN included):
        a cache need not be zeroed.
        Their last dimension must be contiguous.
    k_new, v_new: torch.Tensor, shape = (B, Tq, H, D)
        This step's keys/values.
    seqlens: torch.Tensor, int32, shape = (B,)
        Number of cache rows already filled for each batch row (a tensor, so that a decode
        step has static shapes and can be captured in a CUDA graph). Not advanced here: the
        caller adds Tq after the call. ``seqlens[b] + Tq <= Tmax`` is required.
    scale: float
        Multiplies ``q . k`` before the softmax (usually ``D ** -0.5``).

    Returns
    -------
    torch.Tensor, shape = (B, Tq, H, D), dtype of q
        ``out[b, i, h] = softmax_j(scale * q[b, i, h] . k_cache[b, j, h]) @ v_cache[b, :, h]``
        with j over the causal prefix ``[0, seqlens[b] + i]`` (the cache after the append).
        q, k and v may be float32, float16 or bfloat16 (all the same dtype); scores, softmax
        and the weighted sum are computed in float32 and the result is rounded once.
    """
    if q.dim() != 4 or k_cache.dim() != 4:
        raise ValueError(f"q and k_cache must be [B, T, H, D], got {tuple(q.shape)} and {tuple(k_cache.shape)}")
    B, Tq, H, D = q.shape
    Tmax = k_cache.shape[1]
    for name, t, shape in (("k_cache", k_cache, (B, Tmax, H, D)), ("v_cache", v_cache, (B, Tmax, H, D)),
                           ("k_new", k_new, (B, Tq, H, D)), ("v_new", v_new, (B, Tq, H, D)),
                           ("seqlens", seqlens, (B,))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if seqlens.dtype != torch.int32:
        raise TypeError(f"seqlens must be int32, got {seqlens.dtype}")

    lens = seqlens.to(torch.int64)
    fits = (lens >= 0) & (lens + Tq <= Tmax)
    if seqlens.device.type == "cpu" and not torch.compiler.is_compiling():
        bad = (~fits).nonzero()
        if bad.numel():
            b = int(bad[0, 0])
            raise RuntimeError(f"kv_attention: cache overflow in batch row {b}: seqlens[{b}] = {int(seqlens[b])} "
                               f"plus Tq = {Tq} new rows exceeds the cache length Tmax = {Tmax}")
    else:
        # No host sync on accelerators (and traceable): fails asynchronously instead.
        torch._assert_async(fits.all(), "kv_attention: seqlens[b] + Tq exceeds the cache length Tmax")

    rows = lens[:, None] + torch.arange(Tq, device=q.device)       # [B, Tq] cache row of each new token
    batch = torch.arange(B, device=q.device)[:, None].expand(B, Tq)
    k_cache[batch, rows] = k_new
    v_cache[batch, rows] = v_new

    scores = torch.einsum("bihd,bjhd->bhij", q.float(), k_cache.float()) * scale   # [B, H, Tq, Tmax]
    visible = torch.arange(Tmax, device=q.device)[None, None, :] <= rows[:, :, None]  # [B, Tq, Tmax]
    scores = scores.masked_fill(~visible[:, None], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    # rows past the last new one were never written (a cache may be torch.empty): any bits, NaN
    # included, which a zero probability would still turn into NaN
    unwritten = ~visible[:, -1]  # [B, Tmax]: past the last new row
    out = torch.einsum("bhij,bjhd->bihd", probs, v_cache.float().masked_fill(unwritten[:, :, None, None], 0.0))
    return out.to(q.dtype)


def linear_f16w(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x @ weight.T + bias`` with the weight stored in another dtype than x.

    Parameters
    ----------
    x: torch.Tensor, shape = (..., K)
        Activations; the op's contract is float32.
    weight: torch.Tensor, shape = (N, K)
        The op's contract is float16 (Whisper's released weights): widening float16 to
        float32 is exact, so the op computes a float32 linear on the same weight values.
    bias: torch.Tensor, shape = (N,), or None

    Returns
    -------
    torch.Tensor, shape = (..., N), dtype of x
        ``F.linear`` on the weight (and bias) widened to x's dtype. The kernel sums the K
        products in float32 in its own order (the same for every row whatever the rows
        around it), so it agrees with this to float32 summation error, not bit for bit.
    """
    return F.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))


def linear_i8w(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor,
               bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(x @ weight.T) * scale + bias``: int8-stored weights with one scale per output row.

    Parameters
    ----------
    x: torch.Tensor, shape = (..., K)
        Activations; the op's contract is float32.
    weight: torch.Tensor, int8, shape = (N, K)
    scale: torch.Tensor, shape = (N,)
        Row n of the weight stands for ``weight[n] * scale[n]``; the op's contract is float32.
    bias: torch.Tensor, shape = (N,), or None

    Returns
    -------
    torch.Tensor, shape = (..., N), dtype of x
        ``F.linear`` on the dequantized weight ``weight * scale[:, None]`` in x's dtype (the
        same value as scaling each output; the kernel scales the float32 sums instead).
    """
    w = weight.to(x.dtype) * scale.to(x.dtype)[:, None]
    return F.linear(x, w, None if bias is None else bias.to(x.dtype))


def cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Attention of a decode step's rows over their audio's cached encoder keys/values.

    Parameters
    ----------
    q: torch.Tensor, shape = (A, H, G, D)
        The G query rows of each of A audios (beams or samples of one window, times the new
        tokens of each); the op's contract is float32.
    k, v: torch.Tensor, shape = (A, H, S, D)
        That audio's keys/values (S = 1500 for Whisper), the same dtype as q; S >= 1.
    scale: float
        Multiplies ``q . k`` before the softmax (usually ``D ** -0.5``).

    Returns
    -------
    torch.Tensor, shape = (A, H, G, D), dtype of q
        ``softmax(scale * q @ k^T) @ v`` over all S positions (no mask), here PyTorch's
        ``F.scaled_dot_product_attention``. The kernel computes scores, softmax and sums in
        float32 and must stay within twice SDPA's own error of a float64 evaluation; a row's
        result does not depend on the other rows.
    """
    return F.scaled_dot_product_attention(q, k, v, scale=scale)
