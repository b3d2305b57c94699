"""Every transcription knob, defined once, with openai-whisper's names.

Each option is a dataclass field whose metadata (``OptionSpec``) carries its help text, its
group on the command line, its range or choices and the parser of its command-line string;
``wm run``'s flags are generated from these definitions (``whispermedia.cli_options``), the
docs table is checked against them, and validation happens once, in ``__post_init__``, raising
``OptionError`` (a ``ValueError``) that names the option.

``WindowOptions`` holds the fields that mean the same for one 30-second window and for the
whole file; ``DecodingOptions`` (openai-whisper's per-window options) and ``TranscribeOptions``
(the long-form loop's, openai's ``transcribe()`` keywords) both extend it, and
``TranscribeOptions.decoding_options()`` derives the per-window view from it.

Presets: the decoding strategy (temperatures, beams, samples, thresholds, conditioning) comes
as a named preset, and any keyword given beside it wins. ``PRESETS`` holds them:

- ``default``: what ``TranscribeOptions()`` and ``wm.transcribe(audio)`` use, chosen by
  measurement (docs/benchmarks.md, "Decoding defaults by measurement"): beam 5 with temperature
  fallback, no conditioning on the previous text;
- ``openai``: the ``whisper`` command's defaults (beam 5, best_of 5, temperature fallback,
  conditioning on the previous text): openai-whisper's CLI behaviour, one flag away;
- ``openai-transcribe``: openai-whisper's ``transcribe()`` defaults (greedy, best_of 5 on
  fallback, conditioning);
- ``greedy``: one greedy pass per window, no fallback, no conditioning: the fastest.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import typing
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

from .constants import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS
from .layout.rules import PRESETS as _LAYOUTS

# openai-whisper's fallback schedule; a tuple so the dataclass stays hashable and immutable
DEFAULT_TEMPERATURES: Tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# a fallback schedule decodes a window once per temperature at worst: more than this is a typo
# (--temperature-increment-on-fallback 1e-9 would ask for a billion)
MAX_TEMPERATURES = 64
# a temperature divides the logits in float32: above this, or above 0 and below the minimum,
# the quotient overflows (or underflows to 0/0) and sampling sees NaN; 0 means greedy
MAX_TEMPERATURE = 10.0
MIN_POSITIVE_TEMPERATURE = 1e-3
# beams and samples are decoder rows, each with its own key/value cache (large-v3: about
# 0.6 GB a row): more than this is a typo, not a search
MAX_CANDIDATES = 32

_OPENAI_THRESHOLDS = dict(compression_ratio_threshold=2.4, logprob_threshold=-1.0, no_speech_threshold=0.6)
# voice activity detection and the hallucination defence (docs/cli.md, "Speech"): on in our
# presets, off in openai's, which reproduce openai-whisper exactly
_DEFENCE_ON = dict(vad="silero", suppress_hallucinations=True)
_DEFENCE_OFF = dict(vad="off", suppress_hallucinations=False)

#: The decoding strategy of each preset. Every preset names every field it governs, so that a
#: preset means the same thing whatever the dataclass defaults are; other fields keep theirs.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "default": MappingProxyType(dict(
        temperature=DEFAULT_TEMPERATURES, best_of=5, beam_size=5, patience=None, length_penalty=None,
        condition_on_previous_text=False, **_OPENAI_THRESHOLDS, **_DEFENCE_ON)),
    "openai": MappingProxyType(dict(
        temperature=DEFAULT_TEMPERATURES, best_of=5, beam_size=5, patience=None, length_penalty=None,
        condition_on_previous_text=True, **_OPENAI_THRESHOLDS, **_DEFENCE_OFF)),
    "openai-transcribe": MappingProxyType(dict(
        temperature=DEFAULT_TEMPERATURES, best_of=5, beam_size=None, patience=None, length_penalty=None,
        condition_on_previous_text=True, **_OPENAI_THRESHOLDS, **_DEFENCE_OFF)),
    "greedy": MappingProxyType(dict(
        temperature=(0.0,), best_of=5, beam_size=None, patience=None, length_penalty=None,
        condition_on_previous_text=False, **_OPENAI_THRESHOLDS, **_DEFENCE_ON)),
})
DEFAULT_PRESET = "default"

#: How the model computes (``Whisper.set_compute_type``): ``float32`` is exact, the others round
#: weights (int8) or the encoder's activations (bfloat16) for speed on the CPU.
COMPUTE_TYPES: Tuple[str, ...] = ("float32", "bfloat16", "int8", "int8_bfloat16")

#: ``timecode_offset``: where SRT/VTT times count from (0, or the source's start timecode).
TIMECODE_OFFSETS: Tuple[str, ...] = ("none", "source")
#: The FCPXML versions the fcpxml format writes (checked against Apple's DTDs of each).
FCPXML_VERSIONS: Tuple[str, ...] = ("1.8", "1.9", "1.10", "1.11")

#: The groups options are shown in (``wm run --help``, docs/cli.md), in this order.
GROUPS: Tuple[str, ...] = ("language", "decoding", "speech", "timing", "output")


class OptionError(ValueError):
    """A bad option value or combination.

    ``option`` is the field it is about; ``problem`` is a template in which ``{name}`` stands
    for the option ``name``, so the library says ``beam_size`` and the command line
    ``--beam-size`` (``render``).
    """

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(self.render(lambda name: name))

    def render(self, spell: Callable[[str], str]) -> str:
        """The message with every ``{name}`` spelled by ``spell(name)``."""
        return self.problem.format_map(_Spelled(spell))


class OptionTypeError(OptionError, TypeError):
    """An option given a value of the wrong type (``beam_size="5"``, ``word_timestamps="false"``):
    both an ``OptionError`` (so a ``ValueError``) and a ``TypeError``."""


def _lit(value: Any) -> str:
    """``value``'s repr, safe inside an ``OptionError`` template."""
    return repr(value).replace("{", "{{").replace("}", "}}")


