"""The decoder's side of continuous batching: a pool of preallocated cache slots, one per
decode stream, and a decode step that runs the rows of many decodes in one forward.

A decode step on the CPU streams every decoder weight through memory for a handful of rows
(docs/benchmarks.md, "Decoder"): the projections and the MLP cost about the same for 1 row as
for 40. ``BatchedInference.step`` therefore runs those (and the layer norms, the embeddings and
the vocabulary projection) over the rows of every decode at once, and the attentions, whose
cost is each row's own cache, decode by decode over that decode's slot: no cache is copied,
gathered or concatenated, and each row's arithmetic is the one it has alone.

Identity with batch 1 (tests/test_scheduler.py): every op of the step gives a row the same bits
whatever the other rows are (measured: ``linear_f16w`` up to ``ops.COMPACT_MAX_ROWS`` rows, the
layer norms, ``kv_attention`` and ``cross_attention`` per decode). Past ``COMPACT_MAX_ROWS``
rows ``ops.linear`` switches to the BLAS GEMM, whose sums depend on the batch, so a step runs
its decodes in forwards of at most that many rows. A GPU runs cuBLAS, whose blocking may
depend on the batch: there the identity is not claimed.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from concurrent.futures import Future
from typing import Callable, Deque, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from . import ops
from .decoding import DECODE_THREADS, CachedInference, LogitsRequest, decode_threads
from .model import KVCache, Whisper


class SlotPool:
    """Decoder caches for up to ``n_slots`` decode streams, each allocated when first taken
    and kept for the next stream (no allocation per window or per stream after that).

    Slot s: self_k, self_v [n_layer, rows_per_slot, n_text_ctx, n_head, head_dim] (not zeroed),
    cross_k, cross_v [n_layer, 1, n_head, n_audio_ctx, head_dim], seqlens [rows_per_slot] int32.
    A stream holds one slot for its whole life (``acquire``/``release``); each decode of a
    window takes the slot's first ``rows`` rows (``cache``). Rows past a row's ``seqlens`` are
    never read (``ops.kv_attention``), so a slot is neither zeroed nor cleared for reuse: the
    self-attention pages a decode never reaches are never touched, so they cost no memory and
    no page faults (a greedy window of 30 tokens writes 7% of its slot's 448 positions; fresh
    pages cost 15 us each on this virtual machine, docs/benchmarks.md). A pool sized for more
    streams than come (one short file with an automatic batch size) costs only the slots used.
    """

    def __init__(self, model: Whisper, n_slots: int, rows_per_slot: int):
        if n_slots < 1 or rows_per_slot < 1:
            raise ValueError(f"a slot pool needs at least one slot of one row (got {n_slots} x {rows_per_slot})")
        self.model = model
        self.n_slots = n_slots
        self.rows_per_slot = rows_per_slot
        self._slots: List[Optional[Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]] = [None] * n_slots
        self._free = list(range(n_slots - 1, -1, -1))  # popped from the end: slot 0 first
        self._cross_of: List[Optional[Tensor]] = [None] * n_slots  # the features each slot's cross K/V are of

    def _buffers(self, slot: int) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Slot ``slot``'s (self_k, self_v, cross_k, cross_v, seqlens), allocated on first use."""
        buffers = self._slots[slot]
        if buffers is None:
            d = self.model.dims
            head_dim = d.n_text_state // d.n_text_head
            dtype, device = self.model.dtype, self.model.device
            shape = (d.n_text_layer, self.rows_per_slot, d.n_text_ctx, d.n_text_head, head_dim)
            cross = (d.n_text_layer, 1, d.n_text_head, d.n_audio_ctx, head_dim)
            buffers = (torch.empty(shape, dtype=dtype, device=device), torch.empty(shape, dtype=dtype, device=device),
                       torch.empty(cross, dtype=dtype, device=device), torch.empty(cross, dtype=dtype, device=device),
                       torch.zeros(self.rows_per_slot, dtype=torch.int32, device=device))
            self._slots[slot] = buffers
        return buffers

    @property
    def allocated(self) -> int:
        """How many slots have their buffers."""
        return sum(b is not None for b in self._slots)

    @staticmethod
    def bytes_per_slot(model: Whisper, rows_per_slot: int) -> int:
        """The memory one slot takes (for choosing a batch size)."""
        d = model.dims
        item = torch.empty((), dtype=model.dtype).element_size()
        self_kv = 2 * d.n_text_layer * rows_per_slot * d.n_text_ctx * d.n_text_state
        cross_kv = 2 * d.n_text_layer * d.n_audio_ctx * d.n_text_state
        return (self_kv + cross_kv) * item

    def acquire(self) -> int:
        if not self._free:
            raise ValueError("every slot of the pool is taken")
        return self._free.pop()

    def release(self, slot: int) -> None:
        if slot in self._free or not 0 <= slot < self.n_slots:
            raise ValueError(f"slot {slot} is not taken")
        self._cross_of[slot] = None
        self._free.append(slot)

    def fill_cross(self, slot: int, audio_features: Tensor) -> None:
        """Compute the cross-attention K/V of ``audio_features`` [1, n_audio_ctx, n_audio_state]
        into ``slot`` (as ``TextDecoder.new_cache`` computes them), once per window: a fallback's
        retries of the window find them made (``cache``)."""
        if audio_features.shape[0] != 1:
            raise ValueError("a slot decodes one window at a time")
        _, _, cross_k, cross_v, _ = self._buffers(slot)
        with torch.no_grad():
            for i, block in enumerate(self.model.decoder.blocks):
                k, v = block.cross_attn.kv(audio_features)
                cross_k[i, 0] = k[0]
                cross_v[i, 0] = v[0]
        self._cross_of[slot] = audio_features

    def cache(self, slot: int, audio_features: Tensor, rows: int) -> KVCache:
        """The cache of one decode of ``audio_features`` [1, n_audio_ctx, n_audio_state] by
        ``rows`` rows (beams or samples) in ``slot``: views of the pool, the cross K/V computed
        into it unless they already are (``fill_cross``), the rows' lengths at zero."""
        if rows > self.rows_per_slot:
            raise ValueError(f"a decode of {rows} rows does not fit a slot of {self.rows_per_slot}")
        if self._cross_of[slot] is not audio_features:
            self.fill_cross(slot, audio_features)
        self_k, self_v, cross_k, cross_v, seqlens = self._buffers(slot)
        seqlens[:rows].zero_()
        return KVCache(self_k=self_k[:, :rows], self_v=self_v[:, :rows], cross_k=cross_k, cross_v=cross_v,
                       seqlens=seqlens[:rows], rows_per_audio=rows)


