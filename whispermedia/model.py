"""Whisper's encoder and decoder as our own torch modules.

Parameter names follow openai-whisper's, so its ``.pt`` checkpoints load as they are and the
fidelity bench can hand our weights to its model unchanged.

The decoder never concatenates: a ``KVCache`` holds preallocated self-attention K/V of shape
``[n_layer, batch, n_text_ctx, n_head, head_dim]`` written in place by the fused
``kv_attention`` op at positions given by the ``seqlens`` tensor, and the cross-attention K/V
of shape ``[n_layer, n_audio, n_head, n_audio_ctx, head_dim]``, computed once per window and
shared by all the rows (beams, samples) that decode the same audio; on the CPU
``whispermedia::cross_attention`` reads it once per step for all of them.

On the CPU a decode step streams every decoder weight and the 51865-row token embedding through
memory for one or a few rows of activations, so bytes are its cost. ``Whisper.set_compute_type``
lays the decoder out for that: with ``"float32"`` (the default) the decoder's weights are kept as
float16 wherever that is exact (Whisper's released weights are float16) and multiplied in float32
by ``ops.linear`` (the ``linear_f16w`` kernel), a float32 matmul with the same weight values from half
the bytes; the self-attention's query/key/value are one fused matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import ops
from .options import COMPUTE_TYPES
from .tokenizer import Tokenizer
from .weights import ModelDimensions


class LayerNorm(nn.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:
        # in float32 whatever the weights' dtype: fp16 layer norms lose too much
        weight, bias = self.weight, self.bias
        if weight is not None and weight.dtype != torch.float32:  # the CPU takes no mixed dtypes
            weight, bias = weight.float(), None if bias is None else bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).type(x.dtype)


class Linear(nn.Linear):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # per-row scales of int8-stored weights (compute type "int8"), else None
        self.register_buffer("weight_scale", None, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return ops.linear(x, self.weight, self.bias, self.weight_scale)


class Conv1d(nn.Conv1d):
    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return super()._conv_forward(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = Linear(n_state, n_state)
        self.key = Linear(n_state, n_state, bias=False)
        self.value = Linear(n_state, n_state)
        self.out = Linear(n_state, n_state)
        # set by Whisper.set_compute_type: query/key/value as one [3 * n_state, n_state] matrix
        # (and its per-row scales when int8); the three projections' weights are views of its row blocks
        self.qkv_weight: Optional[Tensor] = None
        self.qkv_bias: Optional[Tensor] = None
        self.qkv_scale: Optional[Tensor] = None

    def qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Query, key and value of ``x`` [B, T, n_state], each [B, T, n_head, head_dim] (views)."""
        if self.qkv_weight is None:
            return tuple(self.split_heads(p(x)) for p in (self.query, self.key, self.value))
        qkv = ops.linear(x, self.qkv_weight, self.qkv_bias, self.qkv_scale)
        return qkv.view(*x.shape[:2], 3, self.n_head, -1).unbind(2)

    def fuse_qkv(self) -> None:
        """Store query/key/value in one matrix (one pass over the weights per step), the three
        projections' weights becoming views of it; the key's missing bias is zeros."""
        q, k, v = self.query, self.key, self.value
        n = q.weight.shape[0]
        weight = torch.cat([q.weight, k.weight.to(q.weight.dtype), v.weight.to(q.weight.dtype)])
        bias = torch.cat([q.bias, torch.zeros_like(q.bias), v.bias.to(q.bias.dtype)])
        scales = [p.weight_scale for p in (q, k, v)]
        scale = None if any(t is None for t in scales) else torch.cat(scales)
        for i, proj in enumerate((q, k, v)):
            proj.weight = nn.Parameter(weight[i * n:(i + 1) * n], requires_grad=False)
            if scale is not None:
                proj.weight_scale = scale[i * n:(i + 1) * n]
        q.bias = nn.Parameter(bias[:n], requires_grad=False)
        v.bias = nn.Parameter(bias[2 * n:], requires_grad=False)
        self.qkv_weight, self.qkv_bias, self.qkv_scale = weight, bias, scale

    def unfuse_qkv(self) -> None:
        self.qkv_weight = self.qkv_bias = self.qkv_scale = None

    def split_heads(self, x: Tensor) -> Tensor:
        """[B, T, n_state] -> [B, T, n_head, head_dim] (a view)."""
        return x.view(*x.shape[:2], self.n_head, -1)

    def forward(self, x: Tensor) -> Tensor:
        """Full (non-causal) self-attention over ``x`` [B, T, n_state], as the encoder uses it."""
        q, k, v = (t.transpose(1, 2) for t in self.qkv(x))
        a = F.scaled_dot_product_attention(q, k, v)
        return self.out(a.transpose(1, 2).flatten(2))

    def cached(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, seqlens: Tensor) -> Tensor:
        """Causal self-attention of the T new tokens ``x`` [B, T, n_state] over one layer's cache
        ``k_cache``, ``v_cache`` [B, n_text_ctx, n_head, head_dim], which receives their keys and
        values at rows ``seqlens[b]`` on (``ops.kv_attention``; ``seqlens`` is not advanced)."""
        q, k, v = self.qkv(x)
        a = ops.kv_attention(q, k_cache, v_cache, k, v, seqlens, q.shape[-1] ** -0.5)
        return self.out(a.flatten(2))


