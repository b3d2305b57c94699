"""Every transcription knob, defined once, with openai-whisper's names and defaults.

``TranscribeOptions`` holds the long-form loop's options and the per-window decoding
options together (openai-whisper splits them between ``transcribe()`` keywords and
``DecodingOptions``); ``decoding_options()`` derives the per-window view.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

# openai-whisper's defaults; a tuple so the dataclass stays hashable and immutable
DEFAULT_TEMPERATURES: Tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

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


@dataclass(frozen=True)
class TranscribeOptions:
    """Options of the long-form loop; names and defaults are openai-whisper ``transcribe()``'s."""

    task: str = "transcribe"
    language: Optional[str] = None
    temperature: Tuple[float, ...] = DEFAULT_TEMPERATURES
    compression_ratio_threshold: Optional[float] = 2.4
    logprob_threshold: Optional[float] = -1.0
    no_speech_threshold: Optional[float] = 0.6
    condition_on_previous_text: bool = True
    initial_prompt: Optional[str] = None
    carry_initial_prompt: bool = False
    word_timestamps: bool = False
    prepend_punctuations: str = "\"'“¿([{-"
    append_punctuations: str = "\"'.。,，!！?？:：”)]}、"
    clip_timestamps: Union[str, Tuple[float, ...]] = "0"
    hallucination_silence_threshold: Optional[float] = None
    # per-window decoding options
    sample_len: Optional[int] = None
    best_of: Optional[int] = 5
    beam_size: Optional[int] = None
    patience: Optional[float] = None
    length_penalty: Optional[float] = None
    prefix: Optional[str] = None
    suppress_tokens: Optional[Union[str, Tuple[int, ...]]] = "-1"
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: Optional[float] = 1.0

    @classmethod
    def from_kwargs(cls, **kwargs) -> "TranscribeOptions":
        """Build from openai-whisper-style keywords; unknown names raise ``TypeError``.

        ``temperature`` may be a float or a sequence, and lists become tuples.
        openai-whisper's ``verbose`` and ``fp16`` are accepted and ignored (the library
        never prints; the dtype follows the model).
        """
        kwargs = dict(kwargs)
        kwargs.pop("verbose", None)
        kwargs.pop("fp16", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown transcribe option(s): {', '.join(unknown)}")
        t = kwargs.get("temperature")
        if t is not None:
            kwargs["temperature"] = (float(t),) if isinstance(t, (int, float)) else tuple(float(x) for x in t)
        for key in ("suppress_tokens", "clip_timestamps"):
            v = kwargs.get(key)
            if isinstance(v, (list, tuple)):
                kwargs[key] = tuple(v)
        opts = cls(**kwargs)
        opts.validate()
        return opts

    def validate(self) -> None:
        """Raise ``ValueError`` for combinations that cannot work (openai's ``_verify_options``)."""
        if not self.temperature:
            raise ValueError("temperature needs at least one value")
        if any(t < 0 for t in self.temperature):
            raise ValueError("temperature must be >= 0")
        if self.beam_size is not None and self.best_of is not None and self.temperature == (0.0,):
            pass  # openai allows best_of alongside beam_size when only greedy temperatures are used
        if self.patience is not None and self.beam_size is None:
            raise ValueError("patience requires beam_size to be given")
        if self.length_penalty is not None and not (0 <= self.length_penalty <= 1):
            raise ValueError("length_penalty (alpha) should be a value between 0 and 1")
        if self.task not in ("transcribe", "translate"):
            # other registered tasks are resolved by the plugin host before options are built
            pass

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
