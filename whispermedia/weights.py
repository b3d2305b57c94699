"""Readers for Whisper checkpoints, each producing one ``Checkpoint``: dimensions plus an
openai-whisper-named state dict, whatever the file's own layout.

Formats:
- CTranslate2 directory: ``model.bin`` (or ``model.bin.part1``, ``.part2``, ... read as one
  stream) beside ``config.json`` and ``tokenizer.json``. Read by our own parser of the binary
  layout below; no ctranslate2 import.
- OpenAI ``.pt``: ``{"dims": {...}, "model_state_dict": {...}}``, read with
  ``torch.load(weights_only=True)``.
- Hugging Face directory: ``config.json`` + ``model.safetensors`` (transformers' names).

CTranslate2 ``model.bin`` layout (little-endian), version 6 as written by its converters:

    u32 binary_version
    str spec_name; u32 spec_revision            (version >= 2)
    u32 n_variables, then per variable:
        str name; u8 rank; u32 dims[rank]; u8 dtype; u32 n_bytes; bytes[n_bytes]
    u32 n_aliases, then per alias: str alias; str target      (version >= 3)
    str = u16 length (including the trailing NUL) + bytes
    dtype: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .errors import ModelError


@dataclass(frozen=True)
class ModelDimensions:
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint in memory: what ``model.Whisper`` is built from."""

    dims: ModelDimensions
    state_dict: Dict[str, torch.Tensor] = field(repr=False)
    alignment_heads: Optional[Tuple[Tuple[int, int], ...]] = None  # (layer, head) pairs
    suppress_tokens: Optional[Tuple[int, ...]] = None  # the model's own "-1" set, if it ships one
    tokenizer_json: Optional[Path] = None
    source: str = ""


# -- CTranslate2 ---------------------------------------------------------------------------

_CT2_DTYPES = {
    0: (np.float32, 4), 1: (np.int8, 1), 2: (np.int16, 2), 3: (np.int32, 4),
    4: (np.float16, 2), 5: (None, 2),  # bfloat16: numpy has none; reinterpreted through torch
}


class _ConcatReader(io.RawIOBase):
    """Several files read back to back as one stream (``model.bin.part1``, ``.part2``...)."""

    def __init__(self, paths: Sequence[Path]):
        self._files = [open(p, "rb") for p in paths]
        self._i = 0
        # hashed as the bytes go by, so verifying a pinned sum costs no second read
        self.digests = [hashlib.sha256() for _ in paths]

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while self._i < len(self._files):
            n = self._files[self._i].readinto(buf)
            if n:
                self.digests[self._i].update(memoryview(buf)[:n])
                return n
            self._i += 1
        return 0

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def ct2_model_files(folder: Path) -> List[Path]:
    """``model.bin``, or its parts in order; empty when the folder has neither."""
    whole = folder / "model.bin"
    if whole.is_file():
        return [whole]
    parts = sorted(folder.glob("model.bin.part*"), key=lambda p: int(re.sub(r"\D", "", p.suffix) or 0))
    return parts


