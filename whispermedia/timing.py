"""Word timestamps: align each decoded text token to the audio, then time whole words.

The alignment re-runs the decoder once over the window's text (with ``<|notimestamps|>``),
collecting the cross-attention logits of the model's alignment heads. Those weights say which
audio frame each token attends to; dynamic time warping (DTW) turns them into a monotonic
token-to-frame path, and the frames where the path enters a new token give each word's
start and end (20 ms per audio frame).

Every rule here follows openai-whisper's word timing step for step (including its rounding and
its clamping of over-long words), so that with the same weights and tokens the words and the
adjusted segment bounds are the same. ``dtw`` is the one place written differently: it sweeps
anti-diagonals with numpy instead of a compiled double loop, with the same recurrence, the same
tie-breaking, the same float32 cost table and the same backtrace.

Functions, in the order the long-form loop uses them:

- ``add_word_timestamps``: a window's segments -> the same segments with ``words`` set and
  their start/end moved to follow the words.
- ``apply_word_timestamps``: ``add_word_timestamps`` plus what the loop does with the words:
  the next seek after an unfinished window, and ``hallucination_silence_threshold``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .constants import (APPEND_PUNCTUATIONS, FRAMES_PER_SECOND, HOP_LENGTH, N_FRAMES, PREPEND_PUNCTUATIONS,
                        SAMPLE_RATE, TOKENS_PER_SECOND)
from .types import Segment, Word

# words that do not count when judging whether a segment is a hallucination (openai's set; the
# test is ``word in PUNCTUATION``, a substring test, as openai's is)
PUNCTUATION = PREPEND_PUNCTUATIONS + APPEND_PUNCTUATIONS
SENTENCE_END_MARKS = ".。!！?？"


@dataclass(frozen=True)
class WordTiming:
    """One word of the alignment, before it is placed in a segment.

    start/end are seconds from the window's start; ``tokens`` are the word's text tokens.
    """

    word: str
    tokens: Tuple[int, ...]
    start: float
    end: float
    probability: float


# -- median filter ---------------------------------------------------------------------------
def median_filter(x: Tensor, width: int) -> Tensor:
    """Running median of ``width`` (odd) values along the last dimension, reflect-padded at
    both ends so the output has the input's shape.

    A last dimension no longer than ``width // 2`` cannot be reflect-padded; it is returned
    unchanged (openai-whisper does the same).
    """
    if width <= 0 or width % 2 == 0:
        raise ValueError(f"median filter width must be a positive odd number, got {width}")
    half = width // 2
    n = x.shape[-1]
    if n <= half:
        return x
    # reflect without repeating the edge: -2 -1 | 0 1 ... n-1 | n-2 n-3
    index = torch.arange(-half, n + half, device=x.device).abs()
    index = torch.where(index > n - 1, 2 * (n - 1) - index, index)
    windows = x.index_select(-1, index).unfold(-1, width, 1)  # [..., n, width]
    return windows.kthvalue(half + 1, dim=-1).values


# -- dynamic time warping --------------------------------------------------------------------
def dtw(cost: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The cheapest monotonic path through ``cost`` [N, M] from (0, 0) to (N-1, M-1).

    Returns (text_indices, time_indices), int64 arrays of equal length: the path's cells in
    order. Steps are diagonal (i-1, j-1), vertical (i-1, j) or horizontal (i, j-1). A cell
    takes the diagonal only when it is strictly cheaper than both others, else the vertical
    when that is strictly cheaper than both others, else the horizontal; the accumulated cost
    is kept in float32 (the values are added in float64 and rounded on store), so ties fall
    exactly as in openai-whisper's ``dtw_cpu``.

    All cells with the same i + j depend only on the two previous anti-diagonals, so each
    anti-diagonal is one vectorised step: N + M steps instead of N * M. (With M == 0 the path
    runs down the first column with time index -1, as the reference's does.)
    """
    x = np.asarray(cost, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"dtw needs a 2-D cost matrix, got shape {x.shape}")
    n, m = x.shape

    # skewed layout: row d of ``acc`` holds the cells (i, d - i) of the accumulated table,
    # i = 0..n; column d of ``skew_x`` holds x at the same cells. Cells off the table
    # (j < 1 or j > m) have x = inf, so their cost stays inf.
    n_diag = n + m + 1
    skew_x = np.full((n + 1, n_diag), np.inf)
    for i in range(1, n + 1):
        skew_x[i, i + 1:i + 1 + m] = x[i - 1]
    acc = np.full((n_diag, n + 1), np.inf, dtype=np.float32)
    acc[0, 0] = 0.0
    took_diag = np.zeros((n_diag, n + 1), dtype=bool)
    took_vert = np.zeros((n_diag, n + 1), dtype=bool)
    lt_a = np.empty(n, dtype=bool)
    lt_b = np.empty(n, dtype=bool)

    for d in range(2, n_diag):
        diagonal = acc[d - 2, :n]  # (i-1, j-1)
        vertical = acc[d - 1, :n]  # (i-1, j)
        horizontal = acc[d - 1, 1:]  # (i, j-1)
        diag, vert = took_diag[d, 1:], took_vert[d, 1:]
        np.less(diagonal, vertical, out=lt_a)
        np.less(diagonal, horizontal, out=lt_b)
        np.logical_and(lt_a, lt_b, out=diag)
        np.less(vertical, diagonal, out=lt_a)
        np.less(vertical, horizontal, out=lt_b)
        np.logical_and(lt_a, lt_b, out=vert)  # never with diag: it needs vertical < diagonal
        best = np.where(diag, diagonal, np.where(vert, vertical, horizontal))
        # added in float64, rounded to float32 on store (as the reference's float32 table)
        np.add(skew_x[1:, d], best, out=acc[d, 1:])

    # backtrace from the far corner; the first row only moves left, the first column only up
    diag_bytes, vert_bytes = took_diag.tobytes(), took_vert.tobytes()
    width = n + 1
    i, j = n, m
    path_i: List[int] = []
    path_j: List[int] = []
    while i > 0 or j > 0:
        path_i.append(i - 1)
        path_j.append(j - 1)
        cell = (i + j) * width + i
        if i > 0 and j > 0 and diag_bytes[cell]:
            i, j = i - 1, j - 1
        elif j == 0 or (i > 0 and vert_bytes[cell]):
            i -= 1
        else:
            j -= 1
    return np.array(path_i[::-1], dtype=np.int64), np.array(path_j[::-1], dtype=np.int64)


