"""Small random Whisper checkpoints written by the tests themselves, in each format we read.

The CTranslate2 writer is independent of our reader: it lays the bytes out from the format's
description, so a reader bug does not hide behind a matching writer bug.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from whispermedia.weights import ModelDimensions


def tiny_dims(n_mels: int = 80, n_vocab: int = 51865) -> ModelDimensions:
    # the audio context must stay 1500 (30 s of mel frames); the rest is as small as it gets
    return ModelDimensions(n_mels=n_mels, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
                           n_vocab=n_vocab, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=2)


def random_state_dict(dims: ModelDimensions, seed: int = 0) -> Dict[str, torch.Tensor]:
    """An openai-named state dict with random weights; key projections without bias, as in Whisper."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.05):
        return torch.randn(*shape, generator=g) * scale

    sd = {
        "encoder.conv1.weight": r(dims.n_audio_state, dims.n_mels, 3),
        "encoder.conv1.bias": r(dims.n_audio_state),
        "encoder.conv2.weight": r(dims.n_audio_state, dims.n_audio_state, 3),
        "encoder.conv2.bias": r(dims.n_audio_state),
        "encoder.positional_embedding": r(dims.n_audio_ctx, dims.n_audio_state),
        "encoder.ln_post.weight": 1 + r(dims.n_audio_state),
        "encoder.ln_post.bias": r(dims.n_audio_state),
        "decoder.token_embedding.weight": r(dims.n_vocab, dims.n_text_state),
        "decoder.positional_embedding": r(dims.n_text_ctx, dims.n_text_state),
        "decoder.ln.weight": 1 + r(dims.n_text_state),
        "decoder.ln.bias": r(dims.n_text_state),
    }

    def attention(prefix: str, n: int) -> None:
        for p in ("query", "key", "value", "out"):
            sd[f"{prefix}.{p}.weight"] = r(n, n)
            if p != "key":
                sd[f"{prefix}.{p}.bias"] = r(n)

    def block(prefix: str, n: int, cross: bool) -> None:
        attention(f"{prefix}.attn", n)
        lns = ["attn_ln", "mlp_ln"] + (["cross_attn_ln"] if cross else [])
        for ln in lns:
            sd[f"{prefix}.{ln}.weight"] = 1 + r(n)
            sd[f"{prefix}.{ln}.bias"] = r(n)
        if cross:
            attention(f"{prefix}.cross_attn", n)
        sd[f"{prefix}.mlp.0.weight"], sd[f"{prefix}.mlp.0.bias"] = r(4 * n, n), r(4 * n)
        sd[f"{prefix}.mlp.2.weight"], sd[f"{prefix}.mlp.2.bias"] = r(n, 4 * n), r(n)

    for i in range(dims.n_audio_layer):
        block(f"encoder.blocks.{i}", dims.n_audio_state, cross=False)
    for i in range(dims.n_text_layer):
        block(f"decoder.blocks.{i}", dims.n_text_state, cross=True)
    return sd


def write_openai(path: Path, dims: ModelDimensions, sd: Dict[str, torch.Tensor]) -> Path:
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": sd}, path)
    return path


# -- Hugging Face -------------------------------------------------------------------------

def openai_to_hf(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """transformers' names, written out by hand (not by inverting our reader's table)."""
    out = {}
    sub = {"attn.query": "self_attn.q_proj", "attn.key": "self_attn.k_proj", "attn.value": "self_attn.v_proj",
           "attn.out": "self_attn.out_proj", "attn_ln": "self_attn_layer_norm",
           "cross_attn.query": "encoder_attn.q_proj", "cross_attn.key": "encoder_attn.k_proj",
           "cross_attn.value": "encoder_attn.v_proj", "cross_attn.out": "encoder_attn.out_proj",
           "cross_attn_ln": "encoder_attn_layer_norm", "mlp.0": "fc1", "mlp.2": "fc2", "mlp_ln": "final_layer_norm"}
    top = {"encoder.positional_embedding": "model.encoder.embed_positions.weight",
           "decoder.positional_embedding": "model.decoder.embed_positions.weight",
           "decoder.token_embedding.weight": "model.decoder.embed_tokens.weight"}
    for k, v in sd.items():
        if k in top:
            out[top[k]] = v
            continue
        parts = k.split(".")
        side = parts[0]
        if parts[1] == "blocks":
            layer, rest = parts[2], ".".join(parts[3:-1])
            out[f"model.{side}.layers.{layer}.{sub[rest]}.{parts[-1]}"] = v
        elif parts[1] in ("ln_post", "ln"):
            out[f"model.{side}.layer_norm.{parts[-1]}"] = v
        else:  # conv1, conv2
            out[f"model.{k}"] = v
    out["proj_out.weight"] = sd["decoder.token_embedding.weight"]
    return out


def write_hf(folder: Path, dims: ModelDimensions, sd: Dict[str, torch.Tensor], alignment_heads=None) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous().clone() for k, v in openai_to_hf(sd).items()}
    save_file(tensors, str(folder / "model.safetensors"))
    config = {
        "num_mel_bins": dims.n_mels, "max_source_positions": dims.n_audio_ctx, "d_model": dims.n_audio_state,
        "encoder_attention_heads": dims.n_audio_head, "encoder_layers": dims.n_audio_layer,
        "vocab_size": dims.n_vocab, "max_target_positions": dims.n_text_ctx,
        "decoder_attention_heads": dims.n_text_head, "decoder_layers": dims.n_text_layer,
    }
    if alignment_heads:
        config["alignment_heads"] = [list(h) for h in alignment_heads]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# -- CTranslate2 --------------------------------------------------------------------------

