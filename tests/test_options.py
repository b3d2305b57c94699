"""Every option defined once: the dataclass field is the flag, the help, the docs row, the parser.

These tests hold the definitions and their three readers (the Python API, ``wm run``'s flags,
docs/cli.md) together, so a new option cannot be added to one and forgotten in another.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import click
import pytest

import whispermedia as wm
from whispermedia.cli import run_command
from whispermedia.cli_options import GROUP_TITLES, GroupedOption, flag_of, options_from_cli
from whispermedia.options import (
    GROUPS,
    PRESETS,
    DecodingOptions,
    OptionError,
    TranscribeOptions,
    WindowOptions,
    option_fields,
    parse_option,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def visible_options(command: click.Command):
    ctx = click.Context(command)
    return [p for p in command.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]


def docs_groups() -> dict:
    """docs/cli.md's ``#### <group>`` tables under ``### Options``: {title: [flags]}, each row's
    first cell's ``--flag`` spellings."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("\n### Options\n"):text.index("\n### Language\n")]
    groups, title = {}, None
    for line in section.splitlines():
        if line.startswith("#### "):
            title = line[5:].strip()
            groups[title] = []
        elif title and line.startswith("| `-"):  # an option row (the presets table has none)
            first_cell = line.split(" | ")[0]
            groups[title].append(re.findall(r"--[a-z][a-z0-9-]*", first_cell))
    return groups


# -- the definitions ------------------------------------------------------------------------------

def test_every_field_is_an_option_with_help_and_a_known_group():
    for cls in (WindowOptions, DecodingOptions, TranscribeOptions):
        names = {f.name for f in dataclasses.fields(cls)}
        specs = dict((f.name, spec) for f, spec in option_fields(cls))
        assert set(specs) == names, f"{cls.__name__}: fields without an OptionSpec: {names - set(specs)}"
        for name, spec in specs.items():
            assert spec.help.strip() and spec.group in GROUPS, name


def test_every_transcribe_field_has_one_flag_in_its_group_and_a_docs_row():
    by_flag = {}
    for param in visible_options(run_command):
        for opt in param.opts + param.secondary_opts:
            assert opt not in by_flag, f"{opt} shown twice"
            by_flag[opt] = param
    docs = docs_groups()
    documented = {flag for rows in docs.values() for row in rows for flag in row}
    for f, spec in option_fields(TranscribeOptions):
        param = by_flag[flag_of(f.name)]  # KeyError: no flag
        assert param.name == f.name and param.help and param.group == spec.group
        assert flag_of(f.name) in documented, f"{flag_of(f.name)} is not in docs/cli.md"
        title = GROUP_TITLES[spec.group]
        assert any(flag_of(f.name) in row for row in docs[title]), f"{flag_of(f.name)} not under {title}"


def test_help_and_docs_list_the_same_options_in_the_same_groups():
    """``wm run --help`` sections and docs/cli.md tables: the same flags, once each."""
    shown = {}
    for param in visible_options(run_command):
        if "--help" in param.opts:
            continue
        assert isinstance(param, GroupedOption), f"{param.name} has no --help group"
        shown.setdefault(GROUP_TITLES[param.group], []).append(sorted(param.opts + param.secondary_opts))
    docs = {title: sorted(sorted(set(row)) for row in rows) for title, rows in docs_groups().items()}
    shown = {title: sorted(sorted(o for o in row if o.startswith("--")) for row in rows)
             for title, rows in shown.items()}
    assert docs == shown
    help_text = run_command.get_help(click.Context(run_command, info_name="run"))
    for title in GROUP_TITLES.values():
        assert f"\n{title}:\n" in help_text
    lines = [line.strip() for line in help_text[help_text.index("\nInput and model:\n"):].splitlines()]
    for param in visible_options(run_command):  # one line starts with the option's spellings
        starts = [ln for ln in lines if re.match(rf"({'|'.join(map(re.escape, param.opts))})([ ,/]|$)", ln)]
        assert len(starts) == 1, (param.opts, starts)


def test_every_openai_spelling_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    hidden = [o for p in run_command.params if isinstance(p, click.Option) and p.hidden for o in p.opts]
    assert "--beam_size" in hidden and "--output_format" in hidden
    for opt in hidden:
        assert f"`{opt}" in text, f"{opt} is accepted but not in docs/cli.md"


# -- parsing and validation, once ---------------------------------------------------------------

def test_strings_parse_through_the_fields_own_parsers():
    assert parse_option(TranscribeOptions, "temperature", "0,0.5") == (0.0, 0.5)
    assert parse_option(TranscribeOptions, "suppress_tokens", "-1,11") == (-1, 11)
    assert parse_option(TranscribeOptions, "suppress_tokens", "") == ()
    assert parse_option(TranscribeOptions, "logprob_threshold", "none") is None
    assert parse_option(TranscribeOptions, "beam_size", "3") == 3
    with pytest.raises(OptionError) as err:
        parse_option(TranscribeOptions, "clip_timestamps", "0,x")
    assert err.value.option == "clip_timestamps"
    assert str(err.value) == "clip_timestamps: expected seconds separated by commas: '0,x'"
    assert err.value.render(flag_of) == "--clip-timestamps: expected seconds separated by commas: '0,x'"


