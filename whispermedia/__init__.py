"""whispermedia: speech in any audio or video file to text, subtitles and translations, offline.

    import whispermedia as wm
    t = wm.transcribe("talk.mkv")                 # model "base", language detected
    t.language, t.segments[0].start, t.text
    wm.write(t, "srt", "talk.srt")

Names are imported lazily, so ``import whispermedia`` stays cheap (the CLI's ``--help`` and
``wm plugins`` load neither torch kernels nor models).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "transcribe": "whispermedia.pipeline",
    "stream": "whispermedia.pipeline",
    "transcribe_many": "whispermedia.scheduler",
    "TranscriptStream": "whispermedia.pipeline",
    "load_model": "whispermedia.models",
    "list_models": "whispermedia.models",
    "log_mel_spectrogram": "whispermedia.features",
    "pad_or_trim": "whispermedia.features",
    "load_audio": "whispermedia.media",
    "decode": "whispermedia.decoding",
    "detect_language": "whispermedia.decoding",
    "write": "whispermedia.output",
    "hookimpl": "whispermedia.hookspecs",
    "Transcript": "whispermedia.types",
    "TranscriptInfo": "whispermedia.types",
    "Segment": "whispermedia.types",
    "Word": "whispermedia.types",
    "LanguageGuess": "whispermedia.types",
    "Progress": "whispermedia.types",
    "SpeechRegion": "whispermedia.types",
    "MediaInfo": "whispermedia.media_info",
    "AudioStreamInfo": "whispermedia.media_info",
    "probe": "whispermedia.media",
    "TranscribeOptions": "whispermedia.options",
    "DecodingOptions": "whispermedia.options",
    "WhisperMediaError": "whispermedia.errors",
    "MediaError": "whispermedia.errors",
    "ModelError": "whispermedia.errors",
    "OutputError": "whispermedia.errors",
    "PluginError": "whispermedia.errors",
    "PluginNotFound": "whispermedia.errors",
    "PluginFailed": "whispermedia.errors",
    "OptionError": "whispermedia.options",
    "WindowOptions": "whispermedia.options",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'whispermedia' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from .decoding import decode, detect_language
    from .errors import (MediaError, ModelError, OutputError, PluginError, PluginFailed, PluginNotFound,
                         WhisperMediaError)
    from .features import log_mel_spectrogram, pad_or_trim
    from .hookspecs import hookimpl
    from .media import load_audio, probe
    from .media_info import AudioStreamInfo, MediaInfo
    from .models import list_models, load_model
    from .options import DecodingOptions, OptionError, TranscribeOptions, WindowOptions
    from .output import write
    from .pipeline import TranscriptStream, stream, transcribe
    from .scheduler import transcribe_many
    from .types import LanguageGuess, Progress, Segment, SpeechRegion, Transcript, TranscriptInfo, Word
