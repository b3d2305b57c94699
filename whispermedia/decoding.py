"""Decoding one 30-second window: prompt, logit filters, token choice, ranking.

The search is built from small roles, each behind a narrow interface, so a new behaviour is a
new class rather than a branch in the loop (openai-whisper's design, whose results we match):

- ``Inference.logits(tokens, first)``: next-token logits from the model, over a cache it owns
  (``CachedInference``: the decoder's ``KVCache``, so no step recomputes the past)
- ``LogitFilter.apply(logits, tokens)``: masks logits in place (blank, suppressed, timestamp rules)
- ``TokenDecoder.update(tokens, logits, sum_logprobs)``: picks the next tokens (greedy, sampling,
  beam search)
- ``SequenceRanker.rank(tokens, sum_logprobs)``: picks the winner of each group
"""

from __future__ import annotations

import zlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Final, Generator, List, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .model import KVCache, Whisper
from .options import DecodingOptions
from .tokenizer import TIME_PRECISION, Tokenizer
from .types import LanguageGuess


@dataclass(frozen=True)
class DecodingResult:
    """The chosen sequence for one window."""

    tokens: Tuple[int, ...]  # sampled tokens, between the prompt and <|endoftext|>
    text: str
    language: str
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    compression_ratio: float
    language_probs: Optional[dict] = field(default=None, compare=False, repr=False)