class CrossAttention(MultiHeadAttention):
    """The decoder's attention over the encoded audio, whose keys and values are computed once
    per window (``kv``) and shared by the rows (beams, samples) that decode the same audio."""

    def kv(self, audio_features: Tensor) -> Tuple[Tensor, Tensor]:
        """audio_features [n_audio, n_audio_ctx, n_state] -> keys, values, each
        [n_audio, n_head, n_audio_ctx, head_dim]."""
        return tuple(self.split_heads(p(audio_features)).transpose(1, 2) for p in (self.key, self.value))

    def forward(self, x: Tensor, k: Tensor, v: Tensor, rows_per_audio: int,
                cross_qk: Optional[list] = None) -> Tensor:
        """x [B, T, n_state], B = n_audio * rows_per_audio (each audio's rows consecutive), over
        its audio's ``k``, ``v`` [n_audio, n_head, n_audio_ctx, head_dim] -> [B, T, n_state].

        When ``cross_qk`` is a list, the attention logits [B, n_head, T, n_audio_ctx] (float32,
        before the softmax) are appended to it and the attention is computed explicitly
        (``ops.cross_attention``, like SDPA, does not expose them).
        """
        return self.out(self.attend(self.split_heads(self.query(x)), k, v, rows_per_audio, cross_qk))

    def attend(self, q: Tensor, k: Tensor, v: Tensor, rows_per_audio: int,
               cross_qk: Optional[list] = None) -> Tensor:
        """The attention of ``forward`` between its two projections: the query ``q`` [B, T, H, D]
        over ``k``, ``v`` -> [B, T, n_state], before the output projection (a batched decode
        step projects many decodes' rows at once and attends per decode)."""
        batch, n_new = q.shape[:2]
        group = rows_per_audio
        n_audio = batch // group
        n_head, head_dim = q.shape[2], q.shape[3]
        scale = head_dim ** -0.5
        # the rows of one audio attend to its one copy of the K/V: [n_audio, H, group * T, D]
        q = q.view(n_audio, group, n_new, n_head, head_dim).permute(0, 3, 1, 2, 4)
        q = q.reshape(n_audio, n_head, group * n_new, head_dim)
        if cross_qk is None:
            a = ops.cross_attention(q, k, v, scale)
        else:
            qk = (q @ k.transpose(-1, -2)).float() * scale
            cross_qk.append(qk.reshape(n_audio, n_head, group, n_new, -1).transpose(1, 2)
                            .reshape(batch, n_head, n_new, -1))
            a = (qk.softmax(dim=-1) @ v.float()).to(q.dtype)
        return a.reshape(n_audio, n_head, group, n_new, head_dim).permute(0, 2, 3, 1, 4).reshape(batch, n_new, -1)


def mlp(n_state: int) -> nn.Sequential:
    return nn.Sequential(Linear(n_state, 4 * n_state), nn.GELU(), Linear(4 * n_state, n_state))


class EncoderBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = LayerNorm(n_state)
        self.mlp = mlp(n_state)
        self.mlp_ln = LayerNorm(n_state)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class AudioEncoder(nn.Module):
    def __init__(self, dims: ModelDimensions):
        super().__init__()
        self.conv1 = Conv1d(dims.n_mels, dims.n_audio_state, kernel_size=3, padding=1)
        # stride 2 halves 3000 mel frames into 1500 audio positions (20 ms each)
        self.conv2 = Conv1d(dims.n_audio_state, dims.n_audio_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", torch.empty(dims.n_audio_ctx, dims.n_audio_state))
        self.blocks = nn.ModuleList(EncoderBlock(dims.n_audio_state, dims.n_audio_head)
                                    for _ in range(dims.n_audio_layer))
        self.ln_post = LayerNorm(dims.n_audio_state)

    def forward(self, mel: Tensor) -> Tensor:
        """mel [B, n_mels, 2 * n_audio_ctx] -> audio features [B, n_audio_ctx, n_audio_state]."""
        x = F.gelu(self.conv1(mel))
        # contiguous once here: a permuted x would make every layer norm and projection copy it
        x = F.gelu(self.conv2(x)).permute(0, 2, 1).contiguous()
        if x.shape[1:] != self.positional_embedding.shape:
            raise ValueError(f"encoder expects {2 * self.positional_embedding.shape[0]} mel frames, "
                             f"got {mel.shape[-1]}")
        x = (x + self.positional_embedding).to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


class DecoderBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = LayerNorm(n_state)
        self.cross_attn = CrossAttention(n_state, n_head)
        self.cross_attn_ln = LayerNorm(n_state)
        self.mlp = mlp(n_state)
        self.mlp_ln = LayerNorm(n_state)

    def forward(self, x: Tensor, cache: KVCache, layer: int, cross_qk: Optional[list] = None) -> Tensor:
        """x [B, T, n_state] (the T new tokens of each row) -> [B, T, n_state], through
        ``cache``'s entries of ``layer``; see ``TextDecoder.forward`` for ``cross_qk``."""
        x = x + self.attn.cached(self.attn_ln(x), cache.self_k[layer], cache.self_v[layer], cache.seqlens)
        x = x + self.cross_attn(self.cross_attn_ln(x), cache.cross_k[layer], cache.cross_v[layer],
                                cache.rows_per_audio, cross_qk)
        return x + self.mlp(self.mlp_ln(x))


@dataclass
class KVCache:
    """Preallocated decoder caches for ``batch`` sequences of up to ``n_text_ctx`` tokens, decoding
    ``batch // rows_per_audio`` audios (each audio's rows consecutive: beams or samples).

    self_k, self_v: [n_layer, B, n_text_ctx, n_head, head_dim], written by ``kv_attention``
    cross_k, cross_v: [n_layer, n_audio, n_head, n_audio_ctx, head_dim], set once per window,
        one copy per audio, shared by its rows
    seqlens: [B] int32, tokens already in the cache per row (advanced by the decoder)
    """

    self_k: Tensor
    self_v: Tensor
    cross_k: Tensor
    cross_v: Tensor
    seqlens: Tensor
    rows_per_audio: int = 1

    def reorder(self, source_rows: Tensor) -> None:
        """Row i takes the self-attention contents of row ``source_rows[i]`` (beam search).

        The buffers stay where they are (a CUDA graph keeps its pointers). Beams only ever take
        rows of the same audio, so the cross-attention K/V need no move. On a CPU only the rows
        that change, and only their positions below the longest length, are copied: the rest is
        never read (a row reads its positions below its ``seqlens``), and copying the whole
        buffers (base, 5 beams: 55 MB) cost more than a decoder step.
        """
        if self.seqlens.device.type == "cpu":
            length = int(self.seqlens.max())
            moved = (source_rows != torch.arange(source_rows.shape[0])).nonzero().flatten()
            if length > 0 and moved.numel():
                for t in (self.self_k, self.self_v):
                    written = t[:, :, :length]
                    written[:, moved] = written[:, source_rows[moved]]  # the sources are read first
        else:
            for t in (self.self_k, self.self_v):
                t.copy_(t.index_select(1, source_rows))
        self.seqlens.copy_(self.seqlens.index_select(0, source_rows))

    def reset(self) -> None:
        self.seqlens.zero_()


class TextDecoder(nn.Module):
    def __init__(self, dims: ModelDimensions):
        super().__init__()
        self.dims = dims
        self.token_embedding = nn.Embedding(dims.n_vocab, dims.n_text_state)
        self.positional_embedding = nn.Parameter(torch.empty(dims.n_text_ctx, dims.n_text_state))
        self.blocks = nn.ModuleList(DecoderBlock(dims.n_text_state, dims.n_text_head)
                                    for _ in range(dims.n_text_layer))
        self.ln = LayerNorm(dims.n_text_state)

    def new_cache(self, audio_features: Tensor, rows_per_audio: int = 1) -> KVCache:
        """Caches for decoding ``audio_features`` [n_audio, n_audio_ctx, n_state], each audio
        decoded by ``rows_per_audio`` rows (samples or beams); cross K/V computed here once."""
        d = self.dims
        n_audio, n_ctx_audio, _ = audio_features.shape
        batch = n_audio * rows_per_audio
        head_dim = d.n_text_state // d.n_text_head
        dtype, device = audio_features.dtype, audio_features.device
        shape = (d.n_text_layer, batch, d.n_text_ctx, d.n_text_head, head_dim)
        cross_shape = (d.n_text_layer, n_audio, d.n_text_head, n_ctx_audio, head_dim)
        cross_k = torch.empty(cross_shape, dtype=dtype, device=device)
        cross_v = torch.empty(cross_shape, dtype=dtype, device=device)
        for i, block in enumerate(self.blocks):
            cross_k[i], cross_v[i] = block.cross_attn.kv(audio_features)
        # not zeroed: a row's positions past its seqlens are never read (ops.kv_attention)
        return KVCache(
            self_k=torch.empty(shape, dtype=dtype, device=device),
            self_v=torch.empty(shape, dtype=dtype, device=device),
            cross_k=cross_k,
            cross_v=cross_v,
            seqlens=torch.zeros(batch, dtype=torch.int32, device=device),
            rows_per_audio=rows_per_audio,
        )

    def forward(self, tokens: Tensor, cache: KVCache, cross_qk: Optional[list] = None,
                logits_at: Optional[Sequence[int]] = None) -> Tensor:
        """tokens [B, T] (the next T tokens of each row) -> logits [B, T, n_vocab], float32.

        Appends the tokens' K/V to ``cache`` and advances ``cache.seqlens`` by T. ``logits_at``:
        only these positions of the T get logits ([B, len(logits_at), n_vocab]); the others are
        never projected onto the vocabulary. When ``cross_qk`` is a list, each layer's
        cross-attention logits [B, n_head, T, n_audio_ctx] (float32, before softmax) are appended
        to it: word timing aligns tokens to audio with them. SDPA does not expose them, so that
        path computes attention explicitly.
        """
        n_new = tokens.shape[1]
        positions = cache.seqlens.long()[:, None] + torch.arange(n_new, device=tokens.device)
        emb, emb_scale = self.token_embedding, getattr(self.token_embedding, "weight_scale", None)
        x = emb(tokens).to(self.positional_embedding.dtype)
        if emb_scale is not None:  # int8 rows
            x = x * emb_scale[tokens].unsqueeze(-1).to(x.dtype)
        x = x + self.positional_embedding[positions]
        x = x.to(cache.self_k.dtype)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer, cross_qk)
        cache.seqlens += n_new
        if logits_at is not None:
            x = x[:, list(logits_at)]
        x = self.ln(x)
        return ops.linear(x, emb.weight, None, emb_scale).float()