# -- alignment -------------------------------------------------------------------------------
def find_alignment(model, tokenizer, text_tokens: Sequence[int], audio_features: Tensor, num_frames: int,
                   medfilt_width: int = 7, qk_scale: float = 1.0) -> List[WordTiming]:
    """Each word of ``text_tokens`` with its start, end (seconds from the window's start) and
    mean token probability.

    audio_features: the window's encoder output [1, n_audio_ctx, n_state].
    num_frames: mel frames of real audio in the window (at most 3000); attention beyond them
        (the zero padding) is ignored.
    """
    text_tokens = [int(t) for t in text_tokens]
    if not text_tokens:
        return []
    prefix = tuple(tokenizer.sot_sequence)
    tokens = [*prefix, tokenizer.no_timestamps, *text_tokens, tokenizer.eot]
    if len(tokens) > model.dims.n_text_ctx:
        raise ValueError(f"{len(text_tokens)} text tokens do not fit the decoder's context")
    heads = sorted(set(model.alignment_heads))  # (layer, head), in layer-major order
    if not heads:
        raise ValueError("the model has no alignment heads; word timestamps need them")

    with torch.no_grad():
        cache = model.decoder.new_cache(audio_features[:1])
        qks: List[Tensor] = []
        logits = model.decoder(torch.tensor([tokens], device=audio_features.device), cache, cross_qk=qks)[0]
        # the position before each text token predicts it; text timestamps are not candidates
        probs = logits[len(prefix):, :tokenizer.eot].float().softmax(dim=-1)
        token_probs = probs[torch.arange(len(text_tokens)), torch.tensor(text_tokens)].tolist()

        weights = torch.stack([qks[layer][0, head] for layer, head in heads])  # [heads, tokens, 1500]
        weights = weights[:, :, : num_frames // 2].float()
        weights = (weights * qk_scale).softmax(dim=-1)
        std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
        weights = median_filter((weights - mean) / std, medfilt_width)
        matrix = weights.mean(dim=0)[len(prefix):-1]  # rows: <|notimestamps|> and the text tokens
        text_indices, time_indices = dtw(-matrix.double().cpu().numpy())

    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens + [tokenizer.eot])
    if len(word_tokens) <= 1:  # only the end-of-text "word"
        return []
    boundaries = np.concatenate([[0], np.cumsum([len(t) for t in word_tokens[:-1]])])
    # the path enters token k (row k) at the first cell of each run of equal text indices
    entered = np.concatenate([[True], np.diff(text_indices) != 0])
    entry_times = time_indices[entered] / TOKENS_PER_SECOND
    starts = entry_times[boundaries[:-1]]
    ends = entry_times[boundaries[1:]]
    return [
        WordTiming(word, tuple(toks), float(starts[k]), float(ends[k]), float(np.mean(token_probs[a:b])))
        for k, (word, toks, a, b) in enumerate(zip(words[:-1], word_tokens[:-1], boundaries[:-1], boundaries[1:]))
    ]