def compression_ratio(text: str) -> float:
    """How much zlib shrinks the text: repetitive (hallucinated) text compresses well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


# The default CPU thread count for the one-token decode steps (``CachedInference(decode_threads=)``;
# None: torch's setting). Such a step is a chain of small memory-bound ops, so a second thread adds
# little (8% on one step measured alone), while on a machine with other work running OpenMP's
# spinning workers make every step several times slower (3 to 7 times measured on 2 cores:
# docs/benchmarks.md). The encoder and the prompt step keep torch's thread count.
DECODE_THREADS: Final[Optional[int]] = 1


@contextmanager
def decode_threads(device: torch.device, limit: Optional[int] = DECODE_THREADS):
    """Run the enclosed steps with at most ``limit`` CPU threads (None: no limit; not on other devices)."""
    saved = torch.get_num_threads()
    if limit is None or device.type != "cpu" or saved <= limit:
        yield
        return
    torch.set_num_threads(limit)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


# -- language detection -------------------------------------------------------------------

@torch.no_grad()
def detect_language(model: Whisper, mel: Optional[Tensor] = None, tokenizer: Optional[Tokenizer] = None, *,
                    audio_features: Optional[Tensor] = None) -> List[LanguageGuess]:
    """The language of each window from the logits after ``<|startoftranscript|>``.

    mel: [n_mels, 3000] or [B, n_mels, 3000]; or ``audio_features`` [B, n_audio_ctx, n_audio_state],
    the encoder's output for the windows, which saves a second encoder pass. A ``mel`` shaped like
    audio features is taken as such (openai-whisper's convention, kept for positional callers).
    """
    if (mel is None) == (audio_features is None):
        raise ValueError("detect_language takes either a mel or audio_features")
    tokenizer = tokenizer or model.tokenizer
    if audio_features is None:
        mel = mel[None] if mel.ndim == 2 else mel
        if mel.shape[-2:] == (model.dims.n_audio_ctx, model.dims.n_audio_state):
            audio_features, mel = mel, None
    elif audio_features.ndim == 2:
        audio_features = audio_features[None]
    n_windows = (mel if audio_features is None else audio_features).shape[0]
    if not model.is_multilingual:
        return [LanguageGuess("en", 1.0, {"en": 1.0})] * n_windows
    features = audio_features if audio_features is not None else model.embed_audio(mel)
    cache = model.decoder.new_cache(features)
    sot = torch.full((features.shape[0], 1), tokenizer.sot, device=features.device)
    logits = model.decoder(sot, cache)[:, 0]
    language_tokens = torch.tensor(tokenizer.all_language_tokens, device=logits.device)
    probs = logits[:, language_tokens].softmax(dim=-1).cpu()
    codes = tokenizer.all_language_codes
    guesses = []
    for row in probs:
        table = {code: float(p) for code, p in zip(codes, row)}
        best = int(row.argmax())
        guesses.append(LanguageGuess(codes[best], float(row[best]), table))
    return guesses


# -- inference ----------------------------------------------------------------------------

class Inference:
    """The model side of the search: next-token logits for every row, from state it owns.

    The loop sees only this, so a batched or CUDA-graph implementation can replace
    ``CachedInference`` without touching the search. One decode is ``start``, then ``logits``
    once a step (``reorder`` between steps when beam search moves rows), then ``release``; the
    same object may serve many decodes, one at a time.
    """

    def start(self, audio_features: Tensor, rows_per_audio: int, sot_index: int) -> None:
        """Set up for ``audio_features`` [n_audio, n_audio_ctx, n_audio_state], each window decoded
        by ``rows_per_audio`` consecutive rows (beams or samples), so n_rows = n_audio * rows_per_audio.
        ``sot_index``: the prompt position of <|startoftranscript|>, where no-speech is read."""
        raise NotImplementedError

    def logits(self, tokens: Tensor, first: bool) -> Tensor:
        """tokens [n_rows, n_so_far] (every token so far) -> next-token logits [n_rows, n_vocab],
        float32, which the caller may change in place. ``first``: the prompt step, nothing seen
        yet; otherwise only the last token of each row is new since the previous call."""
        raise NotImplementedError

    def no_speech_probs(self) -> List[float]:
        """P(<|nospeech|>) at <|startoftranscript|> for each of the n_rows, from the prompt step."""
        raise NotImplementedError

    def reorder(self, rows: Tensor) -> None:
        """Row i continues from row ``rows[i]`` (int64 [n_rows]): beam search kept those sources."""
        raise NotImplementedError

    def release(self) -> None:
        """End the decode: free what ``start`` set up. Safe to call again."""


class CachedInference(Inference):
    """The text decoder over its ``KVCache``: the prompt step feeds the whole prompt, each later
    step one token per row, so no step recomputes the past.

    The prompt step projects only <|startoftranscript|> (for no-speech) and the last position
    onto the vocabulary. The one-token steps run with at most ``decode_threads`` CPU threads (why:
    ``DECODE_THREADS``), held from the first such step until ``release``; the prompt step keeps
    torch's setting.
    """

    def __init__(self, model: Whisper, no_speech: int, decode_threads: Optional[int] = DECODE_THREADS):
        self.model = model
        self.no_speech = no_speech  # the <|nospeech|> token id
        self.decode_threads = decode_threads
        self.cache: Optional[KVCache] = None
        self._sot_index = 0
        self._no_speech_probs: List[float] = []
        self._thread_limit = ExitStack()
        self._thread_limited = False

    def start(self, audio_features: Tensor, rows_per_audio: int, sot_index: int) -> None:
        self.release()
        self.cache = self.new_cache(audio_features, rows_per_audio)
        self._sot_index = sot_index
        self._no_speech_probs = [float("nan")] * (audio_features.shape[0] * rows_per_audio)

    def new_cache(self, audio_features: Tensor, rows_per_audio: int) -> KVCache:
        """The cache of one decode (here a fresh one; ``scheduler.SlotInference``: a pool's slot)."""
        return self.model.decoder.new_cache(audio_features, rows_per_audio=rows_per_audio)

    def logits(self, tokens: Tensor, first: bool) -> Tensor:
        if self.cache is None:
            raise ValueError("CachedInference.logits() before start()")
        if first:
            # wasted work to project the rest of the prompt onto the vocabulary
            logits = self.model.decoder(tokens, self.cache, logits_at=(self._sot_index, -1))
            self._no_speech_probs = logits[:, 0].float().softmax(dim=-1)[:, self.no_speech].tolist()
            return logits[:, -1]
        if not self._thread_limited:
            self._thread_limit.enter_context(decode_threads(tokens.device, self.decode_threads))
            self._thread_limited = True
        return self.model.decoder(tokens[:, -1:], self.cache)[:, -1]

    def no_speech_probs(self) -> List[float]:
        return self._no_speech_probs

    def reorder(self, rows: Tensor) -> None:
        self.cache.reorder(rows)

    def release(self) -> None:
        self.cache = None
        self._thread_limited = False
        self._thread_limit.close()


@dataclass(frozen=True)
class LogitsRequest:
    """One step of a decode asking for next-token logits: ``inference.logits(tokens, first)``,
    which whoever drives the decode (``serve``, or a batching scheduler) computes and sends back."""

    inference: Inference
    tokens: Tensor  # [n_rows, n_so_far], every token so far
    first: bool  # the prompt step (only the last token of each row is new otherwise)

    def serve(self) -> Tensor:
        """The logits [n_rows, n_vocab] computed alone (batch of one decode)."""
        return self.inference.logits(self.tokens, self.first)


@dataclass(frozen=True)
class EncodeRequest:
    """A step-wise transcription asking for one window's audio features:
    ``model.embed_audio(mel)``, mel [1, n_mels, 3000] -> [1, n_audio_ctx, n_audio_state]."""

    model: Whisper
    mel: Tensor

    def serve(self) -> Tensor:
        return self.model.embed_audio(self.mel)


_Result = TypeVar("_Result")


def serve(steps: Generator[LogitsRequest, Tensor, _Result]) -> _Result:
    """Drive a step-wise decode (``DecodingTask.steps``) alone: each request served by its own
    inference. What the generator returns is returned."""
    try:
        request = next(steps)
        while True:
            request = steps.send(request.serve())
    except StopIteration as done:
        return done.value


# -- logit filters ------------------------------------------------------------------------

class LogitFilter:
    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        """Mask ``logits`` [n_rows, n_vocab] in place, given ``tokens`` [n_rows, n_so_far]."""
        raise NotImplementedError


class SuppressBlank(LogitFilter):
    """No window starts with a bare space or with <|endoftext|>."""

    def __init__(self, tokenizer: Tokenizer, sample_begin: int):
        self.blank = tokenizer.encode(" ") + [tokenizer.eot]
        self.sample_begin = sample_begin

    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        if tokens.shape[1] == self.sample_begin:
            logits[:, self.blank] = -np.inf


class SuppressTokens(LogitFilter):
    def __init__(self, suppress: Sequence[int]):
        self.suppress = list(suppress)

    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        logits[:, self.suppress] = -np.inf


class ApplyTimestampRules(LogitFilter):
    """Timestamps come in non-decreasing pairs around text, the first within
    ``max_initial_timestamp``, and win outright when their total probability beats any text token."""

    def __init__(self, tokenizer: Tokenizer, sample_begin: int, max_initial_timestamp_index: Optional[int]):
        self.tokenizer = tokenizer
        self.sample_begin = sample_begin
        self.max_initial_timestamp_index = max_initial_timestamp_index

    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        tok = self.tokenizer
        ts_begin = tok.timestamp_begin
        logits[:, tok.no_timestamps] = -np.inf  # without_timestamps is a prompt choice, not a sample

        for k in range(tokens.shape[0]):
            sampled = tokens[k, self.sample_begin:]
            seq = sampled.tolist()
            last_was_ts = len(seq) >= 1 and seq[-1] >= ts_begin
            penultimate_was_ts = len(seq) < 2 or seq[-2] >= ts_begin
            if last_was_ts:
                if penultimate_was_ts:  # a pair just closed: text must follow
                    logits[k, ts_begin:] = -np.inf
                else:  # an opening timestamp needs its closing one (or the end)
                    logits[k, : tok.eot] = -np.inf
            stamps = [t for t in seq if t >= ts_begin]
            if stamps:
                # never go back in time, and give every segment a non-zero length
                last = stamps[-1] if (last_was_ts and not penultimate_was_ts) else stamps[-1] + 1
                logits[k, ts_begin:last] = -np.inf

        if tokens.shape[1] == self.sample_begin:
            logits[:, :ts_begin] = -np.inf  # a window opens with a timestamp
            if self.max_initial_timestamp_index is not None:
                logits[:, ts_begin + self.max_initial_timestamp_index + 1:] = -np.inf

        logprobs = F.log_softmax(logits.float(), dim=-1)
        timestamp_logprob = logprobs[:, ts_begin:].logsumexp(dim=-1)
        max_text_logprob = logprobs[:, :ts_begin].max(dim=-1).values
        logits[timestamp_logprob > max_text_logprob, :ts_begin] = -np.inf


# -- token decoders -----------------------------------------------------------------------

# Per audio, its candidate sequences (token tensors [n], each ending in <|endoftext|>) and their
# summed log probabilities, in the same order.
Candidates = Tuple[List[List[Tensor]], List[List[float]]]


class TokenDecoder:
    def reset(self, reorder: Optional[Callable[[Tensor], None]] = None) -> None:
        """Forget state between windows; ``reorder(source_rows)`` moves cache rows (beam search)."""

    def update(self, tokens: Tensor, logits: Tensor, sum_logprobs: Tensor) -> Tuple[Tensor, bool]:
        """Append one token per row: tokens [n_rows, n] -> [n_rows, n + 1]; also returns
        whether every row has ended. ``sum_logprobs`` [n_rows] is updated in place."""
        raise NotImplementedError

    def finalize(self, tokens: Tensor, sum_logprobs: Tensor) -> Candidates:
        """tokens [n_audio, n_group, n] and sum_logprobs [n_audio, n_group] -> the candidates."""
        raise NotImplementedError


class GreedyDecoder(TokenDecoder):
    """argmax at temperature 0; otherwise a sample from softmax(logits / temperature)."""

    def __init__(self, temperature: float, eot: int, generator: Optional[torch.Generator] = None):
        self.temperature = temperature
        self.eot = eot
        self.generator = generator

    def update(self, tokens: Tensor, logits: Tensor, sum_logprobs: Tensor) -> Tuple[Tensor, bool]:
        if self.temperature == 0:
            next_tokens = logits.argmax(dim=-1)
        else:
            probs = F.softmax(logits.float() / self.temperature, dim=-1)
            next_tokens = torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)
        logprobs = F.log_softmax(logits.float(), dim=-1)
        current = logprobs[torch.arange(logprobs.shape[0]), next_tokens]
        ended = tokens[:, -1] == self.eot
        sum_logprobs += current * ~ended
        next_tokens[ended] = self.eot
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=-1)
        return tokens, bool((tokens[:, -1] == self.eot).all())

    def finalize(self, tokens: Tensor, sum_logprobs: Tensor) -> Candidates:
        """Every row is a candidate (the ended ones already padded with <|endoftext|>)."""
        padded = F.pad(tokens, (0, 1), value=self.eot)
        return [list(group) for group in padded], sum_logprobs.tolist()


