"""The options of a run over many inputs: folders, the manifest, resume, Ray, the QC summary.
Defined once.

These are not transcription options (``TranscribeOptions``): they say *which* inputs a run
takes and *how* it schedules and records them, not how one input is transcribed, so they do
not enter the options hash of a manifest record. Each field of ``RunOptions`` carries a
``RunFlag`` in its metadata; ``run_option_params`` makes ``wm run``'s click options from those
(flag = field name with dashes), and ``run_options_from_cli`` builds the frozen record back from
what click collected, so the flag, its help and the Python field cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Tuple

#: ``--ray`` with no address: ``ray.init()``'s own rule (``RAY_ADDRESS``, else the cluster that
#: ``ray start`` made on this machine, else a new one on this machine)
RAY_DEFAULT = "default"
#: ``--ray local``: always a new single-machine cluster, on the loopback address, no dashboard
RAY_LOCAL = "local"

_ADDRESS = re.compile(r"^(auto|local|default|ray://[^\s/]+(:\d+)?|[A-Za-z0-9_.\-\[\]:]+:\d+)$")


@dataclass(frozen=True)
class RunFlag:
    """How a ``RunOptions`` field appears on the command line."""

    help: str
    kind: str = "value"  # "switch", "value", "multiple" (repeatable), "optional" (a value may follow)
    metavar: Optional[str] = None
    group: str = "batch"  # the --help section (cli_options.GROUP_TITLES)


def _flag(help: str, **kwargs: Any) -> Any:
    return {"run_flag": RunFlag(help, **kwargs)}


@dataclass(frozen=True)
class RunOptions:
    """How ``wm run`` takes, schedules and reports its inputs (``wm run --help``: "Folders,
    manifest and Ray"; ``qc`` under "Output"). None of them changes what is written."""

    recursive: bool = field(default=False, metadata=_flag(
        "Take the files in the folders' subfolders too (hidden ones are skipped).", kind="switch"))
    include: Tuple[str, ...] = field(default=(), metadata=_flag(
        "Only files matching GLOB, in folders given as FILE (repeatable; a glob with / matches the "
        "path under the folder, otherwise the name). Default: audio and video extensions.",
        kind="multiple", metavar="GLOB"))
    exclude: Tuple[str, ...] = field(default=(), metadata=_flag(
        "Leave out files matching GLOB in folders (repeatable; wins over --include).",
        kind="multiple", metavar="GLOB"))
    manifest: Optional[str] = field(default=None, metadata=_flag(
        "Append one JSON line per input to FILE as each input ends (hashes, status, outputs, error).",
        metavar="FILE.jsonl"))
    resume: Optional[str] = field(default=None, metadata=_flag(
        "Skip inputs FILE records as done with the same input and options hashes; redo the rest, "
        "replacing their outputs. FILE is also the manifest unless --manifest names another.",
        metavar="FILE.jsonl"))
    ray: Optional[str] = field(default=None, metadata=_flag(
        "Run on a Ray cluster (pip install 'whispermedia[ray]'): ADDRESS as ray.init takes it, "
        "'local' for a new one-machine cluster; alone, Ray's own rule. Put it after FILE... or "
        "write --ray=ADDRESS.", kind="optional", metavar="ADDRESS"))
    ray_actors: Optional[int] = field(default=None, metadata=_flag(
        "Actors (each holds one model). Default: one per GPU share, else one per CPU share but one.",
        metavar="N"))
    ray_gpus: Optional[float] = field(default=None, metadata=_flag(
        "GPUs per actor (0.5: two models share a GPU). Default: 1 when the cluster has GPUs, else 0.",
        metavar="F"))
    ray_cpus: float = field(default=1.0, metadata=_flag(
        "CPUs per actor (torch runs this many threads in it). Default: 1.", metavar="F"))
    qc: bool = field(default=False, metadata=_flag(
        "After writing SRT/WebVTT, print the wm qc summary of each on stderr.", kind="switch",
        group="output"))

    def __post_init__(self) -> None:
        check_ray_address(self.ray)
        if self.ray_actors is not None and self.ray_actors < 1:
            raise ValueError(f"--ray-actors: must be >= 1 (got {self.ray_actors})")
        if self.ray_gpus is not None and self.ray_gpus < 0:
            raise ValueError(f"--ray-gpus: must be >= 0 (got {self.ray_gpus:g})")
        if not self.ray_cpus > 0:
            raise ValueError(f"--ray-cpus: must be > 0 (got {self.ray_cpus:g})")

    @property
    def manifest_path(self) -> Optional[str]:
        """Where records are appended: ``--manifest``, else the ``--resume`` file."""
        return self.manifest or self.resume


def check_ray_address(address: Optional[str]) -> None:
    """``ValueError`` unless ``address`` is None or looks like a Ray address (a folder or file
    taken as ``--ray``'s value, ``wm run --ray videos/``, is the usual slip)."""
    if address is not None and not _ADDRESS.match(address):
        raise ValueError(f"--ray: {address!r} is not a Ray address (auto, local, HOST:PORT, ray://HOST:PORT); "
                         "put --ray after the inputs or write --ray=ADDRESS")


def _ray_callback(ctx: Any, param: Any, value: Optional[str]) -> Optional[str]:
    # runs before click checks FILE... (params are processed in command-line order), so
    # `wm run --ray videos/` says what happened instead of "Missing argument 'FILE...'"
    try:
        check_ray_address(value)
    except ValueError as e:
        import click

        click.echo(f"wm: {e}", err=True)
        raise click.exceptions.Exit(2) from None
    return value


def run_flags() -> List[Tuple[dataclasses.Field, RunFlag]]:
    """The fields of ``RunOptions`` with their flags, in field order."""
    return [(f, f.metadata["run_flag"]) for f in dataclasses.fields(RunOptions)]


def run_option_params() -> List[Any]:
    """A click option for each ``RunOptions`` field (``wm run``'s "Folders, manifest and Ray" section)."""
    import click

    from whispermedia.cli_options import GroupedOption, flag_of

    params = []
    for f, flag in run_flags():
        decls = [flag_of(f.name), f.name]
        common = dict(help=flag.help, group=flag.group, show_default=False)
        if flag.kind == "switch":
            params.append(GroupedOption(decls, is_flag=True, default=False, **common))
        elif flag.kind == "multiple":
            params.append(GroupedOption(decls, multiple=True, metavar=flag.metavar, **common))
        elif flag.kind == "optional":  # --ray alone, or --ray ADDRESS
            params.append(GroupedOption(decls, is_flag=False, flag_value=RAY_DEFAULT, default=None,
                                        metavar=f"[{flag.metavar}]", callback=_ray_callback, **common))
        else:
            kind = {int: click.INT, float: click.FLOAT}.get(_value_type(f), click.STRING)
            params.append(GroupedOption(decls, type=kind, default=f.default, metavar=flag.metavar, **common))
    return params


def _value_type(f: dataclasses.Field) -> type:
    text = str(f.type)
    return int if "int" in text else float if "float" in text else str


def run_option_names() -> List[str]:
    return [f.name for f in dataclasses.fields(RunOptions)]


def run_options_from_cli(values: Mapping[str, Any]) -> RunOptions:
    """The ``RunOptions`` of the values click collected (``ValueError`` naming the flag when one is bad)."""
    kwargs = {}
    for f in dataclasses.fields(RunOptions):
        value = values.get(f.name)
        if isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = f.default if value is None and f.default is not dataclasses.MISSING else value
    return RunOptions(**kwargs)
