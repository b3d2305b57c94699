"""Continuous batching of independent transcriptions: many files through one encoder and one
decoder, each file's result identical to transcribing it alone.

A stream is one file's ``TranscriptStream`` running its exact long-form loop (seek, prompts,
timestamp rules, the temperature ladder with beams and best_of, thresholds, the no-speech gate,
word timing) step-wise (``TranscriptStream._run``): it yields the model work a window needs
(``EncodeRequest``, ``LogitsRequest``) and is sent the answer. The ``Scheduler`` keeps up to
``batch_size`` streams open; each round it answers every open stream's request: the windows to
encode in batches, each prompt step alone (prompts differ in length), every one-token step of
every stream (beams and samples included) in one ``BatchedInference.step``. A stream whose
window ends, or falls back to the next temperature, simply asks again in the next round; a
stream whose file ends gives its slot to the next file in the queue. No stream waits for
another's fallback chain and the batch never shrinks while files remain.

What stays batch 1: language detection, the language spot checks and word timing (one forward
per window each), which run inside their stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple, Union

import torch

from .batched import BatchedInference, SlotInference, SlotPool
from .decoding import EncodeRequest, LogitsRequest, decode_threads
from .batch_options import CPU_BATCH_SIZE, BatchOptions
from .model import Whisper
from .options import TranscribeOptions
from .pipeline import TranscriptStream
from .types import Segment, Transcript

# Windows encoded in one encoder call at most: the encoder's activations grow with the batch
# (base: about 100 MB a window, mostly the 1500 x 1500 attention scores), and past a few windows
# a CPU gains nothing more (docs/benchmarks.md, "Batched transcription").
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
class _Open:
    """An open stream: its input, its step-wise run, the request it waits on."""

    key: Any
    stream: TranscriptStream
    run: Any  # the generator of TranscriptStream._run
    slot: int
    segments: List[Segment] = field(default_factory=list)
    request: Any = None


class Scheduler:
    """Transcribes streams ``batch_size`` at a time with continuous batching (module docstring)."""

    def __init__(self, model: Whisper, batch_size: int, rows_per_slot: int, seed: int = 0,
                 encode_batch: int = ENCODE_BATCH):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
        self.model = model
        self.batch_size = batch_size
        self.seed = seed
        self.encode_batch = max(1, encode_batch)
        self.pool = SlotPool(model, batch_size, rows_per_slot)
        self.batched = BatchedInference(model)

    def run(self, jobs: Iterable[Tuple[Any, Callable[[], TranscriptStream]]]) -> Iterator[Tuple[Any, Result]]:
        """``jobs``: (key, open) pairs, ``open()`` making the key's stream. Yields (key, its
        ``Transcript``) as each finishes, or (key, the exception) for one that failed to open or
        to decode; the other streams go on."""
        queue = iter(jobs)
        active: List[_Open] = []
        try:
            while True:
                while len(active) < self.batch_size:
                    job = next(queue, None)
                    if job is None:
                        break
                    opened, done = self._open(*job)
                    if opened is not None and done is None:
                        active.append(opened)
                    if done is not None:
                        yield done
                if not active:
                    return
                replies = self._serve(active)
                still: List[_Open] = []
                for s, reply in zip(active, replies):
                    done = self._advance(s, reply)
                    if done is None:
                        still.append(s)
                    else:
                        yield done
                active = still
        finally:  # stopped early (the caller closed us, or a model call failed): free what is open
            for s in active:
                if s.stream.inference is not None:
                    self._finish(s, None)

    # -- one stream --------------------------------------------------------------------------
    def _open(self, key: Any, open_stream: Callable[[], TranscriptStream]) -> Tuple[Optional[_Open], Optional[tuple]]:
        """Open a stream and run it to its first request (or its end: a file with no windows)."""
        try:
            stream = open_stream()
            stream.info  # the language settled (a batch-1 detection) before the first window
        except Exception as exc:  # one input's failure is its result
            return None, (key, exc)
        slot = self.pool.acquire()
        stream.inference = SlotInference(self.model, self.pool, slot)
        stream.generator = seeded_generator(self.model, self.seed)
        s = _Open(key, stream, stream._run(), slot)
        return s, self._advance(s, None)

    def _advance(self, s: _Open, reply: Optional[torch.Tensor]) -> Optional[Tuple[Any, Result]]:
        """Send ``reply`` and run the stream to its next request; (key, result) when it ends."""
        try:
            # the streams' own work between model calls (logit filters, beam bookkeeping, cache
            # reorders) is many small ops: with at most DECODE_THREADS, as CachedInference runs it
            # in a decode alone (word timing too here: it is a small part)
            with torch.no_grad(), decode_threads(self.model.device):
                while True:
                    try:
                        item = s.run.send(reply)
                    except StopIteration:
                        return self._finish(s, Transcript(info=s.stream.info, segments=tuple(s.segments)))
                    if isinstance(item, Segment):
                        s.segments.append(item)
                        reply = None
                        continue
                    s.request = item
                    return None
        except Exception as exc:
            return self._finish(s, exc)

    def _finish(self, s: _Open, result: Result) -> Tuple[Any, Result]:
        s.run.close()
        s.stream.close()
        s.stream.inference = None
        self.pool.release(s.slot)
        return s.key, result

    # -- one round ---------------------------------------------------------------------------
    def _serve(self, active: List[_Open]) -> List[torch.Tensor]:
        """The answer to every open stream's request, in order."""
        replies: List[Optional[torch.Tensor]] = [None] * len(active)
        encodes = [i for i, s in enumerate(active) if isinstance(s.request, EncodeRequest)]
        prompts = [i for i, s in enumerate(active) if isinstance(s.request, LogitsRequest) and s.request.first]
        steps = [i for i, s in enumerate(active) if isinstance(s.request, LogitsRequest) and not s.request.first]
        with torch.no_grad():
            for lo in range(0, len(encodes), self.encode_batch):
                batch = encodes[lo:lo + self.encode_batch]
                mel = torch.cat([active[i].request.mel for i in batch])
                features = self.model.embed_audio(mel)
                for j, i in enumerate(batch):
                    replies[i] = features[j:j + 1]
            for i in prompts:
                replies[i] = active[i].request.serve()
            if steps:
                for i, logits in zip(steps, self.batched.step([active[i].request for i in steps])):
                    replies[i] = logits
        return replies