def read_ct2_variables(stream: BinaryIO, source: str = "model.bin",
                       size: Optional[int] = None) -> Tuple[str, Dict[str, torch.Tensor]]:
    """Parse a CTranslate2 ``model.bin`` stream into (spec name, {name: tensor}), aliases resolved.

    ``size``: the stream's length in bytes, when known, so that a record claiming more bytes
    than are left is refused before anything is allocated for it. Every malformed layout is a
    ``ModelError`` naming ``source`` (never a ``UnicodeDecodeError`` or ``KeyError``).
    """
    consumed = 0

    def exact(n: int) -> bytes:
        nonlocal consumed
        if size is not None and n > size - consumed:
            raise ModelError(f"truncated CTranslate2 model (wanted {n} bytes, {size - consumed} left)", source)
        data = stream.read(n)
        consumed += len(data)
        if len(data) != n:
            raise ModelError(f"truncated CTranslate2 model (wanted {n} bytes, got {len(data)})", source)
        return data

    def u(fmt: str):
        return struct.unpack("<" + fmt, exact(struct.calcsize(fmt)))[0]

    def string() -> str:
        raw = exact(u("H")).rstrip(b"\0")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"a variable name after byte {consumed - len(raw)} is not UTF-8 ({raw[:40]!r})",
                             source) from None

    version = u("I")
    if not 2 <= version <= 6:
        raise ModelError(f"unsupported CTranslate2 binary version {version}", source)
    spec = string()
    u("I")  # spec revision: the layout of a Whisper spec has not changed across revisions we read
    variables: Dict[str, torch.Tensor] = {}
    for _ in range(u("I")):
        name = string()
        dims = [u("I") for _ in range(u("B"))]
        if version >= 4:
            dtype_id = u("B")
            n_bytes = u("I")
        else:  # older files record the item size instead of a dtype id
            item_size = u("B")
            n_bytes = u("I")
            dtype_id = {4: 0, 1: 1, 2: 4}.get(item_size, -item_size)
        if dtype_id not in _CT2_DTYPES:
            raise ModelError(f"variable {name}: unknown dtype id {dtype_id}", source)
        np_dtype, item = _CT2_DTYPES[dtype_id]
        count = math.prod(dims)  # Python ints: a mutated shape cannot wrap around
        if count * item != n_bytes:
            raise ModelError(f"variable {name}: {n_bytes} bytes for shape {dims}", source)
        raw = bytearray(exact(n_bytes))
        if np_dtype is None:
            tensor = torch.frombuffer(raw, dtype=torch.bfloat16).clone()
        else:
            tensor = torch.from_numpy(np.frombuffer(raw, dtype=np_dtype).copy())
        variables[name] = tensor.reshape(dims)
    if version >= 3:
        for _ in range(u("I")):
            alias, target = string(), string()
            if target not in variables:
                raise ModelError(f"alias {alias!r} names no variable ({target!r})", source)
            variables[alias] = variables[target]
    return spec, variables


def _check_sums(files: Sequence[Path], digests: Sequence["hashlib._Hash"], expected: Sequence[str]) -> None:
    for path, digest, want in zip(files, digests, expected):
        got = digest.hexdigest()
        if got != want:
            raise ModelError(f"SHA-256 mismatch (expected {want[:12]}..., got {got[:12]}...): "
                             "the file is damaged or not the release this version pins; reinstall its package",
                             str(path))


def _ct2_scalar(variables: Dict[str, torch.Tensor], name: str) -> int:
    return int(variables[name].reshape(-1)[0].item())


def load_ct2(folder: Path, model_files: Optional[Sequence[Path]] = None,
             sha256: Optional[Sequence[str]] = None) -> Checkpoint:
    """A CTranslate2 Whisper directory as a Checkpoint with openai-whisper names.

    ``model_files``: the parts of ``model.bin`` in order, when they are not all in ``folder``
    (the default model ships its two halves in two packages). ``sha256``: pinned sums of those
    files, checked before any weight is used.
    """
    folder = Path(folder)
    files = list(model_files) if model_files else ct2_model_files(folder)
    if not files:
        raise ModelError("no model.bin (or model.bin.part*) in the folder", str(folder))
    variables = _read_ct2_whisper(folder, files, sha256)
    try:
        dims = _ct2_dims(variables)
        state_dict = _ct2_state_dict(variables, dims)
    except KeyError as e:
        raise ModelError(f"no variable {e.args[0]!r}: not a complete Whisper model (renamed or missing?)",
                         str(files[0])) from None
    except (IndexError, ValueError, RuntimeError) as e:  # a variable of the wrong rank, no layers at all
        raise ModelError(f"malformed Whisper variables ({type(e).__name__}: {e})", str(files[0])) from None
    check_finite(state_dict, str(files[0]))
    return _checkpoint(folder, dims, state_dict, _read_json(folder / "config.json"), suppress_key="suppress_ids")


def _read_ct2_whisper(folder: Path, files: Sequence[Path], sha256: Optional[Sequence[str]]) -> Dict[str, torch.Tensor]:
    """The variables of the Whisper model stored in ``files`` (read as one stream), after the
    pinned sums (if any) and the stream's end have been checked."""
    raw = _ConcatReader(files)
    reader = io.BufferedReader(raw, buffer_size=1 << 20)
    try:
        try:
            spec, variables = read_ct2_variables(reader, str(files[0]), size=sum(f.stat().st_size for f in files))
        except ModelError:
            if sha256:  # a damaged file: say which one, by its sum, rather than where parsing broke
                reader.read()
                _check_sums(files, raw.digests, sha256)
            raise
        trailing = reader.read(1)
        if sha256:
            reader.read()
            _check_sums(files, raw.digests, sha256)
    finally:
        reader.close()
    if trailing:
        raise ModelError("trailing bytes after the model: are the parts complete and in order?", str(folder))
    if spec != "WhisperSpec":
        raise ModelError(f"not a Whisper model (CTranslate2 spec {spec!r})", str(folder))
    return variables


