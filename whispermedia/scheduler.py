"""Continuous batching of independent transcriptions: many files through one encoder and one
decoder, each file's result identical to transcribing it alone.

A stream is one file's ``TranscriptStream`` running its exact long-form loop (seek, prompts,
timestamp rules, the temperature ladder with beams and best_of, thresholds, the no-speech gate,
word timing) step-wise (``TranscriptStream._run``): it yields the model work a window needs
(``EncodeRequest``, ``LogitsRequest``) and is sent the answer. The ``Scheduler`` keeps up to
``batch_size`` streams open; each round it answers every open stream's request: the windows to
encode go to the encoder (``WindowEncoder``: on a CPU a thread of its own, so that windows are
encoded while the decoder steps), each prompt step runs alone (prompts differ in length), every
one-token step of every stream (beams and samples included) in one ``BatchedInference.step``;
a stream whose window is still being encoded sits the round out. A stream whose
window ends, or falls back to the next temperature, simply asks again in the next round; a
stream whose file ends gives its slot to the next file in the queue. No stream waits for
another's fallback chain and the batch never shrinks while files remain.

What stays batch 1: language detection, the language spot checks and word timing (one forward
per window each), which run inside their stream.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import deque
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Tuple, Union

import torch

from .batched import BatchedInference, SlotInference, SlotPool, WindowEncoder
from .decoding import EncodeRequest, LogitsRequest, decode_threads
from .batch_options import CPU_BATCH_SIZE, REGION_SECONDS, BatchOptions
from .model import Whisper
from .options import TranscribeOptions
from .pipeline import TranscriptStream
from .regions import split_clips
from .types import Segment, Transcript

# Windows encoded in one encoder call at most, on a GPU: the encoder's activations grow with the
# batch (base: about 100 MB a window, mostly the 1500 x 1500 attention scores). A CPU encodes one
# window a call, beside the decoder (batched.WindowEncoder).
ENCODE_BATCH = 4

# The share of free memory the decoder's cache pool may take when the batch size is automatic.
POOL_MEMORY_SHARE = 0.25
MAX_AUTO_BATCH_SIZE = 64


def auto_batch_size(model: Whisper, rows_per_slot: int) -> int:
    """The batch size when none is given: ``CPU_BATCH_SIZE`` on a CPU, else as many streams as
    ``POOL_MEMORY_SHARE`` of the device's free memory holds slots (at most ``MAX_AUTO_BATCH_SIZE``)."""
    per_slot = SlotPool.bytes_per_slot(model, rows_per_slot)
    if model.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(model.device)
        return max(1, min(MAX_AUTO_BATCH_SIZE, int(free * POOL_MEMORY_SHARE) // per_slot))
    try:
        pages, page = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        fits = int(pages * page * POOL_MEMORY_SHARE) // per_slot
    except (ValueError, OSError, AttributeError):
        fits = CPU_BATCH_SIZE
    return max(1, min(CPU_BATCH_SIZE, fits))


def seeded_generator(model: Whisper, seed: int) -> torch.Generator:
    """A stream's own random numbers for sampling, on the model's device."""
    return torch.Generator(device=model.device).manual_seed(seed)


def rows_per_stream(options: TranscribeOptions) -> int:
    """The most rows one decode of these options takes: beams at temperature 0, samples above."""
    rows = 1
    if options.beam_size is not None and 0.0 in options.temperature:
        rows = max(rows, options.beam_size)
    if options.best_of is not None and any(t > 0 for t in options.temperature):
        rows = max(rows, options.best_of)
    return rows


Result = Union[Transcript, Exception]


@dataclass
class _File:
    """An open input: its stream and its parts' segments (one part unless ``regions`` mode)."""

    key: Any
    stream: Optional[TranscriptStream]
    parts: List[List[Segment]]
    left: int  # parts not finished
    failed: Optional[Exception] = None
    whole: bool = True  # decoded as one part (the stream's own loop, its result as alone)
    started: float = field(default_factory=time.monotonic)
    warnings: List[warnings.WarningMessage] = field(default_factory=list)  # raised while it was worked on


@dataclass(frozen=True)
class FileReport:
    """What the scheduler knows of one input besides its result (``Scheduler.report``)."""

    warnings: Tuple[str, ...]  # the Python warnings raised while it was opened and decoded
    seconds: float  # from its opening to its result (other inputs were decoded meanwhile)


@dataclass
class _Run:
    """One part of an input being decoded: its step-wise loop, its slot, the request it waits on."""

    file: _File
    index: int
    run: Any  # the generator of TranscriptStream._run / run_part
    slot: int
    request: Any = None
    encoding: Optional[futures.Future] = None  # its window's features, while being encoded
    ended: bool = False  # its loop closed and its slot given back


class Scheduler:
    """Transcribes streams ``batch_size`` at a time with continuous batching (module docstring).

    ``region_seconds``: None (``exact`` mode: each file one stream, its transcript the one it
    gets alone) or the shortest part of ``regions`` mode (``whispermedia.regions``: a file cut
    at speech pauses into parts that are streams of their own)."""

    def __init__(self, model: Whisper, batch_size: int, rows_per_slot: int, seed: int = 0,
                 encode_batch: int = ENCODE_BATCH, region_seconds: Optional[float] = None, reports: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
        self.model = model
        self.batch_size = batch_size
        self.seed = seed
        self.region_seconds = region_seconds
        self.encode_batch = max(1, encode_batch)
        self.pool = SlotPool(model, batch_size, rows_per_slot)
        self.batched = BatchedInference(model)
        self.encoder: Optional[WindowEncoder] = None  # while run() runs
        self.keep_reports = reports  # keep each input's FileReport until report(key) takes it
        self._reports: dict = {}  # id(key) -> (key, FileReport) of the inputs yielded, not yet asked about

    def run(self, jobs: Iterable[Tuple[Any, Callable[[], TranscriptStream]]]) -> Iterator[Tuple[Any, Result]]:
        """``jobs``: (key, open) pairs, ``open()`` making the key's stream. Yields (key, its
        ``Transcript``) as each finishes, or (key, the exception) for one that failed to open or
        to decode; the other streams go on. The warnings an input raised are issued again just
        before its result is yielded (not among the other inputs' work); with ``reports=True``,
        ``report(key)`` then tells them and its time, once."""
        queue = iter(jobs)
        self.encoder = WindowEncoder(self.model, self.batch_size, self.encode_batch)
        waiting: Deque[Tuple[_File, int, Any]] = deque()  # parts opened, not started: (file, index, start)
        active: List[_Run] = []
        try:
            while True:
                while len(active) < self.batch_size:
                    if not waiting:
                        job = next(queue, None)
                        if job is None:
                            break
                        failed = self._open(*job, waiting)
                        if failed is not None:
                            yield failed
                        continue
                    file, index, start = waiting.popleft()
                    if file.failed is not None:  # another part of it failed: not started
                        done = self._part_done(file, index, None)
                    else:
                        r, done = self._start(file, index, start)
                        if r is not None:
                            active.append(r)
                    if done is not None:
                        yield done
                if not active:
                    return
                replies = self._serve(active)
                still: List[_Run] = []
                for r, reply in zip(active, replies):
                    if reply is None:  # its window is still being encoded
                        still.append(r)
                        continue
                    ended, done = self._advance(r, reply)
                    if not ended:
                        still.append(r)
                    if done is not None:
                        yield done
                active = still
        finally:  # stopped early (the caller closed us, or a model call failed): free what is open
            self.encoder.close()  # first: a window being encoded writes its stream's slot
            files = {id(r.file): r.file for r in active}
            files.update((id(f), f) for f, _, _ in waiting)
            for r in active:
                if not r.ended:  # (a run that ended in the round being yielded is in both lists)
                    r.run.close()
                    self.pool.release(r.slot)
            for f in files.values():
                f.stream.close()

    def report(self, key: Any) -> Optional[FileReport]:
        """The warnings and time of an input whose result was yielded (once; None after)."""
        return self._reports.pop(id(key), (None, None))[1]

    # -- one input ---------------------------------------------------------------------------
    @contextmanager
    def _on(self, file: _File):
        """Work done for ``file``: its warnings are kept, to be shown with its result."""
        with warnings.catch_warnings(record=True) as caught:
            yield
        file.warnings.extend(caught)

    def _result(self, file: _File, result: Result) -> Tuple[Any, Result]:
        """``file``'s result, its warnings issued again now (where they were raised) and its
        report kept."""
        for w in file.warnings:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if self.keep_reports:  # by identity: a key may be an array; it is kept with its report
            self._reports[id(file.key)] = (file.key, FileReport(tuple(str(w.message) for w in file.warnings),
                                                                time.monotonic() - file.started))
        return file.key, result

    def _open(self, key: Any, open_stream: Callable[[], TranscriptStream],
              waiting: Deque[Tuple[_File, int, Any]]) -> Optional[Tuple[Any, Result]]:
        """Open an input and queue its parts; (key, the exception) when it cannot be opened."""
        file = _File(key, None, [], left=0)
        stream = None
        try:
            with self._on(file):
                stream = open_stream()
                stream.info  # the language settled (a batch-1 detection) before the first window
                parts = self._parts(stream)
        except Exception as exc:  # one input's failure is its result
            if stream is not None:
                stream.close()
            return self._result(file, exc)
        file.stream = stream
        file.parts = [[] for _ in range(max(1, len(parts or ())))]
        file.left = len(file.parts)
        file.whole = parts is None
        if parts is None:
            waiting.append((file, 0, lambda inference, generator: self._whole(stream, inference, generator)))
        else:
            for i, part in enumerate(parts):
                waiting.append((file, i, lambda inference, generator, part=part:
                                stream.run_part(part, inference, generator, stream.part_check(part))))
        return None

    def _parts(self, stream: TranscriptStream) -> Optional[list]:
        """The parts ``regions`` mode decodes the stream in; None for one part."""
        if self.region_seconds is None or stream._regions is not None:
            return None  # language_per_region: a part's language would depend on the one before
        cuts = split_clips(stream.plan, self.region_seconds)
        if len(cuts) < 2:
            return None
        return stream.parts(cuts)

    @staticmethod
    def _whole(stream: TranscriptStream, inference: Any, generator: torch.Generator):
        stream.inference, stream.generator = inference, generator
        return stream._run()

    def _start(self, file: _File, index: int, start: Callable) -> Tuple[Optional[_Run], Optional[tuple]]:
        """Start one part on a free slot and run it to its first request (or its end)."""
        slot = self.pool.acquire()
        try:
            # part 0 draws from the seed itself (a file of one part, as alone); part i from seed + i
            run = start(SlotInference(self.model, self.pool, slot), seeded_generator(self.model, self.seed + index))
        except Exception as exc:
            self.pool.release(slot)
            return None, self._part_done(file, index, exc)
        r = _Run(file, index, run, slot)
        ended, done = self._advance(r, None)
        return (None if ended else r), done

    def _advance(self, r: _Run, reply: Optional[torch.Tensor]) -> Tuple[bool, Optional[Tuple[Any, Result]]]:
        """Send ``reply`` and run the part to its next request: (whether it ended, (key,
        result) when that ended its input)."""
        failed: Optional[Exception] = None
        try:
            # the streams' own work between model calls (logit filters, beam bookkeeping, cache
            # reorders) is many small ops: with at most DECODE_THREADS, as CachedInference runs it
            # in a decode alone (word timing too here: it is a small part)
            with self._on(r.file), torch.no_grad(), decode_threads(self.model.device):
                while True:
                    try:
                        item = r.run.send(reply)
                    except StopIteration:
                        break
                    if isinstance(item, Segment):
                        r.file.parts[r.index].append(item)
                        reply = None
                        continue
                    r.request = item
                    return False, None
        except Exception as exc:
            failed = exc
        return True, self._end_run(r, failed)  # outside _on: the result's warnings are issued again

    def _end_run(self, r: _Run, exc: Optional[Exception]) -> Optional[Tuple[Any, Result]]:
        r.run.close()
        self.pool.release(r.slot)
        r.ended = True
        return self._part_done(r.file, r.index, exc)

    def _part_done(self, file: _File, index: int, exc: Optional[Exception]) -> Optional[Tuple[Any, Result]]:
        """One part of ``file`` ended (``exc``: how it failed); (key, result) when it was the last."""
        if exc is not None and file.failed is None:
            file.failed = exc
        file.left -= 1
        if file.left > 0:
            return None
        stream = file.stream
        try:
            if file.failed is not None:
                return self._result(file, file.failed)
            if file.whole:
                return self._result(file, Transcript(info=stream.info, segments=tuple(file.parts[0])))
            try:
                with self._on(file):
                    transcript = stream.assemble(file.parts)
            except Exception as e:
                return self._result(file, e)
            return self._result(file, transcript)
        finally:
            stream.inference = None
            stream.close()

    # -- one round ---------------------------------------------------------------------------
    def _submit(self, asked: List[_Run]) -> None:
        # each window's cross-attention K/V are made into its stream's slot by the thread that
        # encoded it: the decode finds them there (SlotPool.cache)
        fills = [lambda features, slot=r.slot: self.pool.fill_cross(slot, features) for r in asked]
        for r, future in zip(asked, self.encoder.submit([r.request.mel for r in asked], fills)):
            r.encoding = future

    def _serve(self, active: List[_Run]) -> List[Optional[torch.Tensor]]:
        """The answer to every open stream's request that can be answered now, in order (None:
        its window is still being encoded). Windows go to the encoder as they are asked for;
        when nothing else is left to do, this waits for the first of them."""
        replies: List[Optional[torch.Tensor]] = [None] * len(active)
        asked = [r for r in active if isinstance(r.request, EncodeRequest) and r.encoding is None]
        if any(isinstance(r.request, LogitsRequest) for r in active):
            self._submit(asked)  # the workers encode them while this thread steps the decoder
        elif asked or any(r.encoding is not None for r in active):
            # nothing to step: encode waiting windows here too (idle first: a window alone is
            # this thread's, on every core), or wait for the first one
            with self.encoder.idle():
                self._submit(asked)
                waiting = [r.encoding for r in active if r.encoding is not None]
                while not any(f.done() for f in waiting):
                    if not self.encoder.help():
                        futures.wait(waiting, return_when=futures.FIRST_COMPLETED)
        for i, r in enumerate(active):
            if r.encoding is not None and r.encoding.done():
                replies[i], r.encoding = r.encoding.result(), None
        prompts = [i for i, r in enumerate(active) if isinstance(r.request, LogitsRequest) and r.request.first]
        steps = [i for i, r in enumerate(active) if isinstance(r.request, LogitsRequest) and not r.request.first]
        with torch.no_grad(), decode_threads(self.model.device):
            for i in prompts:
                replies[i] = active[i].request.serve()
            if steps:
                for i, logits in zip(steps, self.batched.step([active[i].request for i in steps])):
                    replies[i] = logits
        return replies


def transcribe_many(inputs: Iterable[Any], *, model: Union[str, os.PathLike, Whisper, None] = None,
                    options: Optional[TranscribeOptions] = None, batch_size: Optional[int] = None,
                    batch_mode: str = "auto", region_seconds: float = REGION_SECONDS,
                    seed: int = 0, audio_stream: Union[None, int, str] = None,
                    progress: Optional[Callable] = None, device: Optional[str] = None,
                    **kwargs: Any) -> Iterator[Tuple[Any, Result]]:
    """Transcribe many inputs at once, yielding ``(input, Transcript)`` for each as it finishes
    (not in input order), or ``(input, exception)`` for one that could not be opened or decoded.

    ``batch_mode="exact"``: each input's result is identical to ``transcribe(input, ...)`` with
    the same options, for any ``batch_size`` (sampling at temperatures above 0 draws from the
    input's own generator seeded with ``seed``, where ``transcribe`` uses torch's global one).
    ``batch_mode="regions"``: an input with speech regions (the VAD on) is also cut at its
    pauses into parts of at least ``region_seconds`` decoded side by side
    (``whispermedia.regions``); its result is the same at any ``batch_size``, and differs from
    ``transcribe``'s only in what each part's first window is conditioned on and in no window
    running across a cut (``TranscriptInfo.parts`` says where the parts are).
    ``batch_mode="auto"`` (the default): ``regions`` unless the options condition on previous
    text, then ``exact``. ``batch_size``: streams decoded at
    once (None: ``auto_batch_size``). The other arguments are ``transcribe``'s; the options are
    checked, and the model loaded, before the first input is opened.
    """
    from .constants import DEFAULT_MODEL
    from .pipeline import _options, resolve_model, stream

    opts = _options(options, kwargs)
    batch = BatchOptions(batch_size=batch_size, batch_mode=batch_mode, region_seconds=region_seconds, seed=seed)
    whisper = resolve_model(DEFAULT_MODEL if model is None else model, device)
    rows = rows_per_stream(opts)
    size = batch.batch_size or auto_batch_size(whisper, rows)
    inputs = list(inputs)
    regions = batch.region_length(opts)
    if regions is None:  # no more streams than files (in regions mode, parts fill them)
        size = max(1, min(size, len(inputs)))

    def opener(item: Any) -> Callable[[], TranscriptStream]:
        return lambda: stream(item, model=whisper, options=opts, audio_stream=audio_stream, progress=progress)

    scheduler = Scheduler(whisper, size, rows, seed=batch.seed, region_seconds=regions)
    return scheduler.run((item, opener(item)) for item in inputs)


__all__ = ["transcribe_many", "Scheduler", "FileReport", "BatchOptions", "auto_batch_size", "rows_per_stream", "seeded_generator"]
