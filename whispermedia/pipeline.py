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
from typing import Any, BinaryIO, Callable, Generator, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import features, speech, timing, usable_audio
from .constants import DEFAULT_MODEL, FRAMES_PER_SECOND, FRAMES_PER_POSITION, HOP_LENGTH, N_FRAMES, N_SAMPLES, SAMPLE_RATE
from .decoding import DecodingResult, DecodingTask, EncodeRequest, Inference, LogitsRequest
from .hallucination import Defence
from .language import RegionLanguage, detect
from .language_check import LanguageCheck
from .model import Whisper
from .models import load_model
from .options import TranscribeOptions
from .timing import Window
from .tokenizer import LANGUAGES, Tokenizer
from .types import Progress, Segment, Suppression, Transcript, TranscriptInfo

AudioInput = Union[str, os.PathLike, BinaryIO, np.ndarray, torch.Tensor]


@functools.lru_cache(maxsize=2)
def _cached_model(name: str, device: Optional[str]) -> Whisper:
    return load_model(name, device=device)


def resolve_model(model: Union[str, os.PathLike, Whisper], device: Optional[str] = None) -> Whisper:
    """A loaded model from a model, a registry name or a path (loaded once, then reused)."""
    if isinstance(model, Whisper):
        return model
    return _cached_model(str(model), device)


def _task_token(task: str) -> str:
    """The Whisper task token ("transcribe"/"translate") of a registered task name;
    ``PluginNotFound`` for a name no plugin registers."""
    from .plugins import get_host

    return get_host().task(task).task_token


@dataclass
class _LoopState:
    """What carries over from one window to the next."""

    seek: int  # mel frame where the next window starts
    all_tokens: List[int]  # every decoded token so far (after the initial prompt)
    prompt_reset_since: int  # conditioning starts at this index of all_tokens
    segment_count: int = 0
    last_speech_timestamp: float = 0.0  # seconds: the end of the last word timed
    span: Tuple[int, int] = (0, 0)  # the mel frames whose progress this loop reports


@dataclass
class Part:
    """One stretch of a file decoded by its own loop: the whole file, or in ``regions`` mode
    (``whispermedia.regions``) one of the stretches it is cut into at speech pauses.

    clips: the (start, end) mel frames it decodes; span: the frames it accounts for (its
    clips and the pauses around them, for progress); mel: its reader of the file's windows.
    """

    clips: Tuple[Tuple[int, int], ...]
    span: Tuple[int, int]
    mel: features.MelWindows


