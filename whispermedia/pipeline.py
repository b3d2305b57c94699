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
from .decoding import DecodingResult, DecodingTask, detect_language
from .model import Whisper
from .models import load_model
from .options import TranscribeOptions
from .tokenizer import LANGUAGES, Tokenizer, normalize_language
from .types import LanguageGuess, Progress, Segment, Transcript, TranscriptInfo

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
        self._first_guess: Optional[LanguageGuess] = None  # per region: the first window's
        self._first_seek = 0
        self._plugin_detects: Optional[bool] = None
        self._mel_max: Optional[float] = None

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
            elif opts.language_per_region:
                # the language the speech starts in: the first window's head (see _region_language)
                self._first_seek = _seek_clips(opts.clip_timestamps, self.content_frames)[0][0]
                size = min(features.N_FRAMES, self.content_frames - self._first_seek)
                guess = self._first_guess = self._region_language(self._first_seek, size)
                language, probability = guess.language, guess.probability
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

        per_region = opts.language_per_region
        language = info.language
        for clip_start, clip_end in clips:
            state.seek = max(state.seek, clip_start)
            while state.seek < clip_end:
                seek = state.seek
                time_offset = seek * features.HOP_LENGTH / features.SAMPLE_RATE
                segment_size = min(features.N_FRAMES, self.content_frames - seek, clip_end - seek)
                window = self.mel[:, seek:seek + segment_size]
                window = features.pad_or_trim(window, features.N_FRAMES).to(self.model.device)
                with torch.no_grad():
                    audio_features = self.model.embed_audio(window[None])  # once per window

                if per_region and self.model.is_multilingual:
                    guess = (self._first_guess if seek == self._first_seek and self._first_guess is not None
                             else self._region_language(seek, segment_size, audio_features))
                    if guess.language != language and min(segment_size, HEAD_FRAMES) > START_FRAMES:
                        # the head may straddle the turn (the old language's last sentence, then
                        # the new one): when its start is still in the current language, the
                        # window starts in it, and _language_change finds the turn after decoding
                        start = self._region_language(seek, START_FRAMES)
                        if start.language == language:
                            guess = start
                    if guess.language != language:
                        # another language: the previous text would pull the decoder back to the old one
                        language = guess.language
                        tok = self.model.tokenizer.with_language_and_task(language, opts.task)
                        state.prompt_reset_since = len(state.all_tokens)

                if opts.carry_initial_prompt:
                    ignored = max(len(initial_prompt_tokens), state.prompt_reset_since)
                    prompt = initial_prompt_tokens + state.all_tokens[ignored:][-remaining_prompt_length:]
                else:
                    prompt = state.all_tokens[state.prompt_reset_since:]
                result = self._decode_with_fallback(audio_features, prompt, tok, language)

                if self._is_silence(result):
                    state.seek += segment_size
                    self._report(state, total_seconds)
                    continue

                segments, state.seek = _split_segments(result, tok, seek, segment_size, time_offset)
                is_ts = [t >= tok.timestamp_begin for t in result.tokens]
                single_timestamp_ending = is_ts[-2:] == [False, True]
                if per_region and self.model.is_multilingual:
                    cut = self._language_change(segments, language, seek, segment_size, state.seek)
                    if cut is not None:  # the window's tail is in another language: the next window starts there
                        segments, state.seek = segments[:cut[0]], cut[1]
                        single_timestamp_ending = False
                if per_region:
                    segments = [dataclasses.replace(s, language=language) for s in segments]
                if opts.word_timestamps:
                    timed = timing.apply_word_timestamps(
                        segments, self.model, tok, audio_features,
                        window_seek=seek, segment_size=segment_size, next_seek=state.seek,
                        single_timestamp_ending=single_timestamp_ending,
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

    def _decode_with_fallback(self, audio_features: torch.Tensor, prompt: Sequence[int], tok: Tokenizer,
                              language: str) -> DecodingResult:
        """Decode at each temperature in turn until the result is neither repetitive nor
        improbable (or looks like silence). audio_features: [1, n_audio_ctx, n_audio_state]."""
        opts = self.options
        result: Optional[DecodingResult] = None
        for t in opts.temperature:
            decoding = opts.decoding_options(
                t, prompt=tuple(prompt), prefix=_prefix_tokens(opts.prefix, tok), language=language)
            result = DecodingTask(self.model, decoding, tok).run(None, audio_features=audio_features)[0]
            too_repetitive = (opts.compression_ratio_threshold is not None
                              and result.compression_ratio > opts.compression_ratio_threshold)
            too_unlikely = opts.logprob_threshold is not None and result.avg_logprob < opts.logprob_threshold
            silent = (opts.no_speech_threshold is not None and result.no_speech_prob > opts.no_speech_threshold
                      and too_unlikely)
            if silent or not (too_repetitive or too_unlikely):
                break
        return result

    # -- per-region language --------------------------------------------------------------
    def _language_plugin(self) -> bool:
        """Whether a plugin other than the built-in one answers ``detect_language``."""
        if self._plugin_detects is None:
            from .plugins import get_host

            self._plugin_detects = any("detect_language" in p.hooks and not p.builtin
                                       for p in get_host().plugins())
        return self._plugin_detects

    def _region_language(self, seek: int, segment_size: int,
                         audio_features: Optional[torch.Tensor] = None) -> LanguageGuess:
        """The language a window starts in: detected on its first ``HEAD_FRAMES`` alone, so that
        a window that starts in one language and goes on in another is decoded in the first
        (``_language_change`` then finds where the second begins). A window no longer than that
        is detected whole, from its encoder output when given."""
        if segment_size <= HEAD_FRAMES and audio_features is not None:
            window = features.pad_or_trim(self.mel[:, seek:seek + segment_size], features.N_FRAMES)
            return self._window_language(window.to(self.model.device), audio_features)
        head = self.mel[:, seek:seek + min(segment_size, HEAD_FRAMES)]
        return self._window_language(features.pad_or_trim(head, features.N_FRAMES).to(self.model.device))

    def _window_language(self, window: torch.Tensor, audio_features: Optional[torch.Tensor] = None) -> LanguageGuess:
        """The language of one 30-second mel window [n_mels, 3000].

        The built-in answer is read off ``audio_features`` when the window's encoder output is
        at hand (the same numbers the built-in plugin would compute from the mel, without a
        second encoder pass); a plugin that implements ``detect_language`` is asked with the mel.
        """
        if audio_features is not None and not self._language_plugin():
            return detect_language(self.model, audio_features, self.model.tokenizer)[0]
        return _detect_language(self.model, window, self.model.tokenizer)

    def _language_change(self, segments: List[Segment], language: str, seek: int, segment_size: int,
                         next_seek: int) -> Optional[Tuple[int, int]]:
        """Where a window's speech turns to another language: (index of the first segment not
        kept, mel frame where the next window starts), or None when it does not.

        Whisper decoding in one language either stops where the speech changes language (the
        rest of the window would be skipped) or goes on in the first language (translating or
        garbling the rest). So the candidate turning points are the starts of the segments after
        the first and, when the loop would skip audio after the last segment, that segment's
        end. The audio from the latest candidate to the window's end is detected on its own
        (one encoder pass); only when it is clearly in another language is the earliest such
        candidate found by bisection (one encoder pass per step).
        """
        window_end = seek + segment_size
        points = [(i, round(s.start * features.FRAMES_PER_SECOND)) for i, s in enumerate(segments) if i > 0]
        last_end = round(segments[-1].end * features.FRAMES_PER_SECOND)
        if next_seek - last_end >= MIN_REGION_FRAMES and self._has_speech(last_end, next_seek):
            points.append((len(segments), last_end))  # audio the loop would skip
        points = [(i, f) for i, f in points if seek < f <= window_end - MIN_REGION_FRAMES]
        if not points:
            return None

        def other_language(frame: int) -> bool:
            region = features.pad_or_trim(self.mel[:, frame:window_end], features.N_FRAMES).to(self.model.device)
            guess = self._window_language(region)
            return guess.language != language and guess.probability >= REGION_LANGUAGE_PROBABILITY

        if not other_language(points[-1][1]):
            return None
        lo, hi = 0, len(points) - 1  # points[hi] starts a stretch in another language
        while lo < hi:
            mid = (lo + hi) // 2
            if other_language(points[mid][1]):
                hi = mid
            else:
                lo = mid + 1
        return points[hi]

    def _has_speech(self, start: int, end: int) -> bool:
        """Whether mel frames [start, end) hold at least a second of sound within 40 dB of the
        file's loudest (log-mel units: 1.0 is 40 dB), so that silence is never sent to detection."""
        if self._mel_max is None:
            self._mel_max = float(self.mel.max())
        loud = self.mel[:, start:end].max(dim=0).values >= self._mel_max - 1.0
        return int(loud.sum()) >= features.FRAMES_PER_SECOND


# per-region language: the head of a window whose language is detected (10 s), the start of a
# head that must confirm a change of language (5 s), the shortest stretch judged on its own (2 s),
# and how sure that judgement must be before a window is cut there
HEAD_FRAMES = 1000
START_FRAMES = 500
MIN_REGION_FRAMES = 200
REGION_LANGUAGE_PROBABILITY = 0.5


def _prefix_tokens(prefix: Optional[str], tokenizer: Tokenizer) -> Optional[Tuple[int, ...]]:
    return tuple(tokenizer.encode(" " + prefix.strip())) if prefix else None


def _seek_clips(clip_timestamps, content_frames: int) -> List[Tuple[int, int]]:
    """``clip_timestamps`` ("start,end,start,..." seconds, or a tuple) as (start, end) frame pairs."""
    if isinstance(clip_timestamps, str):
        clip_timestamps = [float(t) for t in clip_timestamps.split(",")] if clip_timestamps else []
    points = [round(t * features.FRAMES_PER_SECOND) for t in clip_timestamps] or [0]
    if len(points) % 2 == 1:
        points.append(content_frames)
    # a clip that runs past the end stops there (openai-whisper's loop would decode empty windows
    # forever once it reached the end: the only place where we differ from it on purpose)
    points = [min(p, content_frames) for p in points]
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
