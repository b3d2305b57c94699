"""Results of a transcription: frozen dataclasses, the only shapes the library hands out.

Times are seconds in the media's own timeline (float). Text keeps the tokenizer's leading
spaces, so ``Transcript.text == "".join(s.text for s in segments)`` holds exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Mapping, Optional, Tuple

from .media_info import MediaInfo  # plain records, no PyAV

if TYPE_CHECKING:  # options import nothing heavy, but types stay the leaf the formats import
    from .options import TranscribeOptions


@dataclass(frozen=True)
class Word:
    """One word with its timing, from DTW over the alignment heads' cross-attention."""

    word: str  # includes the leading space, as the tokenizer emits it
    start: float  # seconds
    end: float  # seconds
    probability: float  # mean token probability of the word's tokens


@dataclass(frozen=True)
class Segment:
    """One decoded stretch of speech between two timestamp tokens."""

    id: int
    seek: int  # window start, in mel frames (10 ms each), as openai-whisper reports it
    start: float  # seconds
    end: float  # seconds
    text: str
    tokens: Tuple[int, ...]  # text and timestamp tokens, special tokens excluded
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: Optional[Tuple[Word, ...]] = None
    language: Optional[str] = None  # set when languages are detected per region

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tokens"] = list(self.tokens)
        if self.words is None:
            d.pop("words")
        else:
            d["words"] = [dataclasses.asdict(w) for w in self.words]
        if self.language is None:
            d.pop("language")
        return d


@dataclass(frozen=True)
class LanguageGuess:
    """The answer of language detection: the best code and the distribution it came from."""

    language: str  # ISO 639-1 code as Whisper spells it ("en", "haw", "yue")
    probability: float
    probabilities: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SpeechRegion:
    """A stretch of the input where voice activity detection found speech: ``start`` and ``end``
    in seconds on the source's own timeline (0 = the first sample decoded)."""

    start: float
    end: float


@dataclass(frozen=True)
class Suppression:
    """A decoded segment that was not written, and why: nothing is dropped silently, so an
    editor can put it back (``TranscriptInfo.suppressed``, the JSON output's ``info.suppressed``).

    reason: ``"no-speech"`` (the no-speech gate: the window looked silent and the decode was
    unsure), ``"silence-hallucination"`` (``hallucination_silence_threshold``),
    ``"non-speech-phrase"`` (one of the model's typical outputs on non-speech, where the VAD or
    the log-probability doubt it), ``"repetition-loop"`` (a phrase repeating over and over
    inside the segment), ``"repeated-segment"`` (the same text as the segments before it, from
    other windows). ``segment`` is the segment as it was decoded (its ``id`` is -1: ids number
    the segments written)."""

    reason: str
    segment: Segment

    def to_dict(self) -> dict:
        return {"reason": self.reason, "segment": self.segment.to_dict()}


@dataclass(frozen=True)
class TranscriptInfo:
    """What is known about a transcription apart from its segments."""

    language: str
    language_probability: Optional[float]  # None when the caller named the language
    duration: float  # seconds of audio transcribed
    task: str  # "transcribe" or "translate" (any registered task name)
    model: str  # registry name or path of the model
    source: Optional[str] = None  # the input path, when there was one
    # the options it was made with (language None: detected; ``language`` above says which)
    options: Optional["TranscribeOptions"] = field(default=None, compare=False, repr=False)
    # what the input file holds (streams, frame rate, start timecode); None for samples
    media: Optional[MediaInfo] = field(default=None, compare=False, repr=False)
    audio_stream: Optional[int] = None  # the audio stream decoded (0-based among audio streams)
    # where voice activity detection found speech, in time order; None when none ran
    speech: Optional[Tuple[SpeechRegion, ...]] = field(default=None, compare=False, repr=False)
    # decoded segments that were not written, with the reason (in time order); None: none
    suppressed: Optional[Tuple[Suppression, ...]] = field(default=None, compare=False, repr=False)
    # regions batch mode (whispermedia.regions): the (start, end) seconds of each part decoded by
    # its own loop, in time order; None: the input was decoded as one
    parts: Optional[Tuple[Tuple[float, float], ...]] = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Transcript:
    """A whole transcription: its info and its segments, in time order."""

    info: TranscriptInfo
    segments: Tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    @property
    def language(self) -> str:
        return self.info.language

    def language_regions(self) -> List[Tuple[str, float, float]]:
        """Runs of consecutive segments in one language, as (language, start, end) in time order
        (segments carry a language with ``language_per_region``; silent ones are left out)."""
        runs: List[Tuple[str, float, float]] = []
        for seg in self.segments:
            if seg.language is None or not seg.text.strip():
                continue
            if runs and runs[-1][0] == seg.language:
                runs[-1] = (seg.language, runs[-1][1], seg.end)
            else:
                runs.append((seg.language, seg.start, seg.end))
        return runs

    def to_dict(self) -> dict:
        """The JSON shape: openai-whisper's result dict plus ``info``, whose ``options`` are the
        ones that differ from ``TranscribeOptions()`` (``TranscribeOptions(**options)`` rebuilds
        them; tuples become lists)."""
        options = self.info.options
        info = {f.name: getattr(self.info, f.name) for f in dataclasses.fields(self.info)}
        info["options"] = {k: list(v) if isinstance(v, tuple) else v
                           for k, v in (options.given() if options is not None else {}).items()}
        # facts that are not known for every input are written only when they are
        for name in ("media", "audio_stream", "speech", "suppressed", "parts"):
            if info[name] is None:
                del info[name]
        if self.info.media is not None:
            info["media"] = self.info.media.to_dict()
        if self.info.speech is not None:
            info["speech"] = [[r.start, r.end] for r in self.info.speech]
        if self.info.suppressed is not None:
            info["suppressed"] = [s.to_dict() for s in self.info.suppressed]
        if self.info.parts is not None:
            info["parts"] = [list(p) for p in self.info.parts]
        return {
            "text": self.text,
            "segments": [s.to_dict() for s in self.segments],
            "language": self.info.language,
            "info": info,
        }


@dataclass(frozen=True)
class Progress:
    """Where a transcription stands; handed to the ``progress`` callback once when the language
    is settled, before the first window (``segments`` 0), then after each window."""

    seconds_done: float  # audio decoded so far, seconds
    seconds_total: float  # audio length, seconds
    segments: int  # segments produced so far
    source: Optional[str] = None  # the input path, when there is one
    # the language decoded in (and its detection probability, None when it was named): known
    # before the first window, so the first report (seconds_done at the start) carries it
    language: Optional[str] = None
    language_probability: Optional[float] = None