class TranscriptStream:
    """Segments of one transcription, produced lazily window by window.

    ``info`` is known after the audio is read and the language settled (reading it forces
    that much and no more); iterating yields each ``Segment`` as its window is decoded. A
    second iteration replays the segments kept from the first (text only: a few hundred bytes
    a segment, so hours of speech stay small).
    """

    def __init__(self, model: Whisper, mel: features.MelWindows, options: TranscribeOptions,
                 progress: Optional[Callable[[Progress], None]] = None):
        self.model = model
        self.options = options
        self.progress = progress
        self.source = mel.source.path  # the input's path, when it came as one
        try:
            self.media = mel.source.probe()  # the streams, frame rate and timecode the outputs use
        except BaseException:
            mel.close()
            raise
        # the file's mel window by window, 30 s of zeros appended as openai-whisper does: the
        # numbers of the whole file's mel at once (the clamp at the whole file's maximum), in
        # memory bounded by a window (features.MelWindows, docs/ops.md); self.mel[:, a:b],
        # self.mel.max() and self.mel.shape are the whole-file tensor's
        self.mel = mel
        try:
            usable_audio.check_usable(mel)  # nothing to transcribe: an error, not a hallucination
        except BaseException:
            mel.close()
            raise
        self.content_frames = self.mel.content_frames
        try:  # where speech is, and so which stretches the loop decodes (one pass over the audio)
            self.plan = speech.plan_speech(mel.source, options, _seek_clips(options.clip_timestamps,
                                                                            self.content_frames),
                                           self.content_frames)
        except BaseException:
            mel.close()
            raise
        self.suppressed: List[Suppression] = []  # segments decoded and not written (info.suppressed)
        self._regions = RegionLanguage(model, mel) if options.language_per_region and model.is_multilingual else None
        self.language_check: Optional[LanguageCheck] = None  # spot checks of a detected language (_begin)
        self._states: List[_LoopState] = []  # each part's loop, for progress
        self._checks: List[LanguageCheck] = []  # each part's spot checks
        self._begun = False
        self._readers: List[features.MelWindows] = []  # the parts' own readers (parts)
        self._info: Optional[TranscriptInfo] = None
        self._task_token = ""
        self._tokenizer: Optional[Tokenizer] = None
        self._segments: Optional[List[Segment]] = None
        # set by a scheduler that decodes many streams at once (whispermedia.scheduler): the
        # decoder's model side (None: a CachedInference per decode) and the random numbers of
        # sampling (None: torch's global generator, as openai-whisper)
        self.inference: Optional[Inference] = None
        self.generator: Optional[torch.Generator] = None

    # -- info ------------------------------------------------------------------------------
    @property
    def info(self) -> TranscriptInfo:
        if self._info is None:
            self._settle_language()
        return self._info

    def _settle_language(self) -> None:
        opts = self.options
        language, probability = opts.language, None
        if language is None:
            if not self.model.is_multilingual:
                language = "en"
            elif self._regions is not None:
                # the language the speech starts in: the first window's head
                seek = self._first_seek()
                usable_audio.detection_start(self.mel, seek)  # a second of sound there at least
                guess = self._regions.first(seek, min(N_FRAMES, self.content_frames - seek))
                language, probability = guess.language, guess.probability
            else:
                # never from silence or under a second; with detection on, from the first speech
                start = usable_audio.detection_start(self.mel, self._first_seek())
                window = features.pad_or_trim(self.mel[:, start:start + N_FRAMES], N_FRAMES).to(self.model.device)
                guess = detect(self.model, window)
                language, probability = guess.language, guess.probability
        self._task_token = _task_token(opts.task)
        self._tokenizer = self.model.tokenizer.with_language_and_task(language, self._task_token)
        self._info = TranscriptInfo(
            language=language,
            language_probability=probability,
            duration=float(self.content_frames * HOP_LENGTH / SAMPLE_RATE),
            task=opts.task,
            model=self.model.name,
            source=self.source,
            options=opts,
            media=self.media,
            audio_stream=None if self.media is None else (self.mel.source.stream_index or 0),
            speech=self.plan.regions,
        )

    def _first_seek(self) -> int:
        """The mel frame where decoding starts: the first clip's (the first speech's with
        detection on; the file's start when no speech was found)."""
        return self.plan.clips[0][0] if self.plan.clips else 0

    # -- segments --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Segment]:
        if self._segments is not None:  # a second pass replays, it does not decode again
            yield from self._segments
            return
        produced: List[Segment] = []
        try:
            for segment in _served(self._run()):
                produced.append(segment)
                yield segment
        finally:
            self.close()  # a spooled input's copy goes as soon as the decode is over
        self._segments = produced

    def close(self) -> None:
        """Release the input (a spooled pipe's temporary copy); the segments decoded so far stay."""
        for reader in self._readers:
            reader.close()
        self.mel.close()

    def collect(self) -> Transcript:
        segments = tuple(self)
        return Transcript(info=self.info, segments=segments)

    def _run(self) -> Generator[Union[Segment, EncodeRequest, LogitsRequest], Optional[torch.Tensor], None]:
        """The long-form loop, step-wise: yields each ``Segment`` as it is made and, for the model
        work of a window, an ``EncodeRequest`` or ``LogitsRequest``, whose answer is sent back
        (``_served`` answers them one by one; ``scheduler`` batches them across streams). Its
        driver runs it under ``torch.no_grad()``. The model side is ``self.inference`` (None:
        a ``CachedInference`` per decode) and sampling draws from ``self.generator``."""
        self._begin()
        whole = Part(clips=self.plan.clips, span=(0, self.content_frames), mel=self.mel)
        yield from self.run_part(whole, self.inference, self.generator, self.language_check)
        self._end()

    def parts(self, cuts: Sequence[Tuple[Tuple[int, int], ...]]) -> Optional[List[Part]]:
        """The file as independent parts, each decoding the clips of one entry of ``cuts``
        (``regions.split_clips``), each with its own reader of the windows; None when the input
        cannot be read at two places at once (``MelWindows.reader``)."""
        readers = [self.mel] + [self.mel.reader() for _ in cuts[1:]]
        if any(r is None for r in readers):
            return None
        self._readers.extend(readers[1:])
        bounds = [c[0][0] for c in cuts[1:]] + [self.content_frames]
        starts = [0] + bounds[:-1]
        return [Part(clips=tuple(c), span=(a, b), mel=r) for c, a, b, r in zip(cuts, starts, bounds, readers)]

    def part_check(self, part: Part) -> Optional[LanguageCheck]:
        """The language spot checks that fall in ``part`` (None when the file has none)."""
        self._begin()
        if self.language_check is None:
            return None
        check = self.language_check.within(*part.span)
        self._checks.append(check)
        return check

    def assemble(self, segments: Sequence[Sequence[Segment]]) -> Transcript:
        """The transcript of a file decoded in parts: each part's segments (``run_part``), in
        the parts' order, numbered from 0; the suppressed ones in time order."""
        numbered, n = [], 0
        for part in segments:
            for segment in part:
                numbered.append(dataclasses.replace(segment, id=n))
                n += 1
        self.suppressed.sort(key=lambda s: s.segment.start)
        if self.language_check is not None:
            self.language_check.checked = sorted((c for check in self._checks for c in check.checked),
                                                 key=lambda c: c[0])
        self._end()
        spans = tuple((round(a / FRAMES_PER_SECOND, 3), round(b / FRAMES_PER_SECOND, 3))
                      for a, b in (st.span for st in sorted(self._states, key=lambda st: st.span)))
        self._info = dataclasses.replace(self._info, parts=spans)
        return Transcript(info=self.info, segments=tuple(numbered))

    def _begin(self) -> None:
        """What a file's decode does once, before its first window (of any part)."""
        if self._begun:
            return
        self._begun = True
        info, opts, tok = self.info, self.options, self._tokenizer
        if opts.word_timestamps and self._task_token == "translate":
            warnings.warn("word timings of a translation may be unreliable: the words are not the speech's")
        if self.plan.regions is not None:
            # options only the model can refuse (token ids, a prefix too long), refused even
            # when no window is decoded because no speech was found
            prefix = tuple(tok.encode(" " + opts.prefix.strip())) if opts.prefix else None
            DecodingTask(self.model, opts.decoding_options(opts.temperature[0], task=self._task_token,
                                                           language=info.language, prefix=prefix), tok)
        if opts.language is None and self._regions is None and self.model.is_multilingual:
            self.language_check = LanguageCheck(self.model, info.language, self.content_frames, self._first_seek())

    def _end(self) -> None:
        """What a file's decode does once, after its last window."""
        if self.suppressed:
            self._info = dataclasses.replace(self._info, suppressed=tuple(self.suppressed))
        if self.language_check is not None:
            message = self.language_check.warning(self.source)
            if message is not None:
                warnings.warn(message, stacklevel=2)

    def run_part(self, part: Part, inference: Optional[Inference], generator: Optional[torch.Generator],
                 language_check: Optional[LanguageCheck]
                 ) -> Generator[Union[Segment, EncodeRequest, LogitsRequest], Optional[torch.Tensor], None]:
        """openai-whisper's loop over the clips of ``part``, conditioning on the part's own
        text only; segments are numbered from 0 within the part (``assemble`` renumbers).
        ``inference``/``generator``: the decoder's model side and sampling's random numbers."""
        self._begin()
        info = self.info
        opts = self.options
        tok = self._tokenizer
        clips = part.clips  # the user's clip_timestamps, within the speech regions when detected
        defence = Defence(opts, self.plan, self.model.name) if opts.suppress_hallucinations else None
        initial_prompt_tokens = tok.encode(" " + opts.initial_prompt.strip()) if opts.initial_prompt else []
        remaining_prompt_length = self.model.dims.n_text_ctx // 2 - 1 - len(initial_prompt_tokens)
        first = clips[0][0] if clips else part.span[0]
        state = _LoopState(seek=first, all_tokens=list(initial_prompt_tokens), prompt_reset_since=0,
                           span=part.span)
        self._states.append(state)
        self._report()  # the language is known before the first window is decoded: say so

        language = info.language
        for clip_start, clip_end in clips:
            state.seek = max(state.seek, clip_start)
            while state.seek < clip_end:
                window = Window(seek=state.seek, content_frames=self.content_frames,
                                size=min(N_FRAMES, self.content_frames - state.seek, clip_end - state.seek))
                mel = part.mel[:, window.seek:window.seek + window.size]
                mel = features.pad_or_trim(mel, N_FRAMES).to(self.model.device)
                audio_features = yield EncodeRequest(self.model, mel[None])  # once per window

                if self._regions is not None:
                    found = self._regions.for_window(window.seek, window.size, audio_features, language)
                    if found != language:
                        # another language: the previous text would pull the decoder back to the old one
                        language = found
                        tok = self.model.tokenizer.with_language_and_task(language, self._task_token)
                        state.prompt_reset_since = len(state.all_tokens)

                if opts.carry_initial_prompt:
                    ignored = max(len(initial_prompt_tokens), state.prompt_reset_since)
                    prompt = initial_prompt_tokens + state.all_tokens[ignored:][-remaining_prompt_length:]
                else:
                    prompt = state.all_tokens[state.prompt_reset_since:]
                result = yield from self._decode_with_fallback(audio_features, prompt, tok, language,
                                                                inference, generator)

                if language_check is not None:  # silent-looking windows too: a language the
                    # decoder was not told often decodes as silence
                    language_check.see(window.seek, mel, audio_features)
                if self._is_silence(result):
                    self._suppress("no-speech", _split_segments(result, tok, window)[0])
                    state.seek += window.size
                    self._report()
                    continue

                segments, window = _split_segments(result, tok, window)
                state.seek = window.next_seek
                if self._regions is not None:
                    cut = self._regions.change(segments, language, window.seek, window.size, window.next_seek)
                    if cut is not None:  # the window's tail is in another language: the next window starts there
                        segments, state.seek = segments[:cut[0]], cut[1]
                        window = dataclasses.replace(window, next_seek=cut[1], single_timestamp_ending=False)
                if opts.language_per_region:
                    segments = [dataclasses.replace(s, language=language) for s in segments]
                if opts.word_timestamps:
                    timed = timing.apply_word_timestamps(
                        segments, self.model, tok, audio_features, window,
                        prepend_punctuations=opts.prepend_punctuations,
                        append_punctuations=opts.append_punctuations,
                        hallucination_silence_threshold=opts.hallucination_silence_threshold,
                        last_speech_timestamp=state.last_speech_timestamp,
                    )
                    state.seek = timed.seek
                    if timed.skip:  # a hallucination after silence: nothing of this window is kept
                        self._suppress("silence-hallucination", segments)
                        self._report()
                        continue
                    segments, state.last_speech_timestamp = timed.segments, timed.last_speech_timestamp
                    if self.plan.regions:  # no word over a pause the VAD heard as silence
                        segments = [self.plan.fit_words(s, opts.vad_pad) for s in segments]
                for segment in segments:
                    # cleared after word timing: emptiness is judged on the adjusted bounds
                    if segment.start == segment.end or not segment.text.strip():
                        segment = dataclasses.replace(segment, text="", tokens=(),
                                                      words=None if segment.words is None else ())
                    reason = defence.judge(segment) if defence is not None else None
                    if reason is not None:  # not written, but recorded (info.suppressed)
                        self._suppress(reason, [segment])
                        continue
                    if defence is not None:
                        defence.written(segment)
                    segment = dataclasses.replace(segment, id=state.segment_count)
                    state.segment_count += 1
                    state.all_tokens.extend(segment.tokens)
                    yield segment
                if not opts.condition_on_previous_text or result.temperature > 0.5:
                    # a high-temperature window is unreliable context for the next one
                    state.prompt_reset_since = len(state.all_tokens)
                self._report()
        if part.span[1] < self.content_frames:  # a part before the last: the pause after it is done too
            state.seek = max(state.seek, part.span[1])
            self._report()

    def _suppress(self, reason: str, segments: Sequence[Segment]) -> None:
        """Record decoded segments that are not written (those with text), with the reason."""
        for segment in segments:
            if segment.text.strip():
                self.suppressed.append(Suppression(reason, dataclasses.replace(segment, id=-1)))

    def _report(self) -> None:
        if self.progress is not None:
            # each part's loop accounts for its span: the frames before its seek are done
            frames = sum(min(max(st.seek, lo), hi) - lo for st in self._states for lo, hi in [st.span])
            done = min(frames, self.content_frames) * HOP_LENGTH / SAMPLE_RATE
            info = self.info
            segments = sum(st.segment_count for st in self._states)
            self.progress(Progress(seconds_done=done, seconds_total=info.duration, segments=segments,
                                   source=self.source, language=info.language,
                                   language_probability=info.language_probability))

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
                              language: str, inference: Optional[Inference], generator: Optional[torch.Generator]
                              ) -> Generator[LogitsRequest, torch.Tensor, DecodingResult]:
        """Decode at each temperature in turn until the result is neither repetitive nor
        improbable (or looks like silence). audio_features: [1, n_audio_ctx, n_audio_state]."""
        opts = self.options
        prefix = tuple(tok.encode(" " + opts.prefix.strip())) if opts.prefix else None
        result: Optional[DecodingResult] = None
        for t in opts.temperature:
            decoding = opts.decoding_options(t, task=self._task_token, language=language,
                                             prompt=tuple(prompt), prefix=prefix)
            task = DecodingTask(self.model, decoding, tok, generator=generator, inference=inference)
            result = (yield from task.steps(audio_features))[0]
            too_repetitive = (opts.compression_ratio_threshold is not None
                              and result.compression_ratio > opts.compression_ratio_threshold)
            too_unlikely = opts.logprob_threshold is not None and result.avg_logprob < opts.logprob_threshold
            silent = (opts.no_speech_threshold is not None and result.no_speech_prob > opts.no_speech_threshold
                      and too_unlikely)
            if silent or not (too_repetitive or too_unlikely):
                break
        return result


