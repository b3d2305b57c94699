"""Whisper's encoder and decoder as our own torch modules.

Parameter names follow openai-whisper's, so its ``.pt`` checkpoints load as they are and the
fidelity bench can hand our weights to its model unchanged.

The decoder never concatenates: a ``KVCache`` holds preallocated self-attention K/V of shape
``[n_layer, batch, n_text_ctx, n_head, head_dim]`` written in place by the fused
``kv_attention`` op at positions given by the ``seqlens`` tensor, and the cross-attention K/V
of shape ``[n_layer, batch, n_head, n_audio_ctx, head_dim]``, computed once per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import ops
from .weights import ModelDimensions


class LayerNorm(nn.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:
        # in float32 whatever the weights' dtype: fp16 layer norms lose too much
        return super().forward(x.float()).type(x.dtype)


class Linear(nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.weight.to(x.dtype), bias)


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

    def split_heads(self, x: Tensor) -> Tensor:
        """[B, T, n_state] -> [B, T, n_head, head_dim] (a view)."""
        return x.view(*x.shape[:2], self.n_head, -1)

    def forward(self, x: Tensor) -> Tensor:
        """Full (non-causal) self-attention over ``x`` [B, T, n_state], as the encoder uses it."""
        q, k, v = (self.split_heads(p(x)).transpose(1, 2) for p in (self.query, self.key, self.value))
        a = F.scaled_dot_product_attention(q, k, v)
        return self.out(a.transpose(1, 2).flatten(2))


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
        x = F.gelu(self.conv2(x)).permute(0, 2, 1)
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
        self.cross_attn = MultiHeadAttention(n_state, n_head)
        self.cross_attn_ln = LayerNorm(n_state)
        self.mlp = mlp(n_state)
        self.mlp_ln = LayerNorm(n_state)


@dataclass
class KVCache:
    """Preallocated decoder caches for ``batch`` sequences of up to ``n_text_ctx`` tokens.

    self_k, self_v: [n_layer, B, n_text_ctx, n_head, head_dim], written by ``kv_attention``
    cross_k, cross_v: [n_layer, B, n_head, n_audio_ctx, head_dim], set once per window
    seqlens: [B] int32, tokens already in the cache per row (advanced by the decoder)
    """

    self_k: Tensor
    self_v: Tensor
    cross_k: Tensor
    cross_v: Tensor
    seqlens: Tensor

    def reorder(self, source_rows: Tensor) -> None:
        """Row i takes the self-attention contents of row ``source_rows[i]`` (beam search).

        The buffers stay where they are (a CUDA graph keeps its pointers). Beams only ever take
        rows of the same audio, so the cross-attention K/V need no move.
        """
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
        repeated ``rows_per_audio`` times (samples or beams), cross K/V computed here once."""
        d = self.dims
        n_audio, n_ctx_audio, _ = audio_features.shape
        batch = n_audio * rows_per_audio
        head_dim = d.n_text_state // d.n_text_head
        dtype, device = audio_features.dtype, audio_features.device
        shape = (d.n_text_layer, batch, d.n_text_ctx, d.n_text_head, head_dim)
        cross_shape = (d.n_text_layer, batch, d.n_text_head, n_ctx_audio, head_dim)
        cross_k = torch.empty(cross_shape, dtype=dtype, device=device)
        cross_v = torch.empty(cross_shape, dtype=dtype, device=device)
        for i, block in enumerate(self.blocks):
            attn = block.cross_attn
            k = attn.split_heads(attn.key(audio_features)).transpose(1, 2)
            v = attn.split_heads(attn.value(audio_features)).transpose(1, 2)
            cross_k[i] = k.repeat_interleave(rows_per_audio, dim=0)
            cross_v[i] = v.repeat_interleave(rows_per_audio, dim=0)
        return KVCache(
            self_k=torch.zeros(shape, dtype=dtype, device=device),
            self_v=torch.zeros(shape, dtype=dtype, device=device),
            cross_k=cross_k,
            cross_v=cross_v,
            seqlens=torch.zeros(batch, dtype=torch.int32, device=device),
        )

    def forward(self, tokens: Tensor, cache: KVCache, cross_qk: Optional[list] = None) -> Tensor:
        """tokens [B, T] (the next T tokens of each row) -> logits [B, T, n_vocab], float32.

        Appends the tokens' K/V to ``cache`` and advances ``cache.seqlens`` by T. When
        ``cross_qk`` is a list, each layer's cross-attention logits [B, n_head, T, n_audio_ctx]
        (float32, before softmax) are appended to it: word timing aligns tokens to audio with
        them. SDPA does not expose them, so that path computes attention explicitly.
        """
        batch, n_new = tokens.shape
        positions = cache.seqlens.long()[:, None] + torch.arange(n_new, device=tokens.device)
        x = self.token_embedding(tokens) + self.positional_embedding[positions]
        x = x.to(cache.self_k.dtype)
        head_dim = x.shape[-1] // self.dims.n_text_head
        scale = head_dim ** -0.5
        for i, block in enumerate(self.blocks):
            attn = block.attn
            h = block.attn_ln(x)
            q, k, v = (attn.split_heads(p(h)) for p in (attn.query, attn.key, attn.value))
            a = ops.kv_attention(q, cache.self_k[i], cache.self_v[i], k, v, cache.seqlens, scale)
            x = x + attn.out(a.flatten(2))

            cross = block.cross_attn
            q = cross.split_heads(cross.query(block.cross_attn_ln(x))).transpose(1, 2)
            if cross_qk is None:
                a = F.scaled_dot_product_attention(q, cache.cross_k[i], cache.cross_v[i])
            else:
                qk = (q @ cache.cross_k[i].transpose(-1, -2)).float() * scale
                cross_qk.append(qk)
                a = (qk.softmax(dim=-1) @ cache.cross_v[i].float()).to(q.dtype)
            x = x + cross.out(a.transpose(1, 2).flatten(2))

            x = x + block.mlp(block.mlp_ln(x))
        cache.seqlens += n_new
        x = self.ln(x)
        return (x @ self.token_embedding.weight.to(x.dtype).T).float()


class Whisper(nn.Module):
    """The whole model. ``name`` says where it came from (registry name or path)."""

    def __init__(self, dims: ModelDimensions, name: str = "whisper"):
        super().__init__()
        self.dims = dims
        self.name = name
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)
        # set by the loader
        self.alignment_heads: Tuple[Tuple[int, int], ...] = ()
        self.suppress_tokens: Optional[Tuple[int, ...]] = None
        self.tokenizer = None

    @property
    def device(self) -> torch.device:
        return self.decoder.token_embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.token_embedding.weight.dtype

    @property
    def is_multilingual(self) -> bool:
        return self.dims.n_vocab >= 51865

    @property
    def num_languages(self) -> int:
        return self.dims.n_vocab - 51765 - int(self.is_multilingual)

    def embed_audio(self, mel: Tensor) -> Tensor:
        """mel [B, n_mels, 3000] -> audio features [B, 1500, n_audio_state] in the model's dtype."""
        return self.encoder(mel.to(self.dtype))
