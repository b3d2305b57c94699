"""Long-form transcription: 30-second windows, seeking on timestamp tokens, temperature fallback.

The loop is openai-whisper's ``transcribe()``, step for step, so that with the same weights and
options the segments are the same; it is split into small functions and yields each window's
segments as soon as they are decoded (``stream``), and ``transcribe`` collects them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import features, timing
from .decoding import DecodingResult, DecodingTask
from .model import Whisper
from .models import load_model
from .options import TranscribeOptions
from .tokenizer import LANGUAGES, Tokenizer, normalize_language
from .types import Progress, Segment, Transcript, TranscriptInfo

AudioInput = Union[str, os.PathLike, np.ndarray, torch.Tensor]


@functools.lru_cache(maxsize=2)
def _cached_model(name: str, device: Optional[str]) -> Whisper:
    return load_model(name, device=device)


def resolve_model(model: Union[str, os.PathLike, Whisper], device: Optional[str] = None) -> Whisper:
    """A loaded model from a model, a registry name or a path (loaded once, then reused)."""
    if isinstance(model, Whisper):
        return model
    return _cached_model(str(model), device)


def _resolve_task(task: str) -> str:
    """The Whisper task token ("transcribe"/"translate") of a registered task name."""
    from .plugins import get_host

    tasks = get_host().tasks()
    if task not in tasks:
        from .errors import PluginError

        raise PluginError(f"unknown task {task!r} (known: {', '.join(sorted(tasks))})")
    return tasks[task].task_token


def _detect_language(model: Whisper, mel_window: torch.Tensor, tokenizer: Tokenizer):
    from .plugins import get_host

    return get_host().detect_language(model=model, mel=mel_window, tokenizer=tokenizer)


def _load_audio(audio: AudioInput, audio_stream: Optional[int]) -> Tuple[torch.Tensor, Optional[str]]:
    """The audio as a float32 mono 16 kHz tensor [n_samples], and its path if it came from one."""
    if isinstance(audio, (str, os.PathLike)):
        from .media import load_audio

        return torch.from_numpy(load_audio(audio, stream_index=audio_stream)), str(audio)
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    if not isinstance(audio, torch.Tensor) or audio.ndim != 1:
        raise TypeError("audio must be a path, or a 1-D float32 array of 16 kHz samples")
    return audio.float(), None


@dataclass
class _LoopState:
    """What carries over from one window to the next."""

    seek: int  # mel frame where the next window starts
    all_tokens: List[int]  # every decoded token so far (after the initial prompt)
    prompt_reset_since: int  # conditioning starts at this index of all_tokens
    segment_count: int = 0


class TranscriptStream:
    """Segments of one transcription, produced lazily window by window.

    ``info`` is known after the audio is read and the language settled (reading it forces
    that much and no more); iterating yields each ``Segment`` as its window is decoded.
    """

    def __init__(self, model: Whisper, audio: Union[torch.Tensor, features.MelWindows], source: Optional[str],
                 options: TranscribeOptions, task_name: str, progress: Optional[Callable[[Progress], None]] = None):
        self.model = model
        self.options = options
        self.progress = progress
        self.source = source
        self.task_name = task_name
        # the file's mel window by window, 30 s of zeros appended as openai-whisper does: the
        # numbers of the whole file's mel at once (the clamp at the whole file's maximum), in
        # memory bounded by a window (features.MelWindows, docs/ops.md); self.mel[:, a:b],
        # self.mel.max() and self.mel.shape are the whole-file tensor's
        if not isinstance(audio, features.MelWindows):
            audio = features.MelWindows(audio, model.dims.n_mels, padding=features.N_SAMPLES, device=model.device)
        self.mel = audio
        self.content_frames = self.mel.content_frames
        self._info: Optional[TranscriptInfo] = None
        self._tokenizer: Optional[Tokenizer] = None
        self._segments: Optional[List[Segment]] = None

    # -- info ------------------------------------------------------------------------------
    @property
    def info(self) -> TranscriptInfo:
        if self._info is None:
            self._settle_language()
        return self._info

    def _settle_language(self) -> None:
        opts = self.options
        language = normalize_language(opts.language)
        probability = None
        if language is None:
            if not self.model.is_multilingual:
                language = "en"
            else:
                window = features.pad_or_trim(self.mel[:, :features.N_FRAMES], features.N_FRAMES)
                window = window.to(self.model.device)
                guess = _detect_language(self.model, window, self.model.tokenizer)
                language, probability = guess.language, guess.probability
        task_token = _resolve_task(self.task_name)
        self.options = dataclasses.replace(opts, language=language, task=task_token)
        self._tokenizer = self.model.tokenizer.with_language_and_task(language, task_token)
        self._info = TranscriptInfo(
            language=language,
            language_probability=probability,
            duration=float(self.content_frames * features.HOP_LENGTH / features.SAMPLE_RATE),
            task=self.task_name,
            model=self.model.name,
            source=self.source,
            options=dataclasses.asdict(self.options),
        )

    # -- segments --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Segment]:
        if self._segments is not None:  # a second pass replays, it does not decode again
            yield from self._segments
            return
        produced: List[Segment] = []
        for segment in self._run():
            produced.append(segment)
            yield segment
        self._segments = produced

    def collect(self) -> Transcript:
        segments = tuple(self)
        return Transcript(info=self.info, segments=segments)

    def _run(self) -> Iterator[Segment]:
        info = self.info
        opts = self.options
        tok = self._tokenizer

        if opts.word_timestamps and opts.task == "translate":
            warnings.warn("word timings of a translation may be unreliable: the words are not the speech's")
        clips = _seek_clips(opts.clip_timestamps, self.content_frames)
        initial_prompt_tokens = tok.encode(" " + opts.initial_prompt.strip()) if opts.initial_prompt else []
        remaining_prompt_length = self.model.dims.n_text_ctx // 2 - 1 - len(initial_prompt_tokens)
        state = _LoopState(seek=clips[0][0], all_tokens=list(initial_prompt_tokens), prompt_reset_since=0)
        total_seconds = info.duration
        last_speech_timestamp = 0.0

        for clip_start, clip_end in clips:
            state.seek = max(state.seek, clip_start)
            while state.seek < clip_end:
                seek = state.seek
                time_offset = seek * features.HOP_LENGTH / features.SAMPLE_RATE
                segment_size = min(features.N_FRAMES, self.content_frames - seek, clip_end - seek)
                window = self.mel[:, seek:seek + segment_size]
                window = features.pad_or_trim(window, features.N_FRAMES).to(self.model.device)

                if opts.carry_initial_prompt:
                    ignored = max(len(initial_prompt_tokens), state.prompt_reset_since)
                    prompt = initial_prompt_tokens + state.all_tokens[ignored:][-remaining_prompt_length:]
                else:
                    prompt = state.all_tokens[state.prompt_reset_since:]
                with torch.no_grad():
                    audio_features = self.model.embed_audio(window[None])  # once per window
                result = self._decode_with_fallback(audio_features, prompt)

                if self._is_silence(result):
                    state.seek += segment_size
                    self._report(state, total_seconds)
                    continue

                segments, state.seek = _split_segments(result, tok, seek, segment_size, time_offset)
                if opts.word_timestamps:
                    is_ts = [t >= tok.timestamp_begin for t in result.tokens]
                    timed = timing.apply_word_timestamps(
                        segments, self.model, tok, audio_features,
                        window_seek=seek, segment_size=segment_size, next_seek=state.seek,
                        single_timestamp_ending=is_ts[-2:] == [False, True],
                        content_frames=self.content_frames,
                        prepend_punctuations=opts.prepend_punctuations,
                        append_punctuations=opts.append_punctuations,
                        hallucination_silence_threshold=opts.hallucination_silence_threshold,
                        last_speech_timestamp=last_speech_timestamp,
                    )
                    state.seek = timed.seek
                    if timed.skip:  # a hallucination after silence: nothing of this window is kept
                        self._report(state, total_seconds)
                        continue
                    segments, last_speech_timestamp = timed.segments, timed.last_speech_timestamp
                for segment in segments:
                    # cleared after word timing: emptiness is judged on the adjusted bounds
                    if segment.start == segment.end or not segment.text.strip():
                        segment = dataclasses.replace(segment, text="", tokens=(),
                                                      words=None if segment.words is None else ())
                    segment = dataclasses.replace(segment, id=state.segment_count)
                    state.segment_count += 1
                    state.all_tokens.extend(segment.tokens)
                    yield segment
                if not opts.condition_on_previous_text or result.temperature > 0.5:
                    # a high-temperature window is unreliable context for the next one
                    state.prompt_reset_since = len(state.all_tokens)
                self._report(state, total_seconds)

    def _report(self, state: _LoopState, total_seconds: float) -> None:
        if self.progress is not None:
            done = min(state.seek, self.content_frames) * features.HOP_LENGTH / features.SAMPLE_RATE
            self.progress(Progress(seconds_done=done, seconds_total=total_seconds,
                                   segments=state.segment_count, source=self.source))

    def _is_silence(self, result: DecodingResult) -> bool:
        """openai's no-speech rule: likely silence, unless the decode was confident anyway."""
        opts = self.options
        if opts.no_speech_threshold is None:
            return False
        skip = result.no_speech_prob > opts.no_speech_threshold
        if opts.logprob_threshold is not None and result.avg_logprob > opts.logprob_threshold:
            skip = False
        return skip

    def _decode_with_fallback(self, audio_features: torch.Tensor, prompt: Sequence[int]) -> DecodingResult:
        """Decode at each temperature in turn until the result is neither repetitive nor
        improbable (or looks like silence). audio_features: [1, n_audio_ctx, n_audio_state]."""
        opts = self.options
        result: Optional[DecodingResult] = None
        for t in opts.temperature:
            decoding = opts.decoding_options(
                t, prompt=tuple(prompt), prefix=_prefix_tokens(opts.prefix, self._tokenizer))
            result = DecodingTask(self.model, decoding, self._tokenizer).run(None, audio_features=audio_features)[0]
            too_repetitive = (opts.compression_ratio_threshold is not None
                              and result.compression_ratio > opts.compression_ratio_threshold)
            too_unlikely = opts.logprob_threshold is not None and result.avg_logprob < opts.logprob_threshold
            silent = (opts.no_speech_threshold is not None and result.no_speech_prob > opts.no_speech_threshold
                      and too_unlikely)
            if silent or not (too_repetitive or too_unlikely):
                break
        return result