def _served(run: Generator) -> Iterator[Segment]:
    """The segments of a step-wise run (``TranscriptStream._run``), its model requests answered
    one at a time as they come, under ``torch.no_grad()`` (the caller's grad mode between)."""
    reply = None
    while True:
        with torch.no_grad():
            try:
                item = run.send(reply)
            except StopIteration:
                return
            reply = None if isinstance(item, Segment) else item.serve()
        if isinstance(item, Segment):
            yield item


def _seek_clips(clip_timestamps: Sequence[float], content_frames: int) -> List[Tuple[int, int]]:
    """``clip_timestamps`` (start, end, start, ... seconds) as (start, end) frame pairs."""
    points = [round(t * FRAMES_PER_SECOND) for t in clip_timestamps] or [0]
    if len(points) % 2 == 1:
        points.append(content_frames)
    # a clip that runs past the end stops there (openai-whisper's loop would decode empty windows
    # forever once it reached the end: the only place where we differ from it on purpose)
    points = [min(p, content_frames) for p in points]
    return list(zip(points[::2], points[1::2]))


def _split_segments(result: DecodingResult, tok: Tokenizer, window: Window) -> Tuple[List[Segment], Window]:
    """The window's segments, cut at each pair of consecutive timestamps, and the window with
    where the next one starts (``next_seek``, ``single_timestamp_ending``).

    When the window ends on a lone timestamp, the speech ran to the window's end and the next
    window starts after it; otherwise the next window starts at the last complete segment's end.
    """
    seek, time_offset = window.seek, window.time_offset
    tokens = list(result.tokens)
    is_ts = [t >= tok.timestamp_begin for t in tokens]
    single_timestamp_ending = is_ts[-2:] == [False, True]
    cuts = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    seconds_per_step = FRAMES_PER_POSITION * HOP_LENGTH / SAMPLE_RATE

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
            next_seek = seek + window.size
        else:
            next_seek = seek + (tokens[last - 1] - tok.timestamp_begin) * FRAMES_PER_POSITION
    else:
        duration = window.size * HOP_LENGTH / SAMPLE_RATE
        stamps = [t for t in tokens if t >= tok.timestamp_begin]
        if stamps and stamps[-1] != tok.timestamp_begin:
            duration = (stamps[-1] - tok.timestamp_begin) * seconds_per_step
        segments.append(make(time_offset, time_offset + duration, tokens))
        next_seek = seek + window.size
    return segments, dataclasses.replace(window, next_seek=next_seek, single_timestamp_ending=single_timestamp_ending)