def merge_punctuations(alignment: Sequence[WordTiming], prepended: str, appended: str) -> List[WordTiming]:
    """Glue punctuation to its word: an opening mark (a word of its own with a leading space,
    found in ``prepended``) joins the word after it, a closing mark (found in ``appended``) joins
    the word before it. A merged-away entry stays in place with empty text and no tokens, so the
    list keeps its length; timings are the receiving word's.
    """
    out = list(alignment)
    # right to left, so a run of opening marks gathers onto the word that follows them all
    target = len(out) - 1
    for i in range(len(out) - 2, -1, -1):
        mark, word = out[i], out[target]
        if mark.word.startswith(" ") and mark.word.strip() in prepended:
            out[target] = dataclasses.replace(word, word=mark.word + word.word, tokens=mark.tokens + word.tokens)
            out[i] = dataclasses.replace(mark, word="", tokens=())
        else:
            target = i
    # left to right, so a run of closing marks gathers onto the word before them all
    target = 0
    for j in range(1, len(out)):
        word, mark = out[target], out[j]
        if not word.word.endswith(" ") and mark.word in appended:
            out[target] = dataclasses.replace(word, word=word.word + mark.word, tokens=word.tokens + mark.tokens)
            out[j] = dataclasses.replace(mark, word="", tokens=())
        else:
            target = j
    return out


def _round2(seconds) -> float:
    # openai rounds numpy float64s, whose round() is numpy's (scale, round half even, unscale),
    # not Python's exact decimal rounding; the two can differ in the last place
    return float(np.round(np.float64(seconds), 2))