@pytest.mark.parametrize("kwargs, option, words", [
    (dict(beam_size=0), "beam_size", "beam_size: must be >= 1 (got 0)"),
    (dict(patience=0.0, beam_size=2), "patience", "patience: must be > 0"),
    (dict(length_penalty=1.5), "length_penalty", "length_penalty: must be <= 1"),
    (dict(temperature=(0.0, -0.2)), "temperature", "temperature: must be >= 0"),
    (dict(temperature=()), "temperature", "temperature needs at least one value"),
    (dict(temperature=tuple(i / 100 for i in range(65))), "temperature", "at most 64 values"),
    (dict(temperature=float("nan")), "temperature", "not a finite number"),
    (dict(language="klingon"), "language", "unsupported language: 'klingon'"),
    (dict(preset="greedy", patience=2.0), "patience", "patience requires beam_size"),
    (dict(language_per_region=True, language="fr"), "language_per_region", "detects the language of every window"),
    (dict(preset="fast"), "preset", "unknown preset 'fast'"),
])
def test_bad_values_name_the_option(kwargs, option, words):
    with pytest.raises(ValueError) as err:
        TranscribeOptions.from_kwargs(**kwargs)
    assert isinstance(err.value, OptionError) and err.value.option == option
    assert words in str(err.value)


def test_the_object_cannot_hold_a_bad_value():
    opts = TranscribeOptions()
    with pytest.raises(OptionError, match="best_of"):
        dataclasses.replace(opts, best_of=0)
    with pytest.raises(OptionError, match="best_of"):
        TranscribeOptions(best_of=-3)


def test_unknown_keyword_names_the_closest_option():
    with pytest.raises(TypeError, match=r"unknown transcribe option 'beam_sise' \(did you mean 'beam_size'\?\)"):
        TranscribeOptions.from_kwargs(beam_sise=3)
    with pytest.raises(TypeError, match="did you mean 'word_timestamps'"):
        TranscribeOptions().updated(word_timestamp=True)
    with pytest.raises(TypeError, match="did you mean 'initial_prompt'"):
        wm.transcribe("no-such-file.wav", initial_promt="x")  # before any file or model is touched


def test_openai_forms_are_normalised():
    opts = TranscribeOptions.from_kwargs(temperature=0.2, suppress_tokens="-1,11", clip_timestamps=[1, 2],
                                         language="English", verbose=None, fp16=None)
    assert (opts.temperature, opts.suppress_tokens, opts.clip_timestamps, opts.language) == \
        ((0.2,), (-1, 11), (1.0, 2.0), "en")
    assert TranscribeOptions(language="auto").language is None


def test_presets_then_keywords():
    opts = TranscribeOptions.from_kwargs("openai", beam_size=2)
    assert opts.preset == "openai" and opts.beam_size == 2 and opts.condition_on_previous_text
    for name, values in PRESETS.items():
        opts = TranscribeOptions.from_kwargs(name)
        assert all(getattr(opts, k) == v for k, v in values.items())


def test_the_window_view_is_derived():
    opts = TranscribeOptions.from_kwargs(sample_len=100, patience=2.0, suppress_tokens=(5,), best_of=3,
                                         max_initial_timestamp=0.5, suppress_blank=False)
    greedy = opts.decoding_options(0.0, task="translate", language="de", prompt=(1, 2))
    sampled = opts.decoding_options(0.4, task="transcribe")
    for f in dataclasses.fields(WindowOptions):
        if f.name != "language":
            assert getattr(greedy, f.name) == getattr(opts, f.name) == getattr(sampled, f.name), f.name
    assert (greedy.beam_size, greedy.best_of, greedy.task, greedy.language, greedy.prompt) == \
        (5, None, "translate", "de", (1, 2))
    assert (sampled.beam_size, sampled.best_of, sampled.temperature) == (None, 3, 0.4)


def test_json_options_rebuild_the_options():
    opts = TranscribeOptions.from_kwargs("openai", beam_size=2, clip_timestamps="0,5", word_timestamps=True)
    info = wm.TranscriptInfo("en", None, 5.0, "transcribe", "base", options=opts)
    dumped = json.loads(json.dumps(wm.Transcript(info, ()).to_dict()))["info"]["options"]
    assert dumped == {"preset": "openai", "beam_size": 2, "clip_timestamps": [0.0, 5.0],
                      "word_timestamps": True, "condition_on_previous_text": True,
                      "vad": "off", "suppress_hallucinations": False}  # the openai presets turn both off
    assert TranscribeOptions(**dumped) == opts


# -- the command line's view ------------------------------------------------------------------------