def _open_input(audio: AudioInput, audio_stream: Union[None, int, str]) -> Tuple["media.AudioSource", bool]:
    """The input opened and checked (``media.open_source``: its kind, its audio stream), and
    whether it was opened here (so the stream closes it)."""
    from . import media  # deferred: PyAV loads only when an input is opened

    source = media.open_source(audio, audio_stream)
    return source, source is not audio


def _mel_windows(source: "media.AudioSource", owned: bool, model: Whisper) -> features.MelWindows:
    """The input's log-mel, window by window. What the input is (a path, a file object, a pipe,
    samples) the media layer decided (``media.open_source``; ``mel.source``); a file is decoded
    twice (pass 1: the maximum that sets the clamp; pass 2: the windows as the loop asks for
    them), never held whole; samples are sliced as they are."""
    return features.MelWindows(source, model.dims.n_mels, padding=N_SAMPLES, device=model.device,
                               close_source=owned)


def _options(options: Optional[TranscribeOptions], kwargs: dict) -> TranscribeOptions:
    """The options of one call: ``options``, with openai-style keywords on top (or alone)."""
    if options is None:
        return TranscribeOptions.from_kwargs(**kwargs)
    if not isinstance(options, TranscribeOptions):
        raise TypeError(f"options must be a TranscribeOptions, not {type(options).__name__}")
    return options.updated(**kwargs) if kwargs else options