class _Spelled(dict):
    def __init__(self, spell: Callable[[str], str]):
        super().__init__()
        self.spell = spell

    def __missing__(self, key: str) -> str:
        return self.spell(key)


# -- parsers: the command line's string -> the field's value ----------------------------------

def _none_or(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """For optional fields: "none" (any case) or "" turns the option off (openai's optional_*)."""
    def parse_optional(text: str) -> Any:
        return None if text.strip().lower() in ("", "none") else parse(text)
    parse_optional.expects = getattr(parse, "expects", None)
    return parse_optional


def _expects(what: str) -> Callable[[Callable], Callable]:
    def mark(fn: Callable) -> Callable:
        fn.expects = what
        return fn
    return mark


@_expects("a whole number")
def parse_int(text: str) -> int:
    return int(text)


@_expects("a number")
def parse_float(text: str) -> float:
    return float(text)


@_expects("true or false")
def parse_bool(text: str) -> bool:
    key = text.strip().lower()
    if key in ("true", "1", "yes", "on"):
        return True
    if key in ("false", "0", "no", "off"):
        return False
    raise ValueError(text)


@_expects("numbers separated by commas")
def parse_floats(text: str) -> Tuple[float, ...]:
    return tuple(float(t) for t in text.split(",") if t.strip())


@_expects("token ids separated by commas")
def parse_ints(text: str) -> Tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t.strip())


@_expects("seconds separated by commas")
def parse_seconds(text: str) -> Tuple[float, ...]:
    return tuple(float(t) for t in text.split(",") if t.strip())


def parse_text(text: str) -> str:
    return text


@_expects("a frame rate (25, 29.97, 30000/1001)")
def parse_rate(text: str) -> Fraction:
    from .timecode import parse_frame_rate

    return parse_frame_rate(text)


# -- normalisers: what the API accepts (openai's forms) -> the field's canonical type --------

