"""``wm run``'s option flags, generated from the one definition of each option.

Every ``TranscribeOptions`` field with ``OptionSpec.cli`` becomes a click option: its flag is
the field name with dashes (``beam_size`` -> ``--beam-size``), its help, metavar, choices and
group come from the spec, and its value stays a string until ``options_from_cli`` parses it
with the field's own parser, so the command line and the Python API validate in one place.
Where openai-whisper's CLI has the same option, its spelling (``--beam_size 5``,
``--word_timestamps True``) is accepted as a hidden alias, so old command lines keep working.

``GroupedCommand`` shows the options in sections (``GROUP_TITLES``) in ``--help``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import click

from whispermedia.options import (
    GROUPS,
    PRESETS,
    TEMPERATURE_INCREMENT,
    OptionSpec,
    TranscribeOptions,
    option_fields,
    parse_bool,
    parse_option,
    temperature_schedule,
)

#: The sections of ``wm run --help``, in order: the run's own options, then the options' groups.
GROUP_TITLES: Mapping[str, str] = {
    "input": "Input and model",
    "output": "Output",
    "language": "Language",
    "decoding": "Decoding",
    "speech": "Speech",
    "timing": "Timing",
    "batch": "Folders, manifest and Ray",  # whispermedia.run_options: how a run takes its inputs
}
assert set(GROUPS) <= set(GROUP_TITLES)

_ALIAS = "__openai"  # the parameter name of an openai spelling: "<field>__openai"
_INCREMENT = "temperature_increment_on_fallback"


def flag_of(name: str) -> str:
    """The command-line spelling of option ``name``: ``--beam-size``."""
    return "--" + name.replace("_", "-")


class GroupedOption(click.Option):
    """A click option that knows its ``--help`` section."""

    def __init__(self, *args: Any, group: str = "input", **kwargs: Any):
        if group not in GROUP_TITLES:
            raise ValueError(f"unknown option group {group!r}")
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedCommand(click.Command):
    """A command whose ``--help`` lists its options in sections, one line per option."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: Dict[str, List[Tuple[str, str]]] = {title: [] for title in GROUP_TITLES.values()}
        other: List[Tuple[str, str]] = []
        for param in self.get_params(ctx):
            if not isinstance(param, click.Option):
                continue  # the arguments are in the usage line
            record = param.get_help_record(ctx)
            if record is None:
                continue
            group = getattr(param, "group", None)
            (sections[GROUP_TITLES[group]] if group in GROUP_TITLES else other).append(record)
        for title, records in [*sections.items(), ("Other", other)]:
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


def _default_text(name: str, default: Any, spec: OptionSpec) -> Optional[str]:
    """What ``[default: ...]`` says, or None to say nothing (None defaults are explained in the help)."""
    if spec.parse is parse_bool:
        text = "on" if default else "off"
    elif default is None:
        return None
    elif isinstance(default, tuple):
        text = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    else:
        text = str(default)
    return f"{text} (by --preset)" if name in PRESETS["default"] else text


def _params_for(name: str, default: Any, spec: OptionSpec) -> List[click.Option]:
    flag = flag_of(name)
    shown = _default_text(name, default, spec)
    # the click default stays None ("not given": the preset's or the field's value holds), so
    # the default is said in the help text
    text = spec.help if shown is None else f"{spec.help}  [default: {shown}]"
    common = dict(default=None, help=text, group=spec.group, show_default=False)
    if spec.parse is parse_bool:
        decls = [f"{flag}/--no-{flag[2:]}" if spec.negatable else flag, name]
        params = [GroupedOption(decls, is_flag=True, **common)]
    else:
        decls = [flag, name] + ([spec.short] if spec.short else [])
        kind = click.Choice(spec.choices) if spec.choices else click.STRING
        params = [GroupedOption(decls, type=kind, metavar=spec.metavar, **common)]
    if spec.openai and "_" in name:
        params.append(GroupedOption([f"--{name}", name + _ALIAS], default=None, hidden=True,
                                    metavar=spec.metavar or "VALUE", group=spec.group))
    return params