def add_word_timestamps(segments: Sequence[Segment], model, tokenizer, audio_features: Tensor, num_frames: int,
                        prepend_punctuations: str, append_punctuations: str,
                        last_speech_timestamp: float, medfilt_width: int = 7,
                        qk_scale: float = 1.0) -> Tuple[List[Segment], Optional[float]]:
    """The window's ``segments`` with their words timed, and the new last speech timestamp.

    segments: one window's segments, all with the same ``seek``, before empty ones are cleared.
    audio_features: that window's encoder output [1, n_audio_ctx, n_state].
    num_frames: mel frames of real audio in the window.
    last_speech_timestamp: where speech last ended (seconds; 0.0 at the start of the file).

    Every returned segment has ``words`` set (possibly empty). A segment with words starts at
    its first word and ends at its last, except where a first or last word is more than half a
    second longer than the segment's own bound: then the word is shortened instead. Words over
    twice the median word length (itself at most 0.7 s) are shortened at sentence ends and after
    pauses. The second value is where the last word of these segments ends (the last segment's
    end when none has words, None when there are no segments): pass it as
    ``last_speech_timestamp`` for the next window.
    """
    if not segments:
        return [], None
    text_tokens_per_segment = [[t for t in s.tokens if t < tokenizer.eot] for s in segments]
    all_text = [t for toks in text_tokens_per_segment for t in toks]
    alignment = find_alignment(model, tokenizer, all_text, audio_features, num_frames,
                               medfilt_width=medfilt_width, qk_scale=qk_scale)

    durations = np.array([w.end - w.start for w in alignment])
    durations = durations[durations.nonzero()]
    median_duration = min(0.7, float(np.median(durations))) if len(durations) > 0 else 0.0
    max_duration = median_duration * 2

    # a word at a sentence end (or just after one) soaks up the pause around it: cap it
    if len(durations) > 0:
        for i in range(1, len(alignment)):
            w = alignment[i]
            if w.end - w.start > max_duration:
                if w.word in SENTENCE_END_MARKS:
                    alignment[i] = dataclasses.replace(w, end=w.start + max_duration)
                elif alignment[i - 1].word in SENTENCE_END_MARKS:
                    alignment[i] = dataclasses.replace(w, start=w.end - max_duration)

    alignment = merge_punctuations(alignment, prepend_punctuations, append_punctuations)

    time_offset = segments[0].seek * HOP_LENGTH / SAMPLE_RATE
    out: List[Segment] = []
    k = 0  # next alignment entry
    for segment, seg_text in zip(segments, text_tokens_per_segment):
        words: List[dict] = []
        consumed = 0
        while k < len(alignment) and consumed < len(seg_text):
            timing = alignment[k]
            if timing.word:
                words.append(dict(word=timing.word, start=_round2(time_offset + timing.start),
                                  end=_round2(time_offset + timing.end), probability=timing.probability))
            consumed += len(timing.tokens)
            k += 1

        start, end = segment.start, segment.end
        if words:
            first = words[0]
            # after a pause, a first word (or first two) longer than the cap is cut to the cap
            if first["end"] - last_speech_timestamp > median_duration * 4 and (
                first["end"] - first["start"] > max_duration
                or (len(words) > 1 and words[1]["end"] - first["start"] > max_duration * 2)
            ):
                if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
                    boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
                    first["end"] = words[1]["start"] = boundary
                first["start"] = max(0, first["end"] - max_duration)

            # the segment's own start wins over a first word that begins far earlier
            if start < first["end"] and start - 0.5 > first["start"]:
                first["start"] = max(0, min(first["end"] - median_duration, start))
            else:
                start = first["start"]

            # and its own end over a last word that runs on far later
            last = words[-1]
            if end > last["start"] and end + 0.5 < last["end"]:
                last["end"] = max(last["start"] + median_duration, end)
            else:
                end = last["end"]
            last_speech_timestamp = end

        out.append(dataclasses.replace(
            segment, start=float(start), end=float(end),
            words=tuple(Word(w["word"], float(w["start"]), float(w["end"]), float(w["probability"]))
                        for w in words)))
    return out, last_word_end(out)


# -- what the long-form loop does with the words ---------------------------------------------
def last_word_end(segments: Sequence[Segment]) -> Optional[float]:
    """Where the last word of ``segments`` ends; the last segment's end when none has words;
    None when there are no segments."""
    for segment in reversed(segments):
        if segment.words:
            return segment.words[-1].end
    return segments[-1].end if segments else None


def word_anomaly_score(word: Word) -> float:
    """How unlike real speech a word looks: improbable, very short or very long."""
    score = 0.0
    if word.probability < 0.15:
        score += 1.0
    duration = word.end - word.start
    if duration < 0.133:
        score += (0.133 - duration) * 15
    if duration > 2.0:
        score += duration - 2.0
    return score


def is_segment_anomaly(segment: Optional[Segment]) -> bool:
    """Whether a segment's first eight words (punctuation aside) look like a hallucination."""
    if segment is None or not segment.words:
        return False
    words = [w for w in segment.words if w.word not in PUNCTUATION][:8]
    score = sum(word_anomaly_score(w) for w in words)
    return score >= 3 or score + 0.01 >= len(words)


def _first_with_words(segments: Sequence[Segment]) -> Optional[Segment]:
    return next((s for s in segments if s.words), None)


@dataclass(frozen=True)
class WindowWords:
    """A window's segments after word timing, and where the loop goes next.

    skip: the window is thrown away (a likely hallucination after a long silence): keep none
        of its segments, add none of its tokens to the prompt, and go on at ``seek``.
    last_speech_timestamp: pass to the next window.
    """

    segments: List[Segment]
    seek: int
    skip: bool
    last_speech_timestamp: float


