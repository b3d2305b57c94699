"""``load_model``: the named models (``model_registry``) and model files, loaded and checked.

Nothing is downloaded at run time: a named model's files come from installed Python
packages (pinned versions, pinned SHA-256 sums, checked before use); any other model is a
file or folder the user already has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import torch

from .constants import DEFAULT_MODEL  # re-exported: models.DEFAULT_MODEL
from .errors import ModelError
from .model_registry import (  # noqa: F401 (re-exported: the registry is part of this module's API)
    REGISTRY,
    ModelEntry,
    ModelSpec,
    PackagedFile,
    _file_sha256,
    _locate,
    list_models,
)
from .model import Whisper
from .tokenizer import load_tokenizer
from .weights import Checkpoint, check_alignment_heads, check_dims, load_ct2, read_checkpoint


def _read_registry_checkpoint(spec: ModelSpec) -> Checkpoint:
    located = {f: _locate(f) for f in (*spec.model_parts, spec.config, spec.tokenizer)}
    missing = [f for f, p in located.items() if p is None]
    if missing:
        raise ModelError(f"model {spec.name!r} is not installed (missing {missing[0].module}/{missing[0].path}); "
                         f"install it with: {spec.install_command}")
    for f in (spec.config, spec.tokenizer):
        if _file_sha256(located[f]) != f.sha256:
            raise ModelError("SHA-256 mismatch: the file is damaged or not the release this version pins; "
                             "reinstall its package", str(located[f]))
    parts = [located[f] for f in spec.model_parts]
    return load_ct2(located[spec.config].parent, parts, [f.sha256 for f in spec.model_parts])


def _fallback_tokenizer(n_vocab: int) -> Optional[Path]:
    """A packaged ``tokenizer.json`` with the right BPE for a checkpoint that ships none.

    Multilingual vocabularies share one BPE (special-token ids are laid out from ``n_vocab``),
    so any multilingual model's file serves, and any English-only one for English models.
    """
    wanted = ("base",) if n_vocab >= 51865 else ("tiny.en",)
    for name in wanted:
        path = _locate(REGISTRY[name].tokenizer)
        if path is not None:
            return path
    return None


def load_model(name_or_path: Union[str, Path] = DEFAULT_MODEL, device: Optional[Union[str, torch.device]] = None,
               dtype: Optional[torch.dtype] = None, compute_type: str = "float32") -> Whisper:
    """A ready model: a registry name (``base``, ``tiny.en``), a ``.pt`` file, or a CTranslate2
    or Hugging Face folder.

    ``device`` defaults to the CPU; ``dtype`` to float32 on the CPU and float16 on CUDA.
    ``compute_type``: see ``Whisper.set_compute_type``.
    Raises ``ModelError`` when the model is not installed, fails its checksum or is malformed.
    """
    name = str(name_or_path)
    if name in REGISTRY:
        checkpoint = _read_registry_checkpoint(REGISTRY[name])
    elif Path(name).exists():
        checkpoint = read_checkpoint(Path(name))
    else:
        raise ModelError(f"unknown model {name!r}: not a name ({', '.join(REGISTRY)}) nor an existing path")
    device = torch.device(device or "cpu")
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    return build_model(checkpoint, name=name, device=device, dtype=dtype, compute_type=compute_type)


def build_model(checkpoint: Checkpoint, *, name: str, device: torch.device = torch.device("cpu"),
                dtype: torch.dtype = torch.float32, compute_type: str = "float32") -> Whisper:
    """Our modules with the checkpoint's weights, built complete with its tokenizer, alignment
    heads and suppress list, laid out for ``compute_type`` (``Whisper.set_compute_type``)."""
    source = checkpoint.source or name
    check_dims(checkpoint.dims, source)
    check_alignment_heads(checkpoint.alignment_heads, checkpoint.dims, source)
    tokenizer_json = checkpoint.tokenizer_json or _fallback_tokenizer(checkpoint.dims.n_vocab)
    if tokenizer_json is None:
        raise ModelError("no tokenizer.json beside the model, and no installed model package to borrow one "
                         f"from (install one: {REGISTRY[DEFAULT_MODEL].install_command})", checkpoint.source or name)
    with torch.device("meta"):
        model = Whisper(
            checkpoint.dims,
            tokenizer=load_tokenizer(tokenizer_json, checkpoint.dims.n_vocab),
            alignment_heads=checkpoint.alignment_heads or default_alignment_heads(checkpoint.dims),
            suppress_tokens=checkpoint.suppress_tokens,
            name=name,
        )
    state = {k: v.to(dtype) for k, v in checkpoint.state_dict.items()}
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"weights do not fit a Whisper model: {first}", checkpoint.source or name) from e
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model.set_compute_type(compute_type)


def default_alignment_heads(dims) -> Tuple[Tuple[int, int], ...]:
    """Without a known list, every head of the decoder's second half (openai's fallback)."""
    return tuple((layer, head) for layer in range(dims.n_text_layer // 2, dims.n_text_layer)
                 for head in range(dims.n_text_head))