def transcribe_option_params() -> List[click.Option]:
    """A click option for every ``TranscribeOptions`` field (and its openai spelling), plus
    ``--temperature-increment-on-fallback``, which only builds ``--temperature``'s schedule."""
    fields = sorted((pair for pair in option_fields(TranscribeOptions) if pair[1].cli),
                    key=lambda pair: _FIRST.index(pair[0].name) if pair[0].name in _FIRST else len(_FIRST))
    params: List[click.Option] = []
    for f, spec in fields:
        params.extend(_params_for(f.name, f.default, spec))
        if f.name == "temperature":
            params.extend(_params_for(_INCREMENT, None, TEMPERATURE_INCREMENT))
    return params


def option_params(names: Sequence[str]) -> List[click.Option]:
    """Click options for some ``TranscribeOptions`` fields, built as ``wm run``'s are (another
    command that takes the same options, e.g. ``wm qc``'s layout rules, uses these)."""
    specs = {f.name: (f, spec) for f, spec in option_fields(TranscribeOptions)}
    params: List[click.Option] = []
    for name in names:
        f, spec = specs[name]
        params.extend(_params_for(name, f.default, spec))
    return params


def batch_option_params() -> List[click.Option]:
    """A click option for every command-line field of ``BatchOptions`` (``--batch-size``)."""
    from whispermedia.batch_options import BatchOptions

    return [p for f, spec in option_fields(BatchOptions) if spec.cli for p in _params_for(f.name, f.default, spec)]


def batch_options_from_cli(values: Dict[str, Any]) -> "BatchOptions":
    """Pop ``batch_option_params``' values out of a command's keyword arguments and parse them
    into ``BatchOptions`` (``OptionError`` naming the option)."""
    from whispermedia.batch_options import BatchOptions

    given = {}
    for f, spec in option_fields(BatchOptions):
        value = values.pop(f.name, None) if spec.cli else None
        if value is not None:
            given[f.name] = parse_option(BatchOptions, f.name, value)
    return BatchOptions(**given)


# shown first in their groups (the others follow in field order)
_FIRST = ("language", "task", "preset", "temperature", "beam_size", "best_of", "patience", "length_penalty")


def transcribe_option_names() -> List[str]:
    """The parameter names ``transcribe_option_params`` adds to a command."""
    return [p.name for p in transcribe_option_params()]


def options_from_cli(values: Mapping[str, Any], **settled: Any) -> TranscribeOptions:
    """The options of one ``wm run``: the values click collected for ``transcribe_option_params``
    (None: not given), parsed by each field's parser, on top of ``--preset``; ``settled`` are
    fields the command decided itself (the task from ``--plugin``, word timing a format needs),
    which win only where the user said nothing. Raises ``OptionError`` naming the option."""
    given: Dict[str, Any] = {}
    for key, value in values.items():
        if value is None or key == _INCREMENT or key == _INCREMENT + _ALIAS:
            continue
        name = key[: -len(_ALIAS)] if key.endswith(_ALIAS) else key
        if key.endswith(_ALIAS) and values.get(name) is not None:
            continue  # both spellings: ours wins
        given[name] = parse_option(TranscribeOptions, name, value) if isinstance(value, str) else value
    increment = values.get(_INCREMENT) or values.get(_INCREMENT + _ALIAS)
    if increment is not None:
        start = given.get("temperature", (0.0,))
        step = _parse_increment(increment)
        given["temperature"] = temperature_schedule(start, step)
    for name, value in settled.items():
        if given.get(name) is None:
            given[name] = value
    preset = given.pop("preset", None)
    return TranscribeOptions.from_kwargs(preset, **given)


def _parse_increment(text: str) -> float:
    from whispermedia.options import OptionError

    try:
        return TEMPERATURE_INCREMENT.parse(text)
    except ValueError:
        raise OptionError(_INCREMENT, f"{{{_INCREMENT}}}: expected a number: {text!r}") from None