def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integral(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if isinstance(value, (str, bytes, bool, float)) else type(value).__name__


def _sequence_of(value: Any, ok: Callable[[Any], bool], cast: Callable[[Any], Any], what: str) -> tuple:
    """``value`` (a list or tuple, not text) as a tuple of ``cast`` elements; ``TypeError`` unless
    every element passes ``ok``."""
    if not isinstance(value, (list, tuple)) and not (hasattr(value, "__iter__") and hasattr(value, "__len__")
                                                      and not isinstance(value, (str, bytes, Mapping))):
        raise TypeError(f"expected {what}, got {_type_name(value)}")
    items = tuple(value)
    for v in items:
        if not ok(v):
            raise TypeError(f"expected {what}, got an element {_type_name(v)}")
    return tuple(cast(v) for v in items)


def _temperatures(value: Union[float, Sequence[float]]) -> Tuple[float, ...]:
    # no strings: "02" would be read as 2.0 (or, as a sequence, 0.0 then 2.0); the command line
    # parses its text before it gets here
    if _is_real(value):
        return (float(value),)
    return _sequence_of(value, _is_real, float, "a number or a sequence of numbers")


def _token_ids(value: Union[None, str, int, Sequence[int]]) -> Optional[Tuple[int, ...]]:
    if value is None:
        return None
    if isinstance(value, str):  # openai's "-1,11"
        return parse_ints(value)
    if _is_integral(value):
        return (int(value),)
    return _sequence_of(value, _is_integral, int, "token ids (whole numbers) or a string of them")


def _seconds(value: Union[str, float, Sequence[float]]) -> Tuple[float, ...]:
    if isinstance(value, str):  # openai's "0,5.5"
        return parse_seconds(value)
    if _is_real(value):
        return (float(value),)
    return _sequence_of(value, _is_real, float, "seconds (numbers) or a string of them")


def _language(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a language code or name (a string), got {_type_name(value)}")
    from .tokenizer import normalize_language  # the language table, not the BPE: cheap

    return normalize_language(value)


def _timecode_label(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    from .timecode import check_label  # the rate-free shape; the rate is known when a format writes

    return check_label(str(value))


def _frame_rate(value: Any) -> Optional[Fraction]:
    if value is None:
        return None
    from .timecode import parse_frame_rate

    return parse_frame_rate(value)


LAYOUT_NAMES: Tuple[str, ...] = tuple(_LAYOUTS)


def _text_or_tokens(value: Union[None, str, Sequence[int]]) -> Union[None, str, Tuple[int, ...]]:
    if value is None or isinstance(value, str):
        return value
    return _sequence_of(value, _is_integral, int, "text or token ids")


# -- the type every option's value must have, from its annotation ------------------------------

def _describe(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if hint is bool:
        return "True or False"
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if typing.get_origin(hint) is tuple:
        return f"a tuple of ({_describe(typing.get_args(hint)[0])})"
    if typing.get_origin(hint) is Union:
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def _conform(hint: Any, value: Any) -> Any:
    """``value`` as the annotation ``hint`` says (a whole number as int, a real as float), or
    ``TypeError``: a bool is not a number, a float not a whole number, text never a number."""
    origin = typing.get_origin(hint)
    if origin is Union:
        for arg in typing.get_args(hint):
            try:
                return _conform(arg, value)
            except TypeError:
                continue
    elif hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if _is_integral(value):
            return int(value)
    elif hint is float:
        if _is_real(value):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        if isinstance(value, tuple):
            return tuple(_conform(typing.get_args(hint)[0], v) for v in value)
    else:
        return value
    raise TypeError(f"expected {_describe(hint)}, got {_type_name(value)}")


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


# -- the definition of one option --------------------------------------------------------------

@dataclass(frozen=True)
class OptionSpec:
    """What a field needs besides its name, type and default to be an option everywhere."""

    help: str
    group: str  # one of GROUPS
    parse: Callable[[str], Any] = parse_text  # the command line's string -> value
    metavar: Optional[str] = None
    choices: Optional[Tuple[str, ...]] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    min_open: bool = False  # minimum itself excluded
    normalize: Optional[Callable[[Any], Any]] = None  # an API value (openai's forms) -> canonical
    negatable: bool = False  # a boolean shown as --x/--no-x on the command line
    openai: bool = False  # openai-whisper's CLI has it: its --spelling_with_underscores is accepted
    short: Optional[str] = None  # a one-letter flag, e.g. "-l"
    cli: bool = True  # False: an API-only field (still documented)

    def check(self, name: str, value: Any) -> None:
        """Raise ``OptionError`` when ``value`` (canonical, not None) is outside the range or choices."""
        if self.choices is not None and value not in self.choices:
            raise OptionError(name, f"{{{name}}}: {_lit(value)} is not one of {', '.join(self.choices)}")
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if not math.isfinite(v):
                raise OptionError(name, f"{{{name}}}: {v!r} is not a finite number")
            if self.minimum is not None and (v < self.minimum or (self.min_open and v == self.minimum)):
                sign = ">" if self.min_open else ">="
                raise OptionError(name, f"{{{name}}}: must be {sign} {self.minimum:g} (got {v:g})")
            if self.maximum is not None and v > self.maximum:
                got = v if isinstance(v, int) else f"{v:g}"  # a whole number in full, not as 1e+08
                raise OptionError(name, f"{{{name}}}: must be <= {self.maximum:g} (got {got})")


def option(default: Any, help: str, *, group: str, **spec: Any) -> Any:
    """A dataclass field that is an option (``OptionSpec`` in its metadata)."""
    if group not in GROUPS:
        raise ValueError(f"unknown option group {group!r}")
    return field(default=default, metadata={"option": OptionSpec(help=help, group=group, **spec)})


def option_fields(cls: type) -> Iterator[Tuple[dataclasses.Field, OptionSpec]]:
    """The fields of an options class that are options, with their specs, in field order."""
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("option")
        if spec is not None:
            yield f, spec


def parse_option(cls: type, name: str, text: str) -> Any:
    """The value of option ``name`` of ``cls`` from its command-line string; ``OptionError`` if
    the string does not parse."""
    spec = _specs(cls)[name]
    try:
        return spec.parse(text)
    except ValueError:
        what = getattr(spec.parse, "expects", None) or "a valid value"
        raise OptionError(name, f"{{{name}}}: expected {what}: {_lit(text)}") from None


def _specs(cls: type) -> Dict[str, OptionSpec]:
    return {f.name: spec for f, spec in option_fields(cls)}


def _normalize_and_check(obj: Any) -> None:
    """Bring every option of ``obj`` to its canonical type, check that type against the field's
    annotation and its range (once, here): ``OptionTypeError`` for a wrong type, ``OptionError``
    for a wrong value, each naming the option."""
    hints = _hints(type(obj))
    for f, spec in option_fields(type(obj)):
        value = getattr(obj, f.name)
        try:
            if spec.normalize is not None:
                value = spec.normalize(value)
            value = _conform(hints[f.name], value)
        except TypeError as e:
            raise OptionTypeError(f.name, f"{{{f.name}}}: " + _escaped(e)) from None
        except ValueError as e:
            raise OptionError(f.name, f"{{{f.name}}}: " + _escaped(e)) from None
        object.__setattr__(obj, f.name, value)
        if value is not None:
            spec.check(f.name, value)


def _escaped(exc: BaseException) -> str:
    return str(exc).replace("{", "{{").replace("}", "}}")


# -- the options -------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowOptions:
    """The options that mean the same for one 30-second window and for a whole file."""

    language: Optional[str] = option(
        None, "Spoken language: a code (en), a name (English) or auto; none or auto: detect.",
        group="language", metavar="CODE|auto", normalize=_language, short="-l", openai=True)
    sample_len: Optional[int] = option(
        None, "Most tokens to decode per window (default: half the text context, 224).",
        group="decoding", parse=_none_or(parse_int), metavar="N", minimum=1, maximum=448)
    patience: Optional[float] = option(
        None, "Beam search patience: go on until N x X beams have ended (needs a beam size; default 1).",
        group="decoding", parse=_none_or(parse_float), metavar="X", minimum=0, min_open=True,
        maximum=MAX_CANDIDATES, openai=True)
    length_penalty: Optional[float] = option(
        None, "Rank by log-probability / ((5 + length) / 6) ** A (0 to 1); default: / length.",
        group="decoding", parse=_none_or(parse_float), metavar="A", minimum=0, maximum=1, openai=True)
    suppress_tokens: Optional[Tuple[int, ...]] = option(
        (-1,), "Token ids never to emit, comma-separated; -1: the model's non-speech set; empty: none.",
        group="decoding", parse=parse_ints, metavar="IDS", normalize=_token_ids, minimum=-1, openai=True)
    suppress_blank: bool = option(
        True, "Never start a window with a blank or the end.", group="decoding", parse=parse_bool,
        negatable=True)
    without_timestamps: bool = option(
        False, "Decode text only: one segment per window, spanning it.", group="decoding", parse=parse_bool)
    max_initial_timestamp: Optional[float] = option(
        1.0, "A window's first timestamp is at most S seconds.", group="decoding",
        parse=_none_or(parse_float), metavar="S", minimum=0)


@dataclass(frozen=True)
class DecodingOptions(WindowOptions):
    """Options for decoding one 30-second window (openai-whisper's ``DecodingOptions``).

    Built by ``TranscribeOptions.decoding_options``, or by hand for ``whispermedia.decode``.
    """

    task: str = option("transcribe", "The task token: transcribe or translate.", group="language",
                       choices=("transcribe", "translate"), cli=False)
    temperature: float = option(0.0, "Sampling temperature; 0: greedy or beam search.", group="decoding",
                                minimum=0, maximum=MAX_TEMPERATURE, cli=False)
    best_of: Optional[int] = option(None, "Independent samples at temperature > 0.", group="decoding",
                                    minimum=1, maximum=MAX_CANDIDATES, cli=False)
    beam_size: Optional[int] = option(None, "Beams at temperature 0; None: greedy.", group="decoding",
                                      minimum=1, maximum=MAX_CANDIDATES, cli=False)
    prompt: Union[None, str, Tuple[int, ...]] = option(
        None, "Previous-context text or tokens.", group="decoding", normalize=_text_or_tokens, cli=False)
    prefix: Union[None, str, Tuple[int, ...]] = option(
        None, "Forced first text or tokens of this window.", group="decoding", normalize=_text_or_tokens,
        cli=False)

    def __post_init__(self) -> None:
        _normalize_and_check(self)
        _check_temperatures(self.temperature)
        if self.patience is not None and self.beam_size is None and self.temperature == 0:
            raise OptionError("patience", "{patience} requires {beam_size}")


_D = PRESETS[DEFAULT_PRESET]


@dataclass(frozen=True)
class TranscribeOptions(WindowOptions):
    """Options of a whole transcription; names are openai-whisper ``transcribe()``'s.

    The decoding strategy's defaults are the ``default`` preset's (``PRESETS``); openai's own
    are ``from_kwargs(preset="openai")`` (its CLI) or ``preset="openai-transcribe"``.
    ``task`` is a registered task's name (the plugin host gives its task token).
    """

    preset: str = option(
        DEFAULT_PRESET, "Decoding strategy (docs/cli.md): openai is the whisper command's defaults; "
        "options given beside it win.", group="decoding", choices=tuple(PRESETS), metavar="NAME")
    task: str = option("transcribe", "transcribe or translate (any registered task).", group="language",
                       metavar="NAME", openai=True)
    language_per_region: bool = option(
        False, "Detect the language of every window, not only the first, and decode each in its own.",
        group="language", parse=parse_bool)
    temperature: Tuple[float, ...] = option(
        _D["temperature"], "Temperature, or a fallback schedule T,T,... tried in turn.", group="decoding",
        parse=parse_floats, metavar="T[,T...]", normalize=_temperatures, minimum=0, maximum=MAX_TEMPERATURE,
        openai=True)
    best_of: Optional[int] = option(
        _D["best_of"], "Samples drawn at temperatures above 0; the most probable is kept.", group="decoding",
        parse=_none_or(parse_int), metavar="N", minimum=1, maximum=MAX_CANDIDATES, openai=True)
    beam_size: Optional[int] = option(
        _D["beam_size"], "Beams at temperature 0; none: greedy.", group="decoding",
        parse=_none_or(parse_int), metavar="N", minimum=1, maximum=MAX_CANDIDATES, openai=True)
    compression_ratio_threshold: Optional[float] = option(
        _D["compression_ratio_threshold"], "Decode again at the next temperature above this gzip ratio.",
        group="decoding", parse=_none_or(parse_float), metavar="X", openai=True)
    logprob_threshold: Optional[float] = option(
        _D["logprob_threshold"], "... or below this mean token log-probability.", group="decoding",
        parse=_none_or(parse_float), metavar="X", openai=True)
    no_speech_threshold: Optional[float] = option(
        _D["no_speech_threshold"], "Silence when the no-speech probability is above this (and the "
        "log-probability low).", group="decoding", parse=_none_or(parse_float), metavar="X", openai=True)
    condition_on_previous_text: bool = option(
        _D["condition_on_previous_text"], "Prompt each window with the previous one's text.", group="decoding",
        parse=parse_bool, negatable=True, openai=True)
    initial_prompt: Optional[str] = option(
        None, "Prompt text for the first window (names, spellings, style).", group="decoding",
        metavar="TEXT", openai=True)
    carry_initial_prompt: bool = option(
        False, "Put the initial prompt before every window's prompt.", group="decoding", parse=parse_bool,
        openai=True)
    prefix: Optional[str] = option(
        None, "Text every window's transcript must start with.", group="decoding", metavar="TEXT")
    word_timestamps: bool = option(
        False, "Compute each word's timing (formats that need words turn it on).", group="timing",
        parse=parse_bool, openai=True)
    prepend_punctuations: str = option(
        PREPEND_PUNCTUATIONS, "With word timing: punctuation merged into the next word.", group="timing",
        metavar="CHARS", openai=True)
    append_punctuations: str = option(
        APPEND_PUNCTUATIONS, "With word timing: punctuation merged into the previous word.", group="timing",
        metavar="CHARS", openai=True)
    clip_timestamps: Tuple[float, ...] = option(
        (0.0,), "Only these stretches: start,end,start,end,... seconds (a last start runs to the end).",
        group="timing", parse=parse_seconds, metavar="S,E,...", normalize=_seconds, minimum=0, openai=True)
    hallucination_silence_threshold: Optional[float] = option(
        None, "With word timing: skip silences longer than S around a likely hallucination.",
        group="timing", parse=_none_or(parse_float), metavar="S", minimum=0, openai=True)
    # -- speech regions and the hallucination defence (whispermedia.speech, .hallucination) --
    vad: str = option(
        _D["vad"], "Voice activity detection: silero, energy, a plugin's backend, or off (by preset).",
        group="speech", metavar="silero|energy|off|NAME")
    vad_threshold: float = option(
        0.5, "Speech probability (0-1) at which a stretch counts as speech.", group="speech",
        parse=parse_float, metavar="X", minimum=0, maximum=1)
    vad_min_speech: float = option(
        0.25, "Speech shorter than S seconds is ignored.", group="speech", parse=parse_float, metavar="S",
        minimum=0)
    vad_min_silence: float = option(
        0.5, "A speech region ends after S seconds of non-speech.", group="speech", parse=parse_float,
        metavar="S", minimum=0)
    vad_pad: float = option(
        0.25, "Widen each speech region by S seconds on both sides.", group="speech", parse=parse_float,
        metavar="S", minimum=0)
    vad_max_gap: float = option(
        3.0, "Pauses up to S seconds between regions are decoded with them (Whisper hears them); longer "
        "non-speech is skipped.", group="speech", parse=parse_float, metavar="S", minimum=0)
    suppress_hallucinations: bool = option(
        _D["suppress_hallucinations"], "Drop Whisper's typical non-speech phrases and repetition loops where "
        "the VAD or the log-probability doubt them; each is recorded (by preset).", group="speech",
        parse=parse_bool, negatable=True)
    # timelines and timecodes (plugins/formats_timeline.py, formats_fcpxml.py; whispermedia.timeline)
    start_timecode: Optional[str] = option(
        None, "Timecode of the first frame (';' before the frames: drop-frame); default: the file's own, "
        "else 00:00:00:00.", group="output", parse=_none_or(parse_text), metavar="HH:MM:SS:FF",
        normalize=_timecode_label)
    timecode_offset: str = option(
        "none", "source: SRT/VTT times count from the start timecode instead of 0.", group="output",
        choices=TIMECODE_OFFSETS, metavar="none|source")
    fcpxml_version: str = option(
        FCPXML_VERSIONS[0], "FCPXML version the fcpxml format writes.", group="output",
        choices=FCPXML_VERSIONS, metavar="1.8|...|1.11")
    # -- subtitle layout (whispermedia.layout; None: the layout preset's rule) ---------------
    layout: Optional[str] = option(
        None, "Subtitle layout preset: default, netflix, netflix-other, bbc, raw, openai; "
        "none: openai under the openai presets, else default.", group="output", choices=LAYOUT_NAMES,
        metavar="NAME")
    max_line_width: Optional[int] = option(
        None, "Layout: most characters per line (preset's by default).", group="output",
        parse=_none_or(parse_int), metavar="N", minimum=1, openai=True)
    max_line_count: Optional[int] = option(
        None, "Layout: most lines per cue.", group="output", parse=_none_or(parse_int), metavar="N",
        minimum=1, openai=True)
    max_words_per_line: Optional[int] = option(
        None, "Layout: most words per line.", group="output", parse=_none_or(parse_int), metavar="N",
        minimum=1, openai=True)
    highlight_words: bool = option(
        False, "Karaoke: time every word inside its cue (WebVTT timestamps, ASS \\k; openai layout: "
        "openai's underlined copies).", group="output", parse=parse_bool, openai=True)
    max_cps: Optional[float] = option(
        None, "Layout: reading speed, most characters per second.", group="output",
        parse=_none_or(parse_float), metavar="X", minimum=0, min_open=True)
    max_wpm: Optional[float] = option(
        None, "Layout: reading speed, most words per minute.", group="output",
        parse=_none_or(parse_float), metavar="X", minimum=0, min_open=True)
    min_duration: Optional[float] = option(
        None, "Layout: shortest time a cue stays up, seconds.", group="output",
        parse=_none_or(parse_float), metavar="S", minimum=0)
    max_duration: Optional[float] = option(
        None, "Layout: longest time a cue stays up, seconds.", group="output",
        parse=_none_or(parse_float), metavar="S", minimum=0, min_open=True)
    min_gap_frames: Optional[int] = option(
        None, "Layout: frames between two cues at least.", group="output", parse=_none_or(parse_int),
        metavar="N", minimum=0)
    chain_gap: Optional[float] = option(
        None, "Layout: gaps shorter than S seconds close to the minimum gap; 0: off.", group="output",
        parse=_none_or(parse_float), metavar="S", minimum=0)
    reading_extension: Optional[float] = option(
        None, "Layout: a cue may stay up S seconds past the speech for reading.", group="output",
        parse=_none_or(parse_float), metavar="S", minimum=0)
    shot_snap: Optional[float] = option(
        None, "Layout: cue edges closer than S seconds to a shot change snap to it; 0: off.",
        group="output", parse=_none_or(parse_float), metavar="S", minimum=0)
    fps: Optional[Fraction] = option(
        None, "Frame rate subtitles, timelines and timecodes are timed on (25, 23.976, 30000/1001); "
        "default: the video's, 25 for audio.", group="output", parse=_none_or(parse_rate), metavar="F",
        normalize=_frame_rate)
    shot_changes: str = option(
        "auto", "Shot changes cues snap to: auto (detect in the video), off, or a FILE of cut times.",
        group="output", metavar="auto|off|FILE")

    def __post_init__(self) -> None:
        _normalize_and_check(self)
        if not self.temperature:
            raise OptionError("temperature", "{temperature} needs at least one value")
        if len(self.temperature) > MAX_TEMPERATURES:
            raise OptionError("temperature", f"{{temperature}}: at most {MAX_TEMPERATURES} values "
                                             f"(got {len(self.temperature)})")
        _check_temperatures(*self.temperature)
        if self.patience is not None and self.beam_size is None:
            raise OptionError("patience", "{patience} requires {beam_size}")
        if self.language_per_region and self.language is not None:
            raise OptionError("language_per_region", "{language_per_region} detects the language of every "
                                                     "window: leave {language} out (or auto)")
        if not self.task:
            raise OptionError("task", "{task} needs a name")
        if not self.vad:
            raise OptionError("vad", "{vad} needs a backend name (silero, energy, ...) or off")

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_kwargs(cls, preset: Optional[str] = None, **kwargs: Any) -> "TranscribeOptions":
        """Build from openai-whisper-style keywords on top of a preset (``PRESETS``; None:
        ``default``); a keyword given here wins over the preset's value.

        An unknown name is a ``TypeError`` naming the closest valid one; a bad value an
        ``OptionError``. ``temperature`` may be a float or a sequence, ``suppress_tokens`` and
        ``clip_timestamps`` strings or sequences, as in openai-whisper. A value of the wrong type
        is an ``OptionTypeError`` (a ``TypeError`` and an ``OptionError``): ``beam_size="5"``,
        ``best_of=2.5``, ``word_timestamps="false"``, ``temperature="0.2"``. openai's
        ``verbose`` and ``fp16`` are accepted as None only (``_openai_only``).
        """
        kwargs = _openai_only(kwargs)
        check_names(cls, kwargs)
        preset = preset or DEFAULT_PRESET
        if preset not in PRESETS:
            raise OptionError("preset", f"{{preset}}: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        return cls(preset=preset, **{**PRESETS[preset], **kwargs})

    def updated(self, **kwargs: Any) -> "TranscribeOptions":
        """These options with some replaced (names checked as in ``from_kwargs``)."""
        kwargs = _openai_only(kwargs)
        check_names(type(self), kwargs)
        if "preset" in kwargs:
            raise TypeError("preset: give it to from_kwargs (it sets several options), not to updated()")
        return dataclasses.replace(self, **kwargs)

    def given(self) -> Dict[str, Any]:
        """The options that differ from ``TranscribeOptions()``; ``TranscribeOptions(**given())``
        gives these options back. The JSON output's ``info.options``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}

    # -- views ----------------------------------------------------------------------------
    def decoding_options(self, temperature: float, *, task: str, **overrides: Any) -> DecodingOptions:
        """The per-window options at one temperature (openai's ``decode_with_fallback`` rules):
        the shared ``WindowOptions`` fields as they are, and beams at temperature 0 or samples
        above it. ``task`` is the task token; ``overrides`` set other per-window fields
        (``language``, ``prompt``, ``prefix``)."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(WindowOptions)}
        search = dict(best_of=self.best_of) if temperature > 0 else dict(beam_size=self.beam_size)
        return DecodingOptions(**{**shared, **search, "task": task, "temperature": temperature, **overrides})


def _check_temperatures(*temperatures: float) -> None:
    """``OptionError`` for a positive temperature too small to divide the logits by in float32."""
    for t in temperatures:
        if 0 < t < MIN_POSITIVE_TEMPERATURE:
            raise OptionError("temperature", f"{{temperature}}: {t:g} is too small to sample with "
                                             f"(0 for greedy decoding, or at least {MIN_POSITIVE_TEMPERATURE:g})")
#: openai-whisper ``transcribe()`` keywords that are not options here, and what to use instead.
#: None (openai's "say nothing" and "the default") is accepted; any other value is refused,
#: since ignoring it would do something else than openai does.
OPENAI_REFUSED: Mapping[str, str] = MappingProxyType({
    "verbose": "whispermedia never prints: to print each segment as it is decoded (openai's verbose=True), "
               "iterate wm.stream(audio, ...) and print segment.start, segment.end, segment.text; for "
               "progress, pass progress=callback (wm run prints both)",
    "fp16": "the precision is the model's: wm.load_model(name, compute_type='float32'|'bfloat16'|'int8') "
            "(wm run --compute-type); float32, the default, is openai's fp16=False",
})


def _openai_only(kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """``kwargs`` without openai's ``verbose``/``fp16`` when they are None; ``OptionTypeError``
    saying what to use instead when they are anything else."""
    kwargs = dict(kwargs)
    for name, instead in OPENAI_REFUSED.items():
        if name in kwargs and kwargs.pop(name) is not None:
            raise OptionTypeError(name, f"{name} is not supported: {instead}".replace("{", "{{").replace("}", "}}"))
    return kwargs


def check_names(cls: type, kwargs: Mapping[str, Any]) -> None:
    """``TypeError`` for a keyword that is not an option of ``cls``, naming the closest one."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in kwargs:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"unknown transcribe option {key!r}{hint}")


# -- command-line only: openai's way of saying the fallback schedule ---------------------------

#: ``--temperature-increment-on-fallback``: not a field (it only builds ``temperature``).
TEMPERATURE_INCREMENT = OptionSpec(
    help="With one --temperature T (default 0): the schedule T, T+X, ... up to 1 (openai's option).",
    group="decoding", parse=parse_float, metavar="X", minimum=0, min_open=True, openai=True)


def temperature_schedule(start: Sequence[float], increment: float) -> Tuple[float, ...]:
    """openai's schedule ``numpy.arange(start, 1.0 + 1e-6, increment)`` from one start."""
    TEMPERATURE_INCREMENT.check("temperature_increment_on_fallback", increment)
    if len(start) != 1:
        raise OptionError("temperature_increment_on_fallback",
                          "{temperature_increment_on_fallback} needs one {temperature} (the first of the schedule)")
    count = max(math.ceil((1.0 + 1e-6 - start[0]) / increment), 1)
    if count > MAX_TEMPERATURES:
        raise OptionError("temperature_increment_on_fallback",
                          f"{{temperature_increment_on_fallback}}: {increment:g} makes {count} temperatures "
                          f"(at most {MAX_TEMPERATURES})")
    return tuple(start[0] + i * increment for i in range(count))