class SlotInference(CachedInference):
    """One stream's ``Inference``: a ``CachedInference`` whose cache is its slot of a pool.

    Alone it serves every step as ``CachedInference`` does (the prompt step always runs so:
    prompts differ in length); ``BatchedInference.step`` serves the one-token steps of many
    at once.
    """

    def __init__(self, model: Whisper, pool: SlotPool, slot: int):
        super().__init__(model, model.tokenizer.no_speech)
        self.pool = pool
        self.slot = slot

    def new_cache(self, audio_features: Tensor, rows_per_audio: int) -> KVCache:
        return self.pool.cache(self.slot, audio_features, rows_per_audio)


class BatchedInference:
    """One-token decode steps of many decodes in one forward (see the module's docstring)."""

    def __init__(self, model: Whisper, max_rows: int = ops.COMPACT_MAX_ROWS, threads: Optional[int] = DECODE_THREADS):
        """``threads``: CPU threads of a step (None: torch's setting); 1 by default for the reason
        ``decoding.DECODE_THREADS`` gives (a second thread measured slower at every batch size on
        this shared 2-core machine: docs/benchmarks.md, "Batched transcription")."""
        self.model = model
        self.max_rows = max_rows
        self.threads = threads

    def step(self, requests: Sequence[LogitsRequest]) -> List[Tensor]:
        """The logits [n_rows, n_vocab] of each request (one-token steps of decodes whose
        inference is a ``SlotInference`` or a ``CachedInference`` with a cache), in order."""
        out: List[Tensor] = []
        with decode_threads(self.model.device, self.threads):
            for lo, hi in _chunks([r.tokens.shape[0] for r in requests], self.max_rows):
                out.extend(self._forward(requests[lo:hi]))
        return out

    def _forward(self, requests: Sequence[LogitsRequest]) -> List[Tensor]:
        """``TextDecoder.forward`` for one new token of every row of ``requests``, the
        attentions run per decode over its own cache."""
        decoder = self.model.decoder
        caches: List[KVCache] = []
        for r in requests:
            if r.first or r.inference.cache is None:
                raise ValueError("a batched step takes one-token steps of started decodes")
            caches.append(r.inference.cache)
        sizes = [r.tokens.shape[0] for r in requests]
        bounds = _bounds(sizes)
        tokens = torch.cat([r.tokens[:, -1:] for r in requests])  # [B, 1], a few ints
        positions = torch.cat([c.seqlens for c in caches]).long()[:, None]  # [B, 1]
        emb, emb_scale = decoder.token_embedding, getattr(decoder.token_embedding, "weight_scale", None)
        x = emb(tokens).to(decoder.positional_embedding.dtype)
        if emb_scale is not None:  # int8 rows
            x = x * emb_scale[tokens].unsqueeze(-1).to(x.dtype)
        x = x + decoder.positional_embedding[positions]
        x = x.to(caches[0].self_k.dtype)  # [B, 1, n_state]
        for layer, block in enumerate(decoder.blocks):
            q, k, v = block.attn.qkv(block.attn_ln(x))  # each [B, 1, H, D]
            a = torch.empty_like(q)
            scale = q.shape[-1] ** -0.5
            for (lo, hi), c in zip(bounds, caches):
                a[lo:hi] = ops.kv_attention(q[lo:hi], c.self_k[layer], c.self_v[layer], k[lo:hi], v[lo:hi],
                                            c.seqlens, scale)
            x = x + block.attn.out(a.flatten(2))
            cross = block.cross_attn
            q = cross.split_heads(cross.query(block.cross_attn_ln(x)))
            a = torch.empty_like(x)
            for (lo, hi), c in zip(bounds, caches):
                a[lo:hi] = cross.attend(q[lo:hi], c.cross_k[layer], c.cross_v[layer], c.rows_per_audio)
            x = x + cross.out(a)
            x = x + block.mlp(block.mlp_ln(x))
        for c in caches:
            c.seqlens += 1
        logits = ops.linear(decoder.ln(x), emb.weight, None, emb_scale).float()[:, -1]  # [B, n_vocab]
        return [logits[lo:hi] for lo, hi in bounds]