class BeamSearchDecoder(TokenDecoder):
    """Keeps ``beam_size`` live sequences per audio; a window ends once ``beam_size * patience``
    sequences have finished (openai-whisper's beam search, patience as in arXiv:2204.05424)."""

    def __init__(self, beam_size: int, eot: int, patience: Optional[float] = None):
        self.beam_size = beam_size
        self.eot = eot
        self.patience = patience or 1.0
        self.max_candidates = round(beam_size * self.patience)
        if self.max_candidates <= 0:
            raise ValueError(f"invalid beam size ({beam_size}) or patience ({patience})")
        self.finished: Optional[List[Dict[Tuple[int, ...], float]]] = None
        self._reorder: Optional[Callable[[Tensor], None]] = None

    def reset(self, reorder: Optional[Callable[[Tensor], None]] = None) -> None:
        self.finished = None
        self._reorder = reorder

    def update(self, tokens: Tensor, logits: Tensor, sum_logprobs: Tensor) -> Tuple[Tensor, bool]:
        n_audio = tokens.shape[0] // self.beam_size
        if self.finished is None:
            self.finished = [{} for _ in range(n_audio)]
        logprobs = F.log_softmax(logits.float(), dim=-1)
        # the beam_size + 1 best continuations of every beam: enough to refill the beams even
        # when one of them ends here
        top_logprobs, top_tokens = logprobs.topk(self.beam_size + 1)
        top_logprobs, top_tokens = top_logprobs.tolist(), top_tokens.tolist()
        base_logprobs = sum_logprobs.tolist()
        next_tokens: List[List[int]] = []
        sources: List[int] = []
        for i in range(n_audio):
            scores: Dict[Tuple[int, ...], float] = {}
            origin: Dict[Tuple[int, ...], int] = {}
            for row in range(i * self.beam_size, (i + 1) * self.beam_size):
                prefix = tokens[row].tolist()
                for lp, token in zip(top_logprobs[row], top_tokens[row]):
                    sequence = tuple(prefix + [token])
                    scores[sequence] = base_logprobs[row] + lp
                    origin[sequence] = row
            kept = 0
            newly_finished: Dict[Tuple[int, ...], float] = {}
            for sequence in sorted(scores, key=scores.get, reverse=True):
                if sequence[-1] == self.eot:
                    newly_finished[sequence] = scores[sequence]
                    continue
                sum_logprobs[len(next_tokens)] = scores[sequence]
                next_tokens.append(list(sequence))
                sources.append(origin[sequence])
                kept += 1
                if kept == self.beam_size:
                    break
            done = self.finished[i]
            for sequence in sorted(newly_finished, key=newly_finished.get, reverse=True):
                if len(done) >= self.max_candidates:
                    break
                done[sequence] = newly_finished[sequence]
        if sources != list(range(len(sources))) and self._reorder is not None:
            self._reorder(torch.tensor(sources, device=tokens.device))
        tokens = torch.tensor(next_tokens, device=tokens.device)
        completed = all(len(done) >= self.max_candidates for done in self.finished)
        return tokens, completed

    def finalize(self, tokens: Tensor, sum_logprobs: Tensor) -> Candidates:
        """Finished sequences per audio, topped up with the best live ones when too few ended."""
        sum_logprobs = sum_logprobs.cpu()
        for i, done in enumerate(self.finished):
            if len(done) < self.beam_size:
                for j in reversed(np.argsort(sum_logprobs[i].numpy(), kind="stable").tolist()):
                    done[tuple(tokens[i, j].tolist() + [self.eot])] = float(sum_logprobs[i][j])
                    if len(done) >= self.beam_size:
                        break
        candidates = [[torch.tensor(seq) for seq in done] for done in self.finished]
        logprobs = [list(done.values()) for done in self.finished]
        return candidates, logprobs