def cli_values(**given) -> dict:
    values = {p.name: None for p in run_command.params if isinstance(p, click.Option)}
    values.update(given)
    return {k: v for k, v in values.items() if k in _option_names()}


def _option_names():
    from whispermedia.cli_options import transcribe_option_names

    return set(transcribe_option_names())


def test_cli_values_become_the_same_object_as_the_keywords():
    opts = options_from_cli(cli_values(beam_size="3", temperature="0,0.4", suppress_blank=False,
                                       word_timestamps=True, language="English"), task="transcribe")
    assert opts == TranscribeOptions.from_kwargs(beam_size=3, temperature=(0.0, 0.4), suppress_blank=False,
                                                 word_timestamps=True, language="en")


def test_openai_spellings_and_ours_agree():
    ours = options_from_cli(cli_values(beam_size="2", condition_on_previous_text=True, word_timestamps=True))
    theirs = options_from_cli(cli_values(beam_size__openai="2", condition_on_previous_text__openai="True",
                                         word_timestamps__openai="True"))
    assert ours == theirs
    assert options_from_cli(cli_values(word_timestamps__openai="False")).word_timestamps is False
    with pytest.raises(OptionError) as err:
        options_from_cli(cli_values(word_timestamps__openai="maybe"))
    assert err.value.render(flag_of) == "--word-timestamps: expected true or false: 'maybe'"


def test_settled_values_give_way_to_the_users():
    assert options_from_cli(cli_values(), word_timestamps=True).word_timestamps
    assert options_from_cli(cli_values(task="translate"), task="translate").task == "translate"


# -- strict types: a wrong type or value fails at the call, naming the option (issue 15, point 6)

@pytest.mark.parametrize("kwargs, option", [
    (dict(beam_size="5"), "beam_size"),
    (dict(beam_size=2.5), "beam_size"),
    (dict(beam_size=True), "beam_size"),
    (dict(best_of="3"), "best_of"),
    (dict(initial_prompt=123), "initial_prompt"),
    (dict(temperature="02"), "temperature"),
    (dict(temperature=["0", "0.2"]), "temperature"),
    (dict(word_timestamps="false"), "word_timestamps"),
    (dict(condition_on_previous_text=1), "condition_on_previous_text"),
    (dict(patience="2"), "patience"),
    (dict(language=5), "language"),
    (dict(suppress_tokens=[1.5]), "suppress_tokens"),
    (dict(clip_timestamps=[True]), "clip_timestamps"),
    (dict(prefix=3), "prefix"),
    (dict(verbose=True), "verbose"),
    (dict(verbose=False), "verbose"),
    (dict(fp16=True), "fp16"),
    (dict(fp16=False), "fp16"),
])
def test_wrong_types_are_type_errors_naming_the_option(kwargs, option):
    from whispermedia.options import OptionTypeError

    with pytest.raises(TypeError) as info:
        TranscribeOptions.from_kwargs(**kwargs)
    assert isinstance(info.value, OptionTypeError) and isinstance(info.value, OptionError)
    assert info.value.option == option and str(info.value).startswith(option)
    with pytest.raises(TypeError, match=f"^{option}"):
        TranscribeOptions().updated(**kwargs)


def test_verbose_and_fp16_say_what_to_use():
    with pytest.raises(TypeError, match=r"wm\.stream"):
        TranscribeOptions.from_kwargs(verbose=True)
    with pytest.raises(TypeError, match="compute_type"):
        TranscribeOptions.from_kwargs(fp16=False)
    assert TranscribeOptions.from_kwargs(verbose=None, fp16=None) == TranscribeOptions()


@pytest.mark.parametrize("kwargs, message", [
    (dict(best_of=0), "best_of: must be >= 1"),
    (dict(beam_size=0), "beam_size: must be >= 1"),
    (dict(temperature=-0.5), "temperature: must be >= 0"),
])
def test_wrong_values_are_value_errors_naming_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TranscribeOptions.from_kwargs(**kwargs)


def test_numbers_of_other_numeric_types_are_accepted():
    import numpy as np

    opts = TranscribeOptions.from_kwargs(beam_size=np.int64(3), temperature=np.array([0.0, 0.5]), patience=2)
    assert opts.beam_size == 3 and type(opts.beam_size) is int
    assert opts.temperature == (0.0, 0.5) and opts.patience == 2.0 and type(opts.patience) is float


def test_transcribe_refuses_a_wrong_type_before_the_model(monkeypatch):
    import whispermedia.pipeline as pipeline

    def no_model(*args, **kwargs):
        raise AssertionError("the model was resolved for a bad option")

    monkeypatch.setattr(pipeline, "resolve_model", no_model)
    with pytest.raises(TypeError, match="^beam_size"):
        wm.transcribe("tests/data/tone.mp3", beam_size="5")
    with pytest.raises(TypeError, match="^verbose"):
        wm.transcribe("tests/data/tone.mp3", verbose=True)