def _bounds(sizes: Sequence[int]) -> List[Tuple[int, int]]:
    """[(start, end)] of consecutive blocks of the given sizes."""
    out, lo = [], 0
    for n in sizes:
        out.append((lo, lo + n))
        lo += n
    return out


def _chunks(sizes: Sequence[int], max_rows: int) -> List[Tuple[int, int]]:
    """Consecutive runs of items (by index) of at most ``max_rows`` rows in all; an item larger
    than that is a run of its own."""
    runs, lo, rows = [], 0, 0
    for i, n in enumerate(sizes):
        if i > lo and rows + n > max_rows:
            runs.append((lo, i))
            lo, rows = i, 0
        rows += n
    if lo < len(sizes):
        runs.append((lo, len(sizes)))
    return runs


class WindowEncoder:
    """The encoder's side: windows encoded while the decoder steps, not between its steps.

    On a CPU a batched decoder step runs on one thread and is bound by memory (each stream's
    cross-attention K/V: docs/benchmarks.md, "Batched transcription"), while the encoder is
    bound by arithmetic: in turns, the other cores idle through every decoder step. So windows
    wait in a queue served by worker threads (one per core but the decoder's, at most one per
    stream), each encoding one window at a time on one CPU thread, while the decoder's thread
    is busy; when it has nothing to step (``idle``) it encodes waiting windows itself
    (``help``) with the cores the workers leave free. One window a thread is the cheapest way
    to encode many on a CPU (base here: 0.72 s on one thread, 0.45 s on two, i.e. 0.9
    core-seconds), several threads the fastest way to encode one. No more threads run than
    there are cores. The thread count changes no bit of the encoder's output (tested: every
    window's transcript equals the one it gets alone). With one stream, or on a GPU,
    ``submit`` encodes in the caller's thread (on a GPU the windows of a round batched,
    ``batch`` at a time).
    """

    def __init__(self, model: Whisper, streams: int, batch: int = 4):
        self.model = model
        self.batch = max(1, batch)
        self.cores = max(1, torch.get_num_threads())
        n = min(self.cores - 1, streams) if model.device.type == "cpu" and streams > 1 else 0
        self._queue: Deque[Tuple[Tensor, Future, Optional[Callable[[Tensor], None]]]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = 0  # workers encoding
        self._main = 1  # cores the caller's thread uses: 1 while it decodes, its encode's threads while idle
        self._decoding = True  # the caller's thread is decoding (not inside idle())
        self._threads = [threading.Thread(target=self._work, name=f"wm-encoder-{i}", daemon=True) for i in range(n)]
        for t in self._threads:
            t.start()

    def submit(self, mels: Sequence[Tensor], then: Optional[Sequence[Callable[[Tensor], None]]] = None) -> List[Future]:
        """Futures of the audio features [1, n_audio_ctx, n_audio_state] of each mel [1, n_mels, 3000].

        ``then``: a callable per mel, called with its features by the thread that encoded them
        before its future is done (the scheduler computes the window's cross-attention K/V
        there: arithmetic like the encoder's, off the decoder's thread)."""
        if self._closed:
            raise ValueError("the encoder is closed")
        out: List[Future] = [Future() for _ in mels]
        after = list(then) if then is not None else [None] * len(mels)
        if self._threads:
            with self._cond:
                self._queue.extend(zip(mels, out, after))
                self._cond.notify_all()
            return out
        with torch.no_grad():
            for lo in range(0, len(mels), self.batch):
                features = self.model.embed_audio(torch.cat(list(mels[lo:lo + self.batch])))
                for j in range(features.shape[0]):
                    one = features[j:j + 1]  # one object: the K/V made of it are known by it (SlotPool.cache)
                    if after[lo + j] is not None:
                        after[lo + j](one)
                    out[lo + j].set_result(one)
        return out

    @contextmanager
    def idle(self):
        """The caller's thread has nothing to decode while inside: it uses no core but ``help``'s."""
        with self._cond:
            self._main, self._decoding = 0, False
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._main, self._decoding = 1, True
                self._cond.notify_all()

    def help(self) -> bool:
        """Encode one waiting window in the calling thread (inside ``idle``), on the cores the
        workers leave free; False when none waits."""
        with self._cond:
            if not self._queue:
                return False
            job = self._queue.popleft()
            # the windows left beyond one go to free workers, one core each; this one takes the rest
            others = min(max(0, len(self._queue) - 1), len(self._threads) - self._busy)
            self._main = max(1, self.cores - self._busy - others)
            threads = self._main
            self._cond.notify_all()
        try:
            with decode_threads(self.model.device, threads):
                self._encode(*job)
        finally:
            with self._cond:
                self._main = 0
                self._cond.notify_all()
        return True

    def _work(self) -> None:
        torch.set_num_threads(1)  # this thread's own OpenMP/MKL count: the caller's keeps its own
        while True:
            with self._cond:
                # a window is taken while the caller decodes; while it is idle, only beside one it
                # can take itself with every core (one window alone is fastest on all the cores)
                while not self._closed and not (self._queue and self._busy + self._main < self.cores
                                                and (self._decoding or len(self._queue) > 1)):
                    self._cond.wait()
                if self._closed:
                    return
                job = self._queue.popleft()
                self._busy += 1
            try:
                self._encode(*job)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _encode(self, mel: Tensor, future: Future, then: Optional[Callable[[Tensor], None]]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            with torch.no_grad():
                features = self.model.embed_audio(mel)
                if then is not None:
                    then(features)
            future.set_result(features)
        except BaseException as e:  # handed to the caller with the result
            future.set_exception(e)

    def close(self) -> None:
        """Stop the threads; windows not started are dropped (their futures cancelled)."""
        with self._cond:
            self._closed = True
            for _, future, _ in self._queue:
                future.cancel()
            self._queue.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join()