def _prefix_tokens(prefix: Optional[str], tokenizer: Tokenizer) -> Optional[Tuple[int, ...]]:
    return tuple(tokenizer.encode(" " + prefix.strip())) if prefix else None


def _seek_clips(clip_timestamps, content_frames: int) -> List[Tuple[int, int]]:
    """``clip_timestamps`` ("start,end,start,..." seconds, or a tuple) as (start, end) frame pairs."""
    if isinstance(clip_timestamps, str):
        clip_timestamps = [float(t) for t in clip_timestamps.split(",")] if clip_timestamps else []
    points = [round(t * features.FRAMES_PER_SECOND) for t in clip_timestamps] or [0]
    if len(points) % 2 == 1:
        points.append(content_frames)
    return list(zip(points[::2], points[1::2]))


def _split_segments(result: DecodingResult, tok: Tokenizer, seek: int, segment_size: int,
                    time_offset: float) -> Tuple[List[Segment], int]:
    """The window's segments, cut at each pair of consecutive timestamps, and the next seek.

    When the window ends on a lone timestamp, the speech ran to the window's end and the next
    window starts after it; otherwise the next window starts at the last complete segment's end.
    """
    tokens = list(result.tokens)
    is_ts = [t >= tok.timestamp_begin for t in tokens]
    single_timestamp_ending = is_ts[-2:] == [False, True]
    cuts = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    stride = features.N_FRAMES // 1500  # mel frames per timestamp step: 2
    seconds_per_step = stride * features.HOP_LENGTH / features.SAMPLE_RATE

    def make(start: float, end: float, seg_tokens: List[int]) -> Segment:
        return Segment(
            id=0, seek=seek, start=start, end=end,
            text=tok.decode([t for t in seg_tokens if t < tok.eot]),
            tokens=tuple(seg_tokens),
            temperature=result.temperature,
            avg_logprob=result.avg_logprob,
            compression_ratio=result.compression_ratio,
            no_speech_prob=result.no_speech_prob,
        )

    segments: List[Segment] = []
    if cuts:
        if single_timestamp_ending:
            cuts.append(len(tokens))
        last = 0
        for cut in cuts:
            piece = tokens[last:cut]
            start = time_offset + (piece[0] - tok.timestamp_begin) * seconds_per_step
            end = time_offset + (piece[-1] - tok.timestamp_begin) * seconds_per_step
            segments.append(make(start, end, piece))
            last = cut
        if single_timestamp_ending:
            next_seek = seek + segment_size
        else:
            next_seek = seek + (tokens[last - 1] - tok.timestamp_begin) * stride
    else:
        duration = segment_size * features.HOP_LENGTH / features.SAMPLE_RATE
        stamps = [t for t in tokens if t >= tok.timestamp_begin]
        if stamps and stamps[-1] != tok.timestamp_begin:
            duration = (stamps[-1] - tok.timestamp_begin) * seconds_per_step
        segments.append(make(time_offset, time_offset + duration, tokens))
        next_seek = seek + segment_size
    return segments, next_seek