def _ct2_string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _ct2_variable(name: str, t: torch.Tensor) -> bytes:
    dtype_id = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.float16: 4}[t.dtype]
    data = t.contiguous().numpy().tobytes()
    return (_ct2_string(name) + struct.pack("<B", t.dim()) + b"".join(struct.pack("<I", d) for d in t.shape)
            + struct.pack("<BI", dtype_id, len(data)) + data)


def ct2_variables(dims: ModelDimensions, sd: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[Tuple[str, str]]]:
    """CTranslate2's Whisper spec names: fused self-attention QKV, fused cross K/V, tied projection."""
    v: Dict[str, torch.Tensor] = {
        "decoder/num_heads": torch.tensor(dims.n_text_head, dtype=torch.int16),
        "encoder/num_heads": torch.tensor(dims.n_audio_head, dtype=torch.int16),
        "decoder/embeddings/weight": sd["decoder.token_embedding.weight"],
        "decoder/position_encodings/encodings": sd["decoder.positional_embedding"],
        "decoder/layer_norm/gamma": sd["decoder.ln.weight"], "decoder/layer_norm/beta": sd["decoder.ln.bias"],
        "encoder/position_encodings/encodings": sd["encoder.positional_embedding"],
        "encoder/layer_norm/gamma": sd["encoder.ln_post.weight"], "encoder/layer_norm/beta": sd["encoder.ln_post.bias"],
    }
    for c in ("conv1", "conv2"):
        v[f"encoder/{c}/weight"], v[f"encoder/{c}/bias"] = sd[f"encoder.{c}.weight"], sd[f"encoder.{c}.bias"]
    zeros = torch.zeros(dims.n_text_state)

    def common(dst: str, src: str) -> None:
        v[f"{dst}/self_attention/linear_0/weight"] = torch.cat([sd[f"{src}.attn.{p}.weight"] for p in ("query", "key", "value")])
        v[f"{dst}/self_attention/linear_0/bias"] = torch.cat([sd[f"{src}.attn.query.bias"], zeros, sd[f"{src}.attn.value.bias"]])
        v[f"{dst}/self_attention/linear_1/weight"] = sd[f"{src}.attn.out.weight"]
        v[f"{dst}/self_attention/linear_1/bias"] = sd[f"{src}.attn.out.bias"]
        v[f"{dst}/self_attention/layer_norm/gamma"] = sd[f"{src}.attn_ln.weight"]
        v[f"{dst}/self_attention/layer_norm/beta"] = sd[f"{src}.attn_ln.bias"]
        v[f"{dst}/ffn/linear_0/weight"], v[f"{dst}/ffn/linear_0/bias"] = sd[f"{src}.mlp.0.weight"], sd[f"{src}.mlp.0.bias"]
        v[f"{dst}/ffn/linear_1/weight"], v[f"{dst}/ffn/linear_1/bias"] = sd[f"{src}.mlp.2.weight"], sd[f"{src}.mlp.2.bias"]
        v[f"{dst}/ffn/layer_norm/gamma"], v[f"{dst}/ffn/layer_norm/beta"] = sd[f"{src}.mlp_ln.weight"], sd[f"{src}.mlp_ln.bias"]

    for i in range(dims.n_audio_layer):
        common(f"encoder/layer_{i}", f"encoder.blocks.{i}")
    for i in range(dims.n_text_layer):
        dst, src = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        common(dst, src)
        v[f"{dst}/attention/linear_0/weight"] = sd[f"{src}.cross_attn.query.weight"]
        v[f"{dst}/attention/linear_0/bias"] = sd[f"{src}.cross_attn.query.bias"]
        v[f"{dst}/attention/linear_1/weight"] = torch.cat([sd[f"{src}.cross_attn.key.weight"], sd[f"{src}.cross_attn.value.weight"]])
        v[f"{dst}/attention/linear_1/bias"] = torch.cat([zeros, sd[f"{src}.cross_attn.value.bias"]])
        v[f"{dst}/attention/linear_2/weight"] = sd[f"{src}.cross_attn.out.weight"]
        v[f"{dst}/attention/linear_2/bias"] = sd[f"{src}.cross_attn.out.bias"]
        v[f"{dst}/attention/layer_norm/gamma"] = sd[f"{src}.cross_attn_ln.weight"]
        v[f"{dst}/attention/layer_norm/beta"] = sd[f"{src}.cross_attn_ln.bias"]
    return v, [("decoder/projection/weight", "decoder/embeddings/weight")]


def write_ct2(folder: Path, dims: ModelDimensions, sd: Dict[str, torch.Tensor], *, dtype=torch.float16,
              split: int = 1, alignment_heads=((1, 0), (1, 1))) -> Path:
    """A CTranslate2 folder; ``split`` > 1 writes ``model.bin.part1..N`` instead of ``model.bin``."""
    folder.mkdir(parents=True, exist_ok=True)
    variables, aliases = ct2_variables(dims, sd)
    blob = struct.pack("<I", 6) + _ct2_string("WhisperSpec") + struct.pack("<I", 3)
    blob += struct.pack("<I", len(variables))
    for name in sorted(variables):
        t = variables[name]
        blob += _ct2_variable(name, t.to(dtype) if t.is_floating_point() else t)
    blob += struct.pack("<I", len(aliases)) + b"".join(_ct2_string(a) + _ct2_string(b) for a, b in aliases)
    if split == 1:
        (folder / "model.bin").write_bytes(blob)
    else:
        step = -(-len(blob) // split)
        for i in range(split):
            (folder / f"model.bin.part{i + 1}").write_bytes(blob[i * step:(i + 1) * step])
    (folder / "config.json").write_text(json.dumps({"alignment_heads": [list(h) for h in alignment_heads]}))
    return folder