def stream(audio: AudioInput, *, model: Union[str, os.PathLike, Whisper] = DEFAULT_MODEL,
           options: Optional[TranscribeOptions] = None, audio_stream: Union[None, int, str] = None,
           progress: Optional[Callable[[Progress], None]] = None, device: Optional[str] = None,
           **kwargs: Any) -> TranscriptStream:
    """Segments of ``audio`` as each window finishes; see ``transcribe`` for the arguments."""
    opts = _options(options, kwargs)  # before the model: a bad option costs no load
    speech.backend_for(opts)  # ... nor an unknown --vad backend, or one that cannot run here
    source, owned = _open_input(audio, audio_stream)  # ... nor a missing file or one that is not media
    try:
        whisper = resolve_model(model, device)
        mel = _mel_windows(source, owned, whisper)
    except BaseException:
        if owned:
            source.close()
        raise
    return TranscriptStream(whisper, mel, opts, progress)


def transcribe(audio: AudioInput, *, model: Union[str, os.PathLike, Whisper] = DEFAULT_MODEL,
               options: Optional[TranscribeOptions] = None, audio_stream: Union[None, int, str] = None,
               progress: Optional[Callable[[Progress], None]] = None, device: Optional[str] = None,
               **kwargs: Any) -> Transcript:
    """Transcribe (or translate) the speech in ``audio``.

    audio: a media file path (any container/codec PyAV decodes; a FIFO or ``/dev/stdin`` too), a
        binary file object (a pipe's is spooled to a temporary file), or a 1-D float32 array of
        16 kHz samples.
    model: a registry name ("base", "tiny.en"), a checkpoint path, or a loaded model.
    options: a ``TranscribeOptions`` (``TranscribeOptions.from_kwargs(preset=..., ...)``).
    audio_stream: which audio stream of the file: its index (0-based among audio streams) or
        ``"lang:<tag>"`` (``"lang:eng"``); None: the stream the file flags as default, else the
        first (``TranscriptInfo.audio_stream`` says which was decoded).
    progress: called with a ``Progress`` after each window.
    The input is opened and checked before the model is resolved: a missing file or one that
    is not media is a ``MediaError`` at once, with no model loaded.
    kwargs: openai-whisper ``transcribe()`` options by name (language, task, temperature,
        best_of, condition_on_previous_text, initial_prompt, ..., and ``preset``), alone or on
        top of ``options``; an unknown name is a ``TypeError`` naming the closest one, a bad
        value an ``OptionError`` (a ``ValueError``) naming the option.
    """
    return stream(audio, model=model, options=options, audio_stream=audio_stream,
                  progress=progress, device=device, **kwargs).collect()


__all__ = ["transcribe", "stream", "TranscriptStream", "resolve_model", "LANGUAGES"]