def _mel_windows(audio: AudioInput, audio_stream: Optional[int],
                 model: Whisper) -> Tuple[features.MelWindows, Optional[str]]:
    """The input's log-mel, window by window, and its path if it came from one. A file is
    decoded twice (pass 1: the maximum that sets the clamp; pass 2: the windows as the loop asks
    for them), never held whole; an array is sliced as it is."""
    if isinstance(audio, (str, os.PathLike)):
        mel = features.MelWindows(audio, model.dims.n_mels, padding=features.N_SAMPLES,
                                  stream_index=audio_stream, device=model.device)
        return mel, str(audio)
    samples, _ = _load_audio(audio, audio_stream)
    return features.MelWindows(samples, model.dims.n_mels, padding=features.N_SAMPLES, device=model.device), None


def stream(audio: AudioInput, *, model: Union[str, os.PathLike, Whisper] = "base", language: Optional[str] = None,
           task: str = "transcribe", audio_stream: Optional[int] = None,
           progress: Optional[Callable[[Progress], None]] = None, device: Optional[str] = None,
           **options) -> TranscriptStream:
    """Segments of ``audio`` as each window finishes; see ``transcribe`` for the arguments."""
    whisper = resolve_model(model, device)
    opts = TranscribeOptions.from_kwargs(language=language, **options)
    mel, source = _mel_windows(audio, audio_stream, whisper)
    return TranscriptStream(whisper, mel, source, opts, task, progress)


def transcribe(audio: AudioInput, *, model: Union[str, os.PathLike, Whisper] = "base",
               language: Optional[str] = None, task: str = "transcribe", audio_stream: Optional[int] = None,
               progress: Optional[Callable[[Progress], None]] = None, device: Optional[str] = None,
               **options) -> Transcript:
    """Transcribe (or translate) the speech in ``audio``.

    audio: a media file path (any container/codec PyAV decodes) or a 1-D float32 array of
        16 kHz samples.
    model: a registry name ("base", "tiny.en"), a checkpoint path, or a loaded model.
    language: a code or name; None or "auto" detects it from the first 30 seconds.
    task: a registered task name ("transcribe", "translate").
    audio_stream: which audio stream of the file (0-based among audio streams).
    progress: called with a ``Progress`` after each window.
    options: openai-whisper ``transcribe()`` options by name (temperature, best_of,
        condition_on_previous_text, initial_prompt, compression_ratio_threshold, ...).
    """
    return stream(audio, model=model, language=language, task=task, audio_stream=audio_stream,
                  progress=progress, device=device, **options).collect()


__all__ = ["transcribe", "stream", "TranscriptStream", "resolve_model", "LANGUAGES"]