# -- ranking ------------------------------------------------------------------------------

class SequenceRanker:
    def rank(self, tokens: List[List[Tensor]], sum_logprobs: Sequence[Sequence[float]]) -> List[int]:
        """Index of the best candidate in each group."""
        raise NotImplementedError


class MaximumLikelihoodRanker(SequenceRanker):
    """Highest log probability, divided by a length penalty: the length itself when
    ``length_penalty`` is None, else Google NMT's ((5 + length) / 6) ** alpha."""

    def __init__(self, length_penalty: Optional[float]):
        self.length_penalty = length_penalty

    def rank(self, tokens: List[List[Tensor]], sum_logprobs: Sequence[Sequence[float]]) -> List[int]:
        def score(logprobs: Sequence[float], lengths: Sequence[int]) -> List[float]:
            out = []
            for lp, n in zip(logprobs, lengths):
                penalty = n if self.length_penalty is None else ((5 + n) / 6) ** self.length_penalty
                out.append(lp / penalty)
            return out

        lengths = [[len(t) for t in group] for group in tokens]
        return [int(np.argmax(score(lp, n))) for lp, n in zip(sum_logprobs, lengths)]


# -- the task -----------------------------------------------------------------------------

def _check_token_ids(option: str, ids: Sequence[int], n_vocab: int) -> None:
    """``OptionError`` naming ``option`` for a token id the model's vocabulary does not have
    (the options cannot know the vocabulary; the task that decodes does)."""
    from .options import OptionError

    bad = next((t for t in ids if not 0 <= t < n_vocab), None)
    if bad is not None:
        raise OptionError(option, f"{{{option}}}: token id {bad} is not in the model's vocabulary "
                                  f"(0 to {n_vocab - 1})")