@dataclass(frozen=True)
class Window:
    """One window of the long-form loop, in mel frames (10 ms each).

    seek: its first frame; size: its frames of real audio (at most ``N_FRAMES``, fewer at a
    clip's or the file's end); content_frames: the whole input's frames. After decoding,
    next_seek: where the loop goes next, and single_timestamp_ending: whether the window's
    tokens end with one lone timestamp (the speech ran to the window's end).
    """

    seek: int
    size: int
    content_frames: int
    next_seek: int = 0
    single_timestamp_ending: bool = False

    @property
    def time_offset(self) -> float:
        """Seconds from the input's start to the window's."""
        return float(self.seek * HOP_LENGTH / SAMPLE_RATE)


def apply_word_timestamps(segments: Sequence[Segment], model, tokenizer, audio_features: Tensor, window: Window, *,
                          prepend_punctuations: str, append_punctuations: str,
                          hallucination_silence_threshold: Optional[float],
                          last_speech_timestamp: float) -> WindowWords:
    """Word timing for one window and its effect on the loop, as openai-whisper's
    ``transcribe`` applies it.

    ``window`` says where the window is and where the loop would go next without word timing
    (``next_seek``, ``single_timestamp_ending``). When the window stopped early, the next window
    starts where its last word ends rather than at its last timestamp. With
    ``hallucination_silence_threshold`` (seconds), a likely hallucination that is preceded and
    followed by silence longer than that is dropped with everything after it in the window, and
    the loop seeks past the silence.
    """
    window_seek, segment_size, content_frames = window.seek, window.size, window.content_frames
    single_timestamp_ending, next_seek = window.single_timestamp_ending, window.next_seek
    time_offset = float(window_seek * HOP_LENGTH / SAMPLE_RATE)
    window_end_time = float((window_seek + N_FRAMES) * HOP_LENGTH / SAMPLE_RATE)
    segment_duration = segment_size * HOP_LENGTH / SAMPLE_RATE
    content_duration = float(content_frames * HOP_LENGTH / SAMPLE_RATE)
    seek = next_seek

    timed, _ = add_word_timestamps(segments, model, tokenizer, audio_features, segment_size,
                                   prepend_punctuations, append_punctuations, last_speech_timestamp)

    if not single_timestamp_ending:
        end = last_word_end(timed)
        if end is not None and end > time_offset:
            seek = round(end * FRAMES_PER_SECOND)

    threshold = hallucination_silence_threshold
    if threshold is not None:
        if not single_timestamp_ending:
            end = last_word_end(timed)
            if end is not None and end > time_offset:
                if window_end_time - end > threshold:
                    seek = round(end * FRAMES_PER_SECOND)
                else:
                    seek = window_seek + segment_size

        # a hallucination right after a long leading silence: skip the silence, drop the window
        first = _first_with_words(timed)
        if first is not None and is_segment_anomaly(first):
            gap = first.start - time_offset
            if gap > threshold:
                return WindowWords([], window_seek + round(gap * FRAMES_PER_SECOND), True, last_speech_timestamp)

        # a hallucination between silences (or other hallucinations): cut the window there
        previous_end = last_speech_timestamp
        for i, segment in enumerate(timed):
            if not segment.words:
                continue
            if is_segment_anomaly(segment):
                following = _first_with_words(timed[i + 1:])
                next_start = following.words[0].start if following is not None else time_offset + segment_duration
                silence_before = (segment.start - previous_end > threshold or segment.start < threshold
                                  or segment.start - time_offset < 2.0)
                silence_after = (next_start - segment.end > threshold or is_segment_anomaly(following)
                                 or window_end_time - segment.end < 2.0)
                if silence_before and silence_after:
                    seek = round(max(time_offset + 1, segment.start) * FRAMES_PER_SECOND)
                    if content_duration - segment.end < threshold:
                        seek = content_frames
                    timed = timed[:i]
                    break
            previous_end = segment.end

    end = last_word_end(timed)
    if end is not None:
        last_speech_timestamp = end
    return WindowWords(timed, seek, False, last_speech_timestamp)


__all__ = [
    "Window", "WordTiming", "WindowWords", "median_filter", "dtw", "find_alignment", "merge_punctuations",
    "add_word_timestamps", "apply_word_timestamps", "last_word_end", "word_anomaly_score", "is_segment_anomaly",
]