def _ct2_layers(v: Dict[str, torch.Tensor], stack: str) -> int:
    return 1 + max(int(m.group(1)) for k in v if (m := re.match(rf"{stack}/layer_(\d+)/", k)))


def _ct2_dims(v: Dict[str, torch.Tensor]) -> ModelDimensions:
    conv1 = v["encoder/conv1/weight"]  # [n_audio_state, n_mels, 3]
    emb = v["decoder/embeddings/weight"]  # [n_vocab, n_text_state]
    return ModelDimensions(
        n_mels=conv1.shape[1],
        n_audio_ctx=v["encoder/position_encodings/encodings"].shape[0],
        n_audio_state=conv1.shape[0],
        n_audio_head=_ct2_scalar(v, "encoder/num_heads"),
        n_audio_layer=_ct2_layers(v, "encoder"),
        n_vocab=emb.shape[0],
        n_text_ctx=v["decoder/position_encodings/encodings"].shape[0],
        n_text_state=emb.shape[1],
        n_text_head=_ct2_scalar(v, "decoder/num_heads"),
        n_text_layer=_ct2_layers(v, "decoder"),
    )


def _ct2_state_dict(v: Dict[str, torch.Tensor], dims: ModelDimensions) -> Dict[str, torch.Tensor]:
    """CTranslate2's variables under openai-whisper's state-dict names (the same tensors)."""
    sd: Dict[str, torch.Tensor] = {
        "encoder.conv1.weight": v["encoder/conv1/weight"],
        "encoder.conv1.bias": v["encoder/conv1/bias"],
        "encoder.conv2.weight": v["encoder/conv2/weight"],
        "encoder.conv2.bias": v["encoder/conv2/bias"],
        "encoder.positional_embedding": v["encoder/position_encodings/encodings"],
        "encoder.ln_post.weight": v["encoder/layer_norm/gamma"],
        "encoder.ln_post.bias": v["encoder/layer_norm/beta"],
        "decoder.token_embedding.weight": v["decoder/embeddings/weight"],
        "decoder.positional_embedding": v["decoder/position_encodings/encodings"],
        "decoder.ln.weight": v["decoder/layer_norm/gamma"],
        "decoder.ln.bias": v["decoder/layer_norm/beta"],
    }
    for i in range(dims.n_audio_layer):
        sd.update(_ct2_block(v, f"encoder.blocks.{i}", f"encoder/layer_{i}", cross_attention=False))
    for i in range(dims.n_text_layer):
        sd.update(_ct2_block(v, f"decoder.blocks.{i}", f"decoder/layer_{i}", cross_attention=True))
    return sd