class DecodingTask:
    """Decodes a batch of windows with one set of options."""

    def __init__(self, model: Whisper, options: DecodingOptions, tokenizer: Optional[Tokenizer] = None,
                 generator: Optional[torch.Generator] = None, inference: Optional[Inference] = None):
        """``inference``: the model side of the search (default: a ``CachedInference`` with its
        default thread limit); pass one to replace it or to share it between tasks."""
        self.model = model
        self.options = options
        base = tokenizer or model.tokenizer
        self.tokenizer = base.with_language_and_task(options.language or "en", options.task)
        self.n_ctx = model.dims.n_text_ctx
        self.sample_len = options.sample_len or self.n_ctx // 2
        self.inference = inference or CachedInference(model, self.tokenizer.no_speech)
        # n_group rows per window: the beams at temperature 0, else best_of samples when sampling
        if options.beam_size is not None and options.temperature == 0:
            self.n_group = options.beam_size
            self.decoder: TokenDecoder = BeamSearchDecoder(options.beam_size, self.tokenizer.eot, options.patience)
        else:
            self.n_group = options.best_of if options.best_of is not None and options.temperature > 0 else 1
            self.decoder = GreedyDecoder(options.temperature, self.tokenizer.eot, generator)

        self.sot_sequence = (self.tokenizer.sot_sequence_including_notimestamps if options.without_timestamps
                             else self.tokenizer.sot_sequence)
        self.initial_tokens = self._initial_tokens()
        self.sample_begin = len(self.initial_tokens)
        self.sot_index = self.initial_tokens.index(self.tokenizer.sot)

        self.ranker = MaximumLikelihoodRanker(options.length_penalty)
        self.logit_filters: List[LogitFilter] = []
        if options.suppress_blank:
            self.logit_filters.append(SuppressBlank(self.tokenizer, self.sample_begin))
        if options.suppress_tokens:
            self.logit_filters.append(SuppressTokens(self._suppress_tokens()))
        if not options.without_timestamps:
            max_initial = None
            if options.max_initial_timestamp:
                max_initial = round(options.max_initial_timestamp / TIME_PRECISION)
            self.logit_filters.append(ApplyTimestampRules(self.tokenizer, self.sample_begin, max_initial))

    def _initial_tokens(self) -> Tuple[int, ...]:
        tokens = list(self.sot_sequence)
        for name in ("prefix", "prompt"):  # token ids given as such must be the model's
            given = getattr(self.options, name)
            if given is not None and not isinstance(given, str):
                _check_token_ids(name, given, self.model.dims.n_vocab)
        prefix = self.options.prefix
        if prefix:
            prefix_tokens = (self.tokenizer.encode(" " + prefix.strip()) if isinstance(prefix, str) else list(prefix))
            if self.options.sample_len is not None:
                prefix_tokens = prefix_tokens[-(self.n_ctx // 2 - self.options.sample_len):]
            # with the longest prompt (half the context) beside it, one token must be left to decode:
            # a longer prefix would index past the positional embedding
            room = self.n_ctx // 2 - len(self.sot_sequence) - 1
            if len(prefix_tokens) > room:
                from .options import OptionError

                raise OptionError("prefix", f"{{prefix}}: {len(prefix_tokens)} tokens do not fit a window's "
                                            f"text context (at most {room})")
            tokens += prefix_tokens
        prompt = self.options.prompt
        if prompt:
            prompt_tokens = (self.tokenizer.encode(" " + prompt.strip()) if isinstance(prompt, str) else list(prompt))
            # the prompt gets at most half the context, the most recent part
            tokens = [self.tokenizer.sot_prev] + prompt_tokens[-(self.n_ctx // 2 - 1):] + tokens
        return tuple(tokens)

    def _suppress_tokens(self) -> Tuple[int, ...]:
        spec = self.options.suppress_tokens
        if isinstance(spec, str):
            spec = [int(t) for t in spec.split(",") if t.strip()]
        suppress = [t for t in spec if t >= 0]
        if -1 in spec:
            # the model's own list when it ships one (CTranslate2's config.json), else computed
            model_list = self.model.suppress_tokens
            suppress += list(model_list) if model_list else list(self.tokenizer.non_speech_tokens)
        tok = self.tokenizer
        # the task and control tokens are never sampled; no-speech is read off the first step instead
        suppress += [tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech]
        _check_token_ids("suppress_tokens", suppress, self.model.dims.n_vocab)
        return tuple(sorted(set(suppress)))

    @torch.no_grad()
    def run(self, mel: Tensor, audio_features: Optional[Tensor] = None) -> List[DecodingResult]:
        """mel [n_audio, n_mels, 3000] (or precomputed ``audio_features``) -> one result per window."""
        features = audio_features if audio_features is not None else self.model.embed_audio(mel)
        return serve(self.steps(features))

    def steps(self, features: Tensor) -> Generator[LogitsRequest, Tensor, List[DecodingResult]]:
        """The decode of ``features`` [n_audio, n_audio_ctx, n_audio_state] one step at a time:
        yields a ``LogitsRequest`` per step and is sent its logits; returns one result per window.

        ``run`` serves the requests itself (``serve``); a scheduler (``whispermedia.scheduler``)
        gathers the one-token requests of many decodes into one batched forward instead. Every
        other model call (start, reorder, release) goes straight to ``self.inference``. The driver
        runs it under ``torch.no_grad()`` (a generator runs in its driver's grad mode).
        """
        tok = self.tokenizer
        n_audio = features.shape[0]

        language_probs: List[Optional[dict]] = [None] * n_audio
        languages = [self.options.language] * n_audio
        tokens = torch.tensor([self.initial_tokens], device=features.device).repeat(n_audio, 1)
        if self.options.language is None:
            guesses = detect_language(self.model, tokenizer=tok, audio_features=features)
            languages = [g.language for g in guesses]
            language_probs = [dict(g.probabilities) for g in guesses]
            tokens[:, self.sot_index + 1] = torch.tensor([tok.language_token(g.language) for g in guesses])

        tokens = tokens.repeat_interleave(self.n_group, dim=0)
        self.inference.start(features, self.n_group, self.sot_index)
        try:
            self.decoder.reset(reorder=self.inference.reorder)
            tokens, sum_logprobs = yield from self._main_loop(tokens)
            no_speech_probs = self.inference.no_speech_probs()[:: self.n_group]
        finally:
            self.inference.release()

        tokens = tokens.reshape(n_audio, self.n_group, -1)
        sum_logprobs = sum_logprobs.reshape(n_audio, self.n_group)
        sequences, sum_logprobs = self.decoder.finalize(tokens, sum_logprobs)
        candidates = [[row[self.sample_begin:(row == tok.eot).nonzero()[0, 0]] for row in group] for group in sequences]
        chosen = self.ranker.rank(candidates, sum_logprobs)

        results = []
        for a in range(n_audio):
            seq = tuple(candidates[a][chosen[a]].tolist())
            text = tok.decode(seq).strip()
            logprob = sum_logprobs[a][chosen[a]]
            results.append(DecodingResult(
                tokens=seq,
                text=text,
                language=languages[a] or "en",
                avg_logprob=logprob / (len(seq) + 1),
                no_speech_prob=no_speech_probs[a],
                temperature=self.options.temperature,
                compression_ratio=compression_ratio(text),
                language_probs=language_probs[a],
            ))
        return results

    def _main_loop(self, tokens: Tensor) -> Generator[LogitsRequest, Tensor, Tuple[Tensor, Tensor]]:
        """tokens [n_rows, n_prompt] -> (tokens [n_rows, n], sum_logprobs [n_rows]): one token a
        row each step, until every row has ended, ``sample_len`` steps, or the context is full."""
        sum_logprobs = torch.zeros(tokens.shape[0], device=tokens.device)
        for i in range(self.sample_len):
            logits = yield LogitsRequest(self.inference, tokens, first=i == 0)
            for logit_filter in self.logit_filters:
                logit_filter.apply(logits, tokens)
            tokens, completed = self.decoder.update(tokens, logits, sum_logprobs)
            if completed or tokens.shape[-1] > self.n_ctx:
                break
        return tokens, sum_logprobs


def decode(model: Whisper, mel: Tensor, options: DecodingOptions = DecodingOptions(),
           **overrides) -> Union[DecodingResult, List[DecodingResult]]:
    """Decode one window (mel [n_mels, 3000]) or a batch ([B, n_mels, 3000]): one result, or a list."""
    if overrides:
        options = replace(options, **overrides)
    single = mel.ndim == 2
    results = DecodingTask(model, options).run(mel[None] if single else mel)
    return results[0] if single else results
