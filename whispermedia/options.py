"""Every transcription knob, defined once, with openai-whisper's names.

``TranscribeOptions`` holds the long-form loop's options and the per-window decoding
options together (openai-whisper splits them between ``transcribe()`` keywords and
``DecodingOptions``); ``decoding_options()`` derives the per-window view.

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
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

# openai-whisper's fallback schedule; a tuple so the dataclass stays hashable and immutable
DEFAULT_TEMPERATURES: Tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

_OPENAI_THRESHOLDS = dict(compression_ratio_threshold=2.4, logprob_threshold=-1.0, no_speech_threshold=0.6)

#: The decoding strategy of each preset. Every preset names every field it governs, so that a
#: preset means the same thing whatever the dataclass defaults are; other fields keep theirs.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "default": MappingProxyType(dict(
        temperature=DEFAULT_TEMPERATURES, best_of=5, beam_size=5, patience=None, length_penalty=None,
        condition_on_previous_text=False, **_OPENAI_THRESHOLDS)),
    "openai": MappingProxyType(dict(
        temperature=DEFAULT_TEMPERATURES, best_of=5, beam_size=5, patience=None, length_penalty=None,
        condition_on_previous_text=True, **_OPENAI_THRESHOLDS)),
    "openai-transcribe": MappingProxyType(dict(
        temperature=DEFAULT_TEMPERATURES, best_of=5, beam_size=None, patience=None, length_penalty=None,
        condition_on_previous_text=True, **_OPENAI_THRESHOLDS)),
    "greedy": MappingProxyType(dict(
        temperature=(0.0,), best_of=5, beam_size=None, patience=None, length_penalty=None,
        condition_on_previous_text=False, **_OPENAI_THRESHOLDS)),
})
DEFAULT_PRESET = "default"

#: How the model computes (``Whisper.set_compute_type``): ``float32`` is exact, the others round
#: weights (int8) or the encoder's activations (bfloat16) for speed on the CPU.
COMPUTE_TYPES: Tuple[str, ...] = ("float32", "bfloat16", "int8", "int8_bfloat16")


@dataclass(frozen=True)
class DecodingOptions:
    """Options for decoding one 30-second window (openai-whisper's ``DecodingOptions``)."""

    task: str = "transcribe"  # "transcribe" or "translate"
    language: Optional[str] = None  # None: detect
    temperature: float = 0.0  # 0: greedy
    sample_len: Optional[int] = None  # max tokens to sample; None: n_text_ctx // 2
    best_of: Optional[int] = None  # independent samples at temperature > 0
    beam_size: Optional[int] = None  # beams at temperature == 0; None: greedy
    patience: Optional[float] = None
    length_penalty: Optional[float] = None
    prompt: Optional[Tuple[int, ...]] = None  # previous-context tokens
    prefix: Optional[Tuple[int, ...]] = None  # forced first tokens of this window
    suppress_tokens: Optional[Union[str, Tuple[int, ...]]] = "-1"  # "-1": the model's set
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: Optional[float] = 1.0  # seconds


_D = PRESETS[DEFAULT_PRESET]


@dataclass(frozen=True)
class TranscribeOptions:
    """Options of the long-form loop; names are openai-whisper ``transcribe()``'s.

    The decoding strategy's defaults are the ``default`` preset's (``PRESETS``); openai's own
    are ``from_kwargs(preset="openai")`` (its CLI) or ``preset="openai-transcribe"``.
    """

    preset: str = DEFAULT_PRESET  # the preset the strategy fields started from (provenance)
    task: str = "transcribe"
    language: Optional[str] = None
    # detect the language of every window (not only the first) and decode each in its own
    language_per_region: bool = False
    temperature: Tuple[float, ...] = _D["temperature"]
    compression_ratio_threshold: Optional[float] = _D["compression_ratio_threshold"]
    logprob_threshold: Optional[float] = _D["logprob_threshold"]
    no_speech_threshold: Optional[float] = _D["no_speech_threshold"]
    condition_on_previous_text: bool = _D["condition_on_previous_text"]
    initial_prompt: Optional[str] = None
    carry_initial_prompt: bool = False
    word_timestamps: bool = False
    prepend_punctuations: str = "\"'“¿([{-"
    append_punctuations: str = "\"'.。,，!！?？:：”)]}、"
    clip_timestamps: Union[str, Tuple[float, ...]] = "0"
    hallucination_silence_threshold: Optional[float] = None
    # per-window decoding options
    sample_len: Optional[int] = None
    best_of: Optional[int] = _D["best_of"]
    beam_size: Optional[int] = _D["beam_size"]
    patience: Optional[float] = _D["patience"]
    length_penalty: Optional[float] = _D["length_penalty"]
    prefix: Optional[str] = None
    suppress_tokens: Optional[Union[str, Tuple[int, ...]]] = "-1"
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: Optional[float] = 1.0

    @classmethod
    def from_kwargs(cls, preset: Optional[str] = None, **kwargs) -> "TranscribeOptions":
        """Build from openai-whisper-style keywords on top of a preset (``PRESETS``; None:
        ``default``); a keyword given here wins over the preset's value. Unknown names raise
        ``TypeError``, an unknown preset ``ValueError``.

        ``temperature`` may be a float or a sequence, and lists become tuples.
        openai-whisper's ``verbose`` and ``fp16`` are accepted and ignored (the library
        never prints; the dtype follows the model).
        """
        kwargs = dict(kwargs)
        kwargs.pop("verbose", None)
        kwargs.pop("fp16", None)
        names = {f.name for f in dataclasses.fields(cls)} - {"preset"}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown transcribe option(s): {', '.join(unknown)}")
        preset = preset or DEFAULT_PRESET
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        kwargs = {**PRESETS[preset], **kwargs}
        t = kwargs.get("temperature")
        if t is not None:
            kwargs["temperature"] = as_temperatures(t)
        for key in ("suppress_tokens", "clip_timestamps"):
            v = kwargs.get(key)
            if isinstance(v, (list, tuple)):
                kwargs[key] = tuple(v)
        opts = cls(preset=preset, **kwargs)
        opts.validate()
        return opts

    def validate(self) -> None:
        """Raise ``ValueError`` for combinations that cannot work (openai's ``_verify_options``)."""
        if not self.temperature:
            raise ValueError("temperature needs at least one value")
        if any(t < 0 for t in self.temperature):
            raise ValueError("temperature must be >= 0")
        if self.patience is not None and self.beam_size is None:
            raise ValueError("patience requires beam_size to be given")
        if self.length_penalty is not None and not (0 <= self.length_penalty <= 1):
            raise ValueError("length_penalty (alpha) should be a value between 0 and 1")
        if self.language_per_region and self.language not in (None, "auto"):
            raise ValueError("language_per_region detects the language of every window: "
                             f"do not also name one (language={self.language!r})")
        # other task names than transcribe/translate are resolved by the plugin host

    def decoding_options(self, temperature: float, **overrides) -> DecodingOptions:
        """The per-window options at one temperature (openai's ``decode_with_fallback`` rules)."""
        kwargs = dict(
            task=self.task,
            language=self.language,
            temperature=temperature,
            sample_len=self.sample_len,
            patience=self.patience,
            length_penalty=self.length_penalty,
            suppress_tokens=self.suppress_tokens,
            suppress_blank=self.suppress_blank,
            without_timestamps=self.without_timestamps,
            max_initial_timestamp=self.max_initial_timestamp,
        )
        if temperature > 0:
            kwargs["best_of"] = self.best_of  # sampling: several samples, no beams
        else:
            kwargs["beam_size"] = self.beam_size  # greedy or beam search
        kwargs.update(overrides)
        return DecodingOptions(**kwargs)


def as_temperatures(value: Union[float, Sequence[float]]) -> Tuple[float, ...]:
    """A float or a sequence of floats as the tuple ``TranscribeOptions.temperature`` holds."""
    if isinstance(value, (int, float)):
        return (float(value),)
    return tuple(float(v) for v in value)