def _ct2_block(v: Dict[str, torch.Tensor], dst: str, src: str, cross_attention: bool) -> Dict[str, torch.Tensor]:
    """One residual block: self-attention, then (decoder blocks) cross-attention, then the MLP,
    each with its layer norm."""
    sd = {**_ct2_attention(v, f"{dst}.attn", f"{src}/self_attention", fused_qkv=True),
          **_ct2_norm(v, f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")}
    if cross_attention:
        sd.update(_ct2_attention(v, f"{dst}.cross_attn", f"{src}/attention", fused_qkv=False))
        sd.update(_ct2_norm(v, f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm"))
    sd.update(_ct2_mlp(v, f"{dst}.mlp", f"{src}/ffn"))
    sd.update(_ct2_norm(v, f"{dst}.mlp_ln", f"{src}/ffn/layer_norm"))
    return sd


def _ct2_attention(v: Dict[str, torch.Tensor], dst: str, src: str, fused_qkv: bool) -> Dict[str, torch.Tensor]:
    w0, b0 = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
    if fused_qkv:  # self-attention: query, key, value stacked in one projection
        (wq, wk, wv), (bq, _bk, bv) = w0.chunk(3), b0.chunk(3)
        wo, bo = v[f"{src}/linear_1/weight"], v[f"{src}/linear_1/bias"]
    else:  # cross-attention: query alone, then key and value stacked
        wq, bq = w0, b0
        (wk, wv), (_bk, bv) = v[f"{src}/linear_1/weight"].chunk(2), v[f"{src}/linear_1/bias"].chunk(2)
        wo, bo = v[f"{src}/linear_2/weight"], v[f"{src}/linear_2/bias"]
    # Whisper's key projection has no bias; CTranslate2 stores zeros in its place.
    return {
        f"{dst}.query.weight": wq, f"{dst}.query.bias": bq,
        f"{dst}.key.weight": wk,
        f"{dst}.value.weight": wv, f"{dst}.value.bias": bv,
        f"{dst}.out.weight": wo, f"{dst}.out.bias": bo,
    }


def _ct2_norm(v: Dict[str, torch.Tensor], dst: str, src: str) -> Dict[str, torch.Tensor]:
    return {f"{dst}.weight": v[f"{src}/gamma"], f"{dst}.bias": v[f"{src}/beta"]}


def _ct2_mlp(v: Dict[str, torch.Tensor], dst: str, src: str) -> Dict[str, torch.Tensor]:
    return {
        f"{dst}.0.weight": v[f"{src}/linear_0/weight"], f"{dst}.0.bias": v[f"{src}/linear_0/bias"],
        f"{dst}.2.weight": v[f"{src}/linear_1/weight"], f"{dst}.2.bias": v[f"{src}/linear_1/bias"],
    }


# -- OpenAI .pt ----------------------------------------------------------------------------

def load_openai(path: Path) -> Checkpoint:
    """An OpenAI ``.pt`` checkpoint (``dims`` + ``model_state_dict``), loaded without pickle code."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with code, a zip that is cut short, not a checkpoint at all
        raise ModelError(f"not a loadable OpenAI checkpoint ({type(e).__name__}: {e})", str(path)) from e
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise ModelError("not an OpenAI Whisper checkpoint (needs 'dims' and 'model_state_dict')", str(path))
    try:
        dims = ModelDimensions(**ckpt["dims"])
        sd = dict(ckpt["model_state_dict"])
    except (TypeError, ValueError) as e:
        raise ModelError(f"malformed 'dims' or 'model_state_dict' ({e})", str(path)) from None
    heads = None
    mask = sd.pop("alignment_heads", None)
    if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool:
        heads = tuple((int(l), int(h)) for l, h in mask.nonzero().tolist())
    if not all(isinstance(t, torch.Tensor) for t in sd.values()):
        raise ModelError("'model_state_dict' holds something that is not a tensor", str(path))
    check_dims(dims, str(path))
    check_alignment_heads(heads, dims, str(path))
    check_finite(sd, str(path))
    return Checkpoint(dims, sd, alignment_heads=heads, source=str(path))


def save_openai(checkpoint: Checkpoint, path: Path) -> None:
    """Write a Checkpoint as an OpenAI ``.pt`` (how tests and the fidelity bench hand weights over)."""
    torch.save({"dims": dataclasses.asdict(checkpoint.dims), "model_state_dict": checkpoint.state_dict}, path)


# -- Hugging Face --------------------------------------------------------------------------

_HF_RENAMES = [
    (r"^model\.encoder\.conv(\d)\.", r"encoder.conv\1."),
    (r"^model\.encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^model\.encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^model\.encoder\.layers\.(\d+)\.", r"encoder.blocks.\1."),
    (r"^model\.decoder\.embed_tokens\.weight$", "decoder.token_embedding.weight"),
    (r"^model\.decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^model\.decoder\.layer_norm\.", "decoder.ln."),
    (r"^model\.decoder\.layers\.(\d+)\.", r"decoder.blocks.\1."),
    (r"\.self_attn\.(q|k|v)_proj\.", lambda m: f".attn.{dict(q='query', k='key', v='value')[m.group(1)]}."),
    (r"\.self_attn\.out_proj\.", ".attn.out."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn\.(q|k|v)_proj\.", lambda m: f".cross_attn.{dict(q='query', k='key', v='value')[m.group(1)]}."),
    (r"\.encoder_attn\.out_proj\.", ".cross_attn.out."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.fc1\.", ".mlp.0."),
    (r"\.fc2\.", ".mlp.2."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
]


def hf_to_openai_name(name: str) -> Optional[str]:
    """transformers' WhisperForConditionalGeneration name -> openai-whisper's (None: not used)."""
    if name == "proj_out.weight":  # tied to the token embedding
        return None
    for pattern, repl in _HF_RENAMES:
        name = re.sub(pattern, repl, name)
    return name


def load_hf(folder: Path) -> Checkpoint:
    """A Hugging Face Whisper directory (``config.json`` + ``model*.safetensors``)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = _read_json(folder / "config.json")
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise ModelError("no model.safetensors in the folder", str(folder))
    sd: Dict[str, torch.Tensor] = {}
    for f in files:
        try:
            tensors = load_file(str(f))
        except Exception as e:
            raise ModelError(f"unreadable safetensors file ({e})", str(f)) from e
        for k, t in tensors.items():
            name = hf_to_openai_name(k)
            if name is not None:
                sd[name] = t
    try:
        dims = ModelDimensions(
            n_mels=config["num_mel_bins"],
            n_audio_ctx=config["max_source_positions"],
            n_audio_state=config["d_model"],
            n_audio_head=config["encoder_attention_heads"],
            n_audio_layer=config["encoder_layers"],
            n_vocab=config["vocab_size"],
            n_text_ctx=config["max_target_positions"],
            n_text_state=config["d_model"],
            n_text_head=config["decoder_attention_heads"],
            n_text_layer=config["decoder_layers"],
        )
    except KeyError as e:
        raise ModelError(f"config.json lacks {e.args[0]!r}: not a Whisper config", str(folder)) from e
    check_finite(sd, str(files[0]) if len(files) == 1 else str(folder))
    return _checkpoint(folder, dims, sd, config, suppress_key="suppress_tokens")


# -- the folder formats' shared ending -----------------------------------------------------

def _checkpoint(folder: Path, dims: ModelDimensions, state_dict: Dict[str, torch.Tensor], config: dict,
                suppress_key: str) -> Checkpoint:
    """A folder checkpoint with what its ``config.json`` adds: the alignment heads, the model's
    own suppressed tokens (CTranslate2 calls them ``suppress_ids``, transformers
    ``suppress_tokens``) and the ``tokenizer.json`` beside it, each None when absent."""
    config_path = str(folder / "config.json")
    check_dims(dims, str(folder))
    heads = _int_lists(config.get("alignment_heads"), 2, "alignment_heads", config_path)
    suppress = _int_lists(config.get(suppress_key), None, suppress_key, config_path)
    check_alignment_heads(heads, dims, config_path)
    if suppress and not all(0 <= t < dims.n_vocab for t in suppress):
        bad = next(t for t in suppress if not 0 <= t < dims.n_vocab)
        raise ModelError(f"{suppress_key}: token id {bad} is outside the vocabulary (0 to {dims.n_vocab - 1})",
                         config_path)
    tokenizer = folder / "tokenizer.json"
    return Checkpoint(
        dims=dims,
        state_dict=state_dict,
        alignment_heads=heads or None,
        suppress_tokens=suppress or None,
        tokenizer_json=tokenizer if tokenizer.is_file() else None,
        source=str(folder),
    )


# -- dispatch ------------------------------------------------------------------------------

def read_checkpoint(path: Path) -> Checkpoint:
    """Whatever Whisper checkpoint ``path`` is: a CTranslate2 or Hugging Face folder, or a ``.pt``."""
    path = Path(path)
    if not path.exists():
        raise ModelError("no such file or directory", str(path))
    if path.is_dir():
        if ct2_model_files(path):
            return load_ct2(path)
        if any(path.glob("model*.safetensors")):
            return load_hf(path)
        raise ModelError("folder holds no model.bin (CTranslate2) nor model.safetensors (Hugging Face)", str(path))
    if path.stat().st_size == 0:
        raise ModelError("empty file", str(path))
    return load_openai(path)


def read_json_object(path: Path) -> dict:
    """A model's JSON file (``config.json``, ``tokenizer.json``) as a dict; every way it can be
    malformed (not UTF-8, not JSON, nested past the parser's recursion limit, not an object) is
    a ``ModelError`` naming the file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ModelError(f"cannot read the file ({e.strerror or e})", str(path)) from None
    except UnicodeDecodeError as e:
        raise ModelError(f"not UTF-8 text (byte {e.start})", str(path)) from None
    except ValueError as e:
        raise ModelError(f"invalid JSON ({e})", str(path)) from None
    except RecursionError:
        raise ModelError("invalid JSON (nested too deep to be a model's file)", str(path)) from None
    if not isinstance(value, dict):
        raise ModelError(f"invalid JSON (an object was expected, not {type(value).__name__})", str(path))
    return value


def _read_json(path: Path) -> dict:
    return read_json_object(path) if path.is_file() else {}


def _int_lists(value, width: Optional[int], key: str, source: str):
    """``config.json``'s ``value`` under ``key`` as a tuple of ints (``width`` None) or of
    ``width``-tuples of ints; None when absent. Anything else is a ``ModelError``."""
    if value is None:
        return None
    ok = isinstance(value, list) and all(
        (isinstance(v, int) and not isinstance(v, bool)) if width is None else
        (isinstance(v, list) and len(v) == width and all(isinstance(x, int) and not isinstance(x, bool) for x in v))
        for v in value)
    if not ok:
        shape = "token ids" if width is None else f"[{', '.join(['int'] * width)}] pairs"
        raise ModelError(f"{key}: expected a list of {shape}", source)
    return tuple(value) if width is None else tuple(tuple(v) for v in value)


# -- checks every reader makes -------------------------------------------------------------

def check_dims(dims: ModelDimensions, source: str) -> None:
    """``ModelError`` unless ``dims`` can be a Whisper model: positive sizes, heads that divide
    the widths, 80 or 128 mel bins, a 1500-frame audio context (30 s) and a vocabulary with
    Whisper's special tokens (51864 English-only, 51865 multilingual, 51866 large-v3)."""
    values = dataclasses.asdict(dims)
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ModelError(f"model dimension {name} = {value!r} is not a positive whole number", source)
    problems = []
    if dims.n_mels not in (80, 128):
        problems.append(f"n_mels = {dims.n_mels} (80 or 128)")
    if dims.n_audio_ctx != 1500:
        problems.append(f"n_audio_ctx = {dims.n_audio_ctx} (1500: 30 s of audio)")
    if not 51864 <= dims.n_vocab <= 51866:  # 99 or 100 languages: what the language table knows
        problems.append(f"n_vocab = {dims.n_vocab} (51864 to 51866)")
    for stack in ("audio", "text"):
        state, head = values[f"n_{stack}_state"], values[f"n_{stack}_head"]
        if state % head:
            problems.append(f"n_{stack}_state = {state} is not divisible by n_{stack}_head = {head}")
    if problems:
        raise ModelError(f"not a Whisper model's dimensions: {'; '.join(problems)}", source)


def check_alignment_heads(heads: Optional[Sequence[Tuple[int, int]]], dims: ModelDimensions, source: str) -> None:
    """``ModelError`` for an alignment head (layer, head) that the decoder does not have (found at
    load, not when word timing indexes the attention weights)."""
    for layer, head in heads or ():
        if not (0 <= layer < dims.n_text_layer and 0 <= head < dims.n_text_head):
            raise ModelError(f"alignment head ({layer}, {head}) is out of range: the decoder has "
                             f"{dims.n_text_layer} layers of {dims.n_text_head} heads", source)


def check_finite(state_dict: Dict[str, torch.Tensor], source: str) -> None:
    """``ModelError`` naming the first weight tensor that holds a NaN or an infinity.

    Cheap: one float32 sum per tensor, read in place (no copy, no mask): a sum is finite
    exactly when every element is, short of an overflow that only weights near 1e31 could
    cause (they would be refused too, rightly). Only a tensor whose sum is not finite is
    counted element by element, for the message. About 0.2 s for the base model's 73 M
    float16 weights on one CPU thread, some 5 % of its load (docs/benchmarks.md); a
    ``torch.isfinite`` mask per tensor would take three times as long.
    """
    for name, tensor in state_dict.items():
        if not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        if math.isfinite(float(tensor.sum(dtype=torch.float32))):
            continue
        bad = int((~torch.isfinite(tensor)).sum())
        what = f"{bad} of its {tensor.numel()} values are NaN or infinite" if bad else \
            "its values are too large to be weights (their sum overflows)"
        raise ModelError(f"weight {name}: {what}; the file is damaged", source)