class Whisper(nn.Module):
    """The whole model: the modules, and what decoding needs to know about their checkpoint.

    tokenizer: the model's vocabulary; alignment_heads: the (layer, head) pairs of the decoder's
    cross-attention that word timing aligns with; suppress_tokens: the checkpoint's own token
    list for ``suppress_tokens="-1"``, or None for openai's default; name: where the model came
    from (registry name or path). ``models.build_model`` builds one from a checkpoint.
    """

    def __init__(self, dims: ModelDimensions, tokenizer: Tokenizer, alignment_heads: Tuple[Tuple[int, int], ...],
                 suppress_tokens: Optional[Tuple[int, ...]], name: str = "whisper"):
        super().__init__()
        self.dims = dims
        self.tokenizer = tokenizer
        self.alignment_heads = alignment_heads
        self.suppress_tokens = suppress_tokens
        self.name = name
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)
        self.compute_type = "float32"
        self._laid_out = False  # set_compute_type has run: .to() must lay the weights out again

    @property
    def device(self) -> torch.device:
        return self.decoder.token_embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype activations are computed in (weights may be stored more compactly)."""
        return self.decoder.positional_embedding.dtype

    @property
    def is_multilingual(self) -> bool:
        return self.dims.n_vocab >= 51865

    @property
    def num_languages(self) -> int:
        return self.dims.n_vocab - 51765 - int(self.is_multilingual)

    def embed_audio(self, mel: Tensor) -> Tensor:
        """mel [B, n_mels, 3000] -> audio features [B, 1500, n_audio_state] in the model's dtype
        (the encoder itself may run in another: compute type "bfloat16")."""
        return self.encoder(mel.to(self.encoder.conv1.weight.dtype)).to(self.dtype)

    # -- compute types ---------------------------------------------------------------------
    def set_compute_type(self, compute_type: str = "float32") -> "Whisper":
        """Lay the weights out for ``compute_type``; returns the model.

        ``"float32"`` (the default, exact): on the CPU every decoder weight that float16 holds
        exactly (all of them for Whisper's released float16 weights) is stored as float16 and
        multiplied in float32 (``linear``); the arithmetic is float32 with the same weight values,
        only the order of the additions changes. Elsewhere weights stay in the model's dtype.
        ``"bfloat16"``: the encoder runs in bfloat16, the decoder as with ``"float32"``.
        ``"int8"``: the decoder's weights are stored as int8 with one scale per output row
        (symmetric, round to nearest) and multiplied in float32 (``linear``); the encoder as
        with ``"float32"``. ``"int8_bfloat16"``: both.
        The last three round weights or activations (their WER effect: docs/benchmarks.md), so a
        model goes to them from ``"float32"`` only. In every case the self-attention's
        query/key/value are one fused matrix, and the
        cross-attention's key/value projections (once per window, 1500 rows), the layer norms,
        the biases and the caches stay in the model's dtype.
        """
        if compute_type not in COMPUTE_TYPES:
            raise ValueError(f"unknown compute type {compute_type!r} (known: {', '.join(COMPUTE_TYPES)})")
        if compute_type != self.compute_type and self.compute_type != "float32":
            raise ValueError(f"compute type {self.compute_type!r} has rounded the weights: load the model again "
                             f"for {compute_type!r}")
        self.compute_type = compute_type
        self._layout()
        self._laid_out = True
        return self

    def _layout(self) -> None:
        ct = self.compute_type
        if ct in ("bfloat16", "int8_bfloat16"):
            encoder_dtype = torch.bfloat16
        else:
            encoder_dtype = self.dtype
        if ct.startswith("int8"):
            storage = "int8"
        elif self.dtype == torch.float32 and self.device.type == "cpu" and ops.has_kernel("linear_f16w", "cpu"):
            storage = "float16"
        else:
            storage = None
        dec = self.decoder
        with torch.no_grad():
            self.encoder.to(encoder_dtype)
            for block in self.encoder.blocks:  # one [1500, 3 * n_state] projection per block
                block.attn.unfuse_qkv()
                block.attn.fuse_qkv()
            for block in dec.blocks:
                block.attn.unfuse_qkv()
                for lin in (block.attn.query, block.attn.key, block.attn.value, block.attn.out,
                            block.cross_attn.query, block.cross_attn.out, block.mlp[0], block.mlp[2]):
                    _store(lin, storage, self.dtype)
                block.attn.fuse_qkv()
            _store(dec.token_embedding, storage, self.dtype)

    def _apply(self, fn, recurse=True):
        # .to()/.float()/.cuda() convert each parameter on its own: the fused query/key/value
        # matrices (plain attributes) would stay behind and the storage dtypes would follow the
        # call, not the compute type, so the layout is made again for the new device and dtype
        super()._apply(fn, recurse)
        if self._laid_out:
            self._layout()
        return self


def _store(module: nn.Module, storage: Optional[str], dtype: torch.dtype) -> None:
    """Set ``module.weight`` (and ``weight_scale``) to the weight's values stored as ``storage``:
    "float16" where float16 holds them exactly (else ``dtype``), "int8" with per-row scales, or
    None: ``dtype``."""
    weight = module.weight.detach()
    scale = getattr(module, "weight_scale", None)
    if scale is not None:  # back to the values the int8 stand for
        weight = weight.to(dtype) * scale.to(dtype)[:, None]
    scale = None
    if storage == "int8":
        values = weight.float()
        scale = (values.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).tiny)
        weight = torch.round(values / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    elif storage == "float16" and weight.dtype != torch.float16:
        half = weight.to(torch.float16)
        weight = half if torch.equal(half.to(weight.dtype), weight) else weight.to(dtype)
    elif storage != "float16":
        weight = weight.to(dtype)
    module.weight = nn.Parameter(weight, requires_grad=False)
    if "weight_scale" not in module._buffers:
        module.register_buffer("weight_scale", None, persistent=False)
    module.weight_scale = scale