def transcribe_many(inputs: Iterable[Any], *, model: Union[str, os.PathLike, Whisper, None] = None,
                    options: Optional[TranscribeOptions] = None, batch_size: Optional[int] = None,
                    seed: int = 0, audio_stream: Union[None, int, str] = None,
                    progress: Optional[Callable] = None, device: Optional[str] = None,
                    **kwargs: Any) -> Iterator[Tuple[Any, Result]]:
    """Transcribe many inputs at once, yielding ``(input, Transcript)`` for each as it finishes
    (not in input order), or ``(input, exception)`` for one that could not be opened or decoded.

    Each input's result is identical to ``transcribe(input, ...)`` with the same options, for
    any ``batch_size`` (sampling at temperatures above 0 draws from the input's own generator
    seeded with ``seed``, where ``transcribe`` uses torch's global one). ``batch_size``: streams
    decoded at once (None: ``auto_batch_size``). The other arguments are ``transcribe``'s; the
    options are checked, and the model loaded, before the first input is opened.
    """
    from .constants import DEFAULT_MODEL
    from .pipeline import _options, resolve_model, stream

    opts = _options(options, kwargs)
    batch = BatchOptions(batch_size=batch_size, seed=seed)
    whisper = resolve_model(DEFAULT_MODEL if model is None else model, device)
    rows = rows_per_stream(opts)
    size = batch.batch_size or auto_batch_size(whisper, rows)
    inputs = list(inputs)
    size = max(1, min(size, len(inputs)))

    def opener(item: Any) -> Callable[[], TranscriptStream]:
        return lambda: stream(item, model=whisper, options=opts, audio_stream=audio_stream, progress=progress)

    scheduler = Scheduler(whisper, size, rows, seed=batch.seed)
    return scheduler.run((item, opener(item)) for item in inputs)


__all__ = ["transcribe_many", "Scheduler", "BatchOptions", "auto_batch_size", "rows_per_stream", "seeded_generator"]
