"""Which audio stream of a file to transcribe: the rule, in one place.

A file may hold several audio tracks (a film's dubs, a director's commentary, music and
effects). ``choose_audio_stream`` applies the documented rule (docs/cli.md, "Several audio
streams"):

1. a stream asked for by index (``1``) or by language tag (``"lang:eng"``) is that stream
   (among several with the tag, the default-disposition one, else the first);
2. otherwise the stream the file flags as *default* (the track a player picks first);
3. otherwise, when a speech test is given (``has_speech``: voice activity detection, once the
   pipeline has one), the first stream in which it finds speech;
4. otherwise the first.

No PyAV here: it works on the ``AudioStreamInfo`` records ``media.probe`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple, Union

from .errors import MediaError
from .media_info import AudioStreamInfo

#: What may name a stream: its 0-based index among the audio streams, a string of digits, or
#: ``"lang:<tag>"`` with the language tag as the file writes it (``lang:eng``), case-insensitive.
StreamRequest = Union[None, int, str]

LANG_PREFIX = "lang:"


@dataclass(frozen=True)
class StreamChoice:
    """The stream decoded and why: ``reason`` is ``"asked"``, ``"language"``, ``"default"``,
    ``"speech"``, ``"first"`` or ``"only"``; ``streams`` are all the file's audio streams."""

    index: int
    reason: str
    streams: Tuple[AudioStreamInfo, ...]

    @property
    def others(self) -> Tuple[AudioStreamInfo, ...]:
        return tuple(s for s in self.streams if s.index != self.index)


def parse_request(value: StreamRequest) -> StreamRequest:
    """``value`` checked and brought to an int, ``"lang:<tag>"`` or None; ``ValueError`` for
    anything else (a negative index, an empty tag), ``TypeError`` for a wrong type."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"audio_stream must be an int, 'lang:<tag>' or None, not {type(value).__name__}")
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        if text.lower().startswith(LANG_PREFIX) and text[len(LANG_PREFIX):].strip():
            return LANG_PREFIX + text[len(LANG_PREFIX):].strip().lower()
        raise ValueError(f"audio stream {value!r}: expected an index (0, 1, ...) or lang:<tag> (lang:eng)")
    if value < 0:
        raise ValueError(f"audio stream index must be >= 0, got {value}")
    return value


def describe(stream: AudioStreamInfo) -> str:
    """``1 (eng, default)``: a stream as messages name it."""
    facts = [f for f in (stream.language, "default" if stream.default else None) if f]
    return f"{stream.index} ({', '.join(facts)})" if facts else str(stream.index)


def choose_audio_stream(streams: Sequence[AudioStreamInfo], request: StreamRequest, label: str,
                        has_speech: Optional[Callable[[int], bool]] = None) -> StreamChoice:
    """The stream to decode among ``streams`` (a file's, in order) for ``request``; a
    ``MediaError`` naming ``label`` when none can be (no audio, index out of range, no stream
    with that language). ``has_speech(index)``: the seam for voice activity detection (rule 3)."""
    streams = tuple(streams)
    request = parse_request(request)
    n = len(streams)
    if n == 0:
        raise MediaError("no audio stream", label)
    if isinstance(request, int):
        if request >= n:
            have = "1 audio stream (index 0)" if n == 1 else f"{n} audio streams (0 to {n - 1})"
            raise MediaError(f"audio stream index {request} is out of range: the file has {have}", label)
        return StreamChoice(request, "asked", streams)
    if isinstance(request, str):
        tag = request[len(LANG_PREFIX):]
        matching = [s for s in streams if (s.language or "").lower() == tag]
        if not matching:
            tags = ", ".join(describe(s) for s in streams)
            raise MediaError(f"no audio stream with language {tag!r} (the file has: {tags})", label)
        pick = next((s for s in matching if s.default), matching[0])
        return StreamChoice(pick.index, "language", streams)
    if n == 1:
        return StreamChoice(0, "only", streams)
    flagged = next((s for s in streams if s.default), None)
    if flagged is not None:
        return StreamChoice(flagged.index, "default", streams)
    if has_speech is not None:
        for s in streams:
            if has_speech(s.index):
                return StreamChoice(s.index, "speech", streams)
    return StreamChoice(0, "first", streams)
