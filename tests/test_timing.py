"""Word timing (whispermedia.timing): DTW, median filter, punctuation merging, the word rules,
and the real base model on jfk.flac against word times openai-whisper produced with the same
weights (pinned below, so the test does not need openai-whisper).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from whispermedia import timing
from whispermedia.timing import WordTiming, dtw, median_filter, merge_punctuations
from whispermedia.types import Segment, Word

SPEECH = Path(__file__).parent / "data" / "speech"
PREPEND = "\"'“¿([{-"
APPEND = "\"'.。,，!！?？:：”)]}、"


# -- dtw -------------------------------------------------------------------------------------
def naive_dtw(x: np.ndarray):
    """The textbook double loop: float32 table, diagonal only when strictly cheapest, then
    vertical when strictly cheapest, else horizontal; backtrace from the far corner."""
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    cost[0, 0] = 0
    move = np.zeros((n + 1, m + 1), dtype=np.int8)
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = float(x[i - 1, j - 1]) + float(c)
            move[i, j] = t
    move[0, :] = 2
    move[:, 0] = 1
    i, j, path = n, m, []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        t = move[i, j]
        if t == 0:
            i, j = i - 1, j - 1
        elif t == 1:
            i -= 1
        else:
            j -= 1
    path = np.array(path[::-1])
    return path[:, 0], path[:, 1]


@pytest.mark.parametrize("seed", range(12))
def test_dtw_matches_the_double_loop_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    n, m = (int(v) for v in rng.integers(1, 40, 2))
    x = rng.standard_normal((n, m)).astype(np.float32).astype(np.float64)
    got, want = dtw(x), naive_dtw(x)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("seed", range(12))
def test_dtw_breaks_ties_like_the_double_loop(seed):
    # small integers: equal costs everywhere, so every tie-break rule is exercised
    rng = np.random.default_rng(100 + seed)
    n, m = (int(v) for v in rng.integers(1, 30, 2))
    x = rng.integers(0, 3 if seed % 2 else 2, (n, m)).astype(np.float64)
    got, want = dtw(x), naive_dtw(x)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (4, 4), (9, 3)])
def test_dtw_degenerate_shapes_and_constant_cost(shape):
    x = np.zeros(shape)
    got, want = dtw(x), naive_dtw(x)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_dtw_path_is_monotonic_and_spans_the_matrix():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((60, 400))
    ti, tj = dtw(x)
    assert (ti[0], tj[0]) == (0, 0) and (ti[-1], tj[-1]) == (59, 399)
    steps = set(zip(np.diff(ti).tolist(), np.diff(tj).tolist()))
    assert steps <= {(1, 0), (0, 1), (1, 1)}
    assert ti.dtype == np.int64 and tj.dtype == np.int64


def test_dtw_on_a_window_sized_matrix():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((224, 1500)).astype(np.float32)
    ti, tj = dtw(x)
    assert len(ti) == len(tj) >= 1500


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (3, 0)])
def test_dtw_empty_dimensions_follow_the_backtrace(shape):
    # no audio frames (or no tokens): the path runs along the table's edge, index -1 on the
    # empty side, as the reference's backtrace does
    ti, tj = dtw(np.zeros(shape))
    n, m = shape
    if n == 0 and m == 0:
        assert len(ti) == len(tj) == 0
    else:
        want = naive_dtw(np.zeros(shape))
        assert np.array_equal(ti, want[0]) and np.array_equal(tj, want[1])
        assert len(ti) == max(n, m)


# -- median filter ---------------------------------------------------------------------------
def numpy_median_filter(x: np.ndarray, width: int) -> np.ndarray:
    half = width // 2
    pad = [(0, 0)] * (x.ndim - 1) + [(half, half)]
    padded = np.pad(x, pad, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.median(windows, axis=-1)


@pytest.mark.parametrize("shape", [(20,), (3, 17), (2, 5, 40)])
@pytest.mark.parametrize("width", [1, 3, 7])
def test_median_filter_matches_numpy(shape, width):
    x = torch.from_numpy(np.random.default_rng(sum(shape) + width).standard_normal(shape).astype(np.float32))
    got = median_filter(x, width)
    assert got.shape == x.shape
    np.testing.assert_array_equal(got.numpy(), numpy_median_filter(x.numpy(), width))


def test_median_filter_short_input_is_returned_unchanged():
    x = torch.tensor([[3.0, 1.0, 2.0]])
    assert torch.equal(median_filter(x, 7), x)


def test_median_filter_rejects_even_width():
    with pytest.raises(ValueError):
        median_filter(torch.zeros(10), 4)


# -- punctuation -----------------------------------------------------------------------------
def wt(word, tokens, start=0.0, end=0.0):
    return WordTiming(word, tuple(tokens), start, end, 0.5)


def words_of(alignment):
    return [(w.word, w.tokens) for w in alignment]


def test_merge_appended_punctuation_onto_previous_word():
    got = merge_punctuations([wt(" Hello", [1]), wt(",", [2]), wt(" world", [3]), wt(".", [4])], PREPEND, APPEND)
    assert words_of(got) == [(" Hello,", (1, 2)), ("", ()), (" world.", (3, 4)), ("", ())]


def test_merge_prepended_punctuation_onto_next_word():
    got = merge_punctuations([wt(" He", [1]), wt(" said", [2]), wt(' "', [3]), wt("Yes", [4])], PREPEND, APPEND)
    assert words_of(got) == [(" He", (1,)), (" said", (2,)), ("", ()), (' "Yes', (3, 4))]


def test_merge_runs_of_marks():
    # an opening run gathers onto the word after it; a closing run onto the word before it
    got = merge_punctuations([wt(" (", [1]), wt(' "', [2]), wt(" quote", [3]), wt('"', [4]), wt(")", [5]),
                              wt(".", [6])], PREPEND, APPEND)
    assert words_of(got) == [("", ()), ("", ()), (' ( " quote").', (1, 2, 3, 4, 5, 6)), ("", ()), ("", ()),
                             ("", ())]


def test_merge_keeps_timing_of_the_receiving_word_and_the_list_length():
    alignment = [wt(" Hi", [1], 0.0, 0.5), wt("!", [2], 0.5, 2.0)]
    got = merge_punctuations(alignment, PREPEND, APPEND)
    assert got[0] == WordTiming(" Hi!", (1, 2), 0.0, 0.5, 0.5)
    assert got[1].word == "" and got[1].tokens == ()
    assert alignment[0].word == " Hi"  # the input is not changed


def test_merge_leaves_non_marks_and_space_separated_marks():
    # " -" with a leading space prepends; "-" without one is a word piece and stays
    got = merge_punctuations([wt(" well", [1]), wt(" -", [2]), wt(" known", [3])], PREPEND, APPEND)
    assert words_of(got) == [(" well", (1,)), ("", ()), (" - known", (2, 3))]
    got = merge_punctuations([wt(" a", [1]), wt(" b", [2])], PREPEND, APPEND)
    assert words_of(got) == [(" a", (1,)), (" b", (2,))]
    # a word that ends with a space takes no closing mark
    got = merge_punctuations([wt(" a ", [1]), wt(".", [2])], PREPEND, APPEND)
    assert words_of(got) == [(" a ", (1,)), (".", (2,))]


# -- the word rules (find_alignment replaced by a prepared alignment) ------------------------
class _Tok:
    eot = 50257


def segment(start, end, text_tokens, seek=0, text="x"):
    return Segment(id=0, seek=seek, start=start, end=end, text=text, tokens=(50364, *text_tokens, 50400),
                   temperature=0.0, avg_logprob=-0.1, compression_ratio=1.0, no_speech_prob=0.0)


def run_rules(monkeypatch, alignment, segments, last_speech=0.0):
    monkeypatch.setattr(timing, "find_alignment", lambda *a, **k: list(alignment))
    return timing.add_word_timestamps(segments, None, _Tok(), None, 3000, PREPEND, APPEND, last_speech)


def spans(seg):
    return [(w.word, w.start, w.end) for w in seg.words]


# The expected values below follow openai-whisper's add_word_timestamps (checked against it).
def test_sentence_end_words_are_capped_and_punctuation_merged(monkeypatch):
    alignment = [WordTiming(" Hello", (1,), 0.0, 0.4, 0.9), WordTiming(" world", (2,), 0.4, 0.8, 0.8),
                 WordTiming(".", (3,), 0.8, 3.0, 0.7), WordTiming(" Next", (4,), 3.0, 6.0, 0.6),
                 WordTiming(" one", (5,), 6.0, 6.3, 0.5)]
    (seg,), last = run_rules(monkeypatch, alignment, [segment(0.0, 6.5, [1, 2, 3, 4, 5])])
    # median 0.4, cap 0.8: "." ends 0.8 after its start; " Next" starts 0.8 before its end
    assert spans(seg) == [(" Hello", 0.0, 0.4), (" world.", 0.4, 0.8), (" Next", 5.2, 6.0), (" one", 6.0, 6.3)]
    assert [w.probability for w in seg.words] == [0.9, 0.8, 0.6, 0.5]
    assert (seg.start, seg.end) == (0.0, 6.3) and last == 6.3


def test_first_word_after_a_pause_is_capped(monkeypatch):
    alignment = [WordTiming(" Well", (1,), 0.0, 5.0, 0.9), WordTiming(" yes", (2,), 5.0, 5.3, 0.9),
                 WordTiming(" sure", (3,), 5.3, 5.6, 0.9)]
    (seg,), _ = run_rules(monkeypatch, alignment, [segment(4.5, 5.6, [1, 2, 3])])
    # median 0.3, cap 0.6: the first word keeps only its last 0.6 s; the segment follows it
    assert spans(seg) == [(" Well", 4.4, 5.0), (" yes", 5.0, 5.3), (" sure", 5.3, 5.6)]
    assert (seg.start, seg.end) == (4.4, 5.6)


def test_first_two_words_after_a_pause_share_the_cap(monkeypatch):
    alignment = [WordTiming(" So", (1,), 3.0, 3.2, 0.9), WordTiming(" long", (2,), 3.2, 5.0, 0.9),
                 WordTiming(" a", (3,), 5.0, 5.2, 0.9), WordTiming(" b", (4,), 5.2, 5.4, 0.9)]
    (seg,), _ = run_rules(monkeypatch, alignment, [segment(3.0, 5.4, [1, 2, 3, 4])])
    # median 0.2, cap 0.4: the two first words end 2.0 s after the first starts (over twice the
    # cap), so their boundary moves to max(5.0 / 2, 5.0 - 0.4) and the first keeps 0.4 s of it
    assert [(w.word, round(w.start, 6), round(w.end, 6)) for w in seg.words] == [
        (" So", 4.2, 4.6), (" long", 4.6, 5.0), (" a", 5.0, 5.2), (" b", 5.2, 5.4)]
    assert (round(seg.start, 6), seg.end) == (4.2, 5.4)


def test_segment_bounds_win_over_far_longer_words(monkeypatch):
    alignment = [WordTiming(" A", (1,), 1.0, 3.0, 0.9), WordTiming(" b", (2,), 3.0, 3.2, 0.9),
                 WordTiming(" c", (3,), 3.2, 3.4, 0.9), WordTiming(" d", (4,), 3.4, 6.0, 0.9)]
    (seg,), last = run_rules(monkeypatch, alignment, [segment(2.0, 5.0, [1, 2, 3, 4])], last_speech=2.5)
    # no pause before it (3.0 - 2.5 <= 4 * median); the segment's start 2.0 and end 5.0 hold
    assert spans(seg) == [(" A", 2.0, 3.0), (" b", 3.0, 3.2), (" c", 3.2, 3.4), (" d", 3.4, 5.0)]
    assert (seg.start, seg.end) == (2.0, 5.0) and last == 5.0


def test_words_are_shared_out_by_token_count_and_offset_by_seek(monkeypatch):
    alignment = [WordTiming(" one", (1, 2), 0.10, 0.30, 0.9), WordTiming(" two", (3,), 0.30, 0.50, 0.8),
                 WordTiming(",", (4,), 0.50, 0.52, 0.7), WordTiming(" three", (5, 6), 0.80, 1.10, 0.6)]
    segments = [segment(30.0, 30.6, [1, 2, 3, 4], seek=3000), segment(30.6, 31.2, [5, 6], seek=3000)]
    (a, b), last = run_rules(monkeypatch, alignment, segments, last_speech=29.9)
    assert spans(a) == [(" one", 30.1, 30.3), (" two,", 30.3, 30.5)]
    assert spans(b) == [(" three", 30.8, 31.1)]
    assert (a.start, a.end, b.start, b.end) == (30.1, 30.5, 30.8, 31.1) and last == 31.1
    assert a.tokens == segments[0].tokens and a.text == segments[0].text  # only times and words change


def test_no_text_gives_empty_words(monkeypatch):
    segments = [segment(0.0, 1.0, [])]
    (seg,), last = run_rules(monkeypatch, [], segments)
    assert seg.words == () and (seg.start, seg.end) == (0.0, 1.0) and last == 1.0
    assert timing.add_word_timestamps([], None, _Tok(), None, 3000, PREPEND, APPEND, 0.0) == ([], None)


def test_rounding_is_numpys(monkeypatch):
    # openai rounds numpy float64s: scaled and rounded half to even, not Python's exact decimal
    # rounding (which gives 0.01 and 1.17 here)
    alignment = [WordTiming(" x", (1,), np.float64(0.015), np.float64(1.165), 0.9)]
    (seg,), _ = run_rules(monkeypatch, alignment, [segment(0.0, 2.0, [1])])
    assert (seg.words[0].start, seg.words[0].end) == (0.02, 1.16)


# -- what the loop does with the words ------------------------------------------------------
def test_unfinished_window_seeks_to_the_last_word(monkeypatch):
    alignment = [WordTiming(" Hi", (1,), 0.5, 0.9, 0.9), WordTiming(" there", (2,), 0.9, 1.37, 0.9)]
    monkeypatch.setattr(timing, "find_alignment", lambda *a, **k: list(alignment))
    out = timing.apply_word_timestamps(
        [segment(10.0, 12.0, [1, 2], seek=1000)], None, _Tok(), None,
        timing.Window(seek=1000, size=3000, content_frames=9000, next_seek=1200, single_timestamp_ending=False),
        prepend_punctuations=PREPEND,
        append_punctuations=APPEND, hallucination_silence_threshold=None, last_speech_timestamp=0.0)
    assert out.seek == round(11.37 * 100) and not out.skip and out.last_speech_timestamp == 11.37
    single = timing.apply_word_timestamps(
        [segment(10.0, 12.0, [1, 2], seek=1000)], None, _Tok(), None,
        timing.Window(seek=1000, size=3000, content_frames=9000, next_seek=4000, single_timestamp_ending=True),
        prepend_punctuations=PREPEND,
        append_punctuations=APPEND, hallucination_silence_threshold=None, last_speech_timestamp=0.0)
    assert single.seek == 4000


def test_hallucination_after_long_silence_drops_the_window(monkeypatch):
    # one improbable, very short word 10 s into the window: skip to it, keep nothing
    alignment = [WordTiming(" Thanks", (1,), 10.0, 10.04, 0.05)]
    monkeypatch.setattr(timing, "find_alignment", lambda *a, **k: list(alignment))
    out = timing.apply_word_timestamps(
        [segment(9.0, 10.5, [1])], None, _Tok(), None,
        timing.Window(seek=0, size=3000, content_frames=6000, next_seek=3000, single_timestamp_ending=True),
        prepend_punctuations=PREPEND,
        append_punctuations=APPEND, hallucination_silence_threshold=2.0, last_speech_timestamp=0.0)
    assert out.skip and out.segments == [] and out.seek == 1000 and out.last_speech_timestamp == 0.0


def test_anomaly_scores():
    assert timing.word_anomaly_score(Word(" a", 0.0, 0.5, 0.9)) == 0.0
    assert timing.word_anomaly_score(Word(" a", 0.0, 0.5, 0.1)) == 1.0
    assert timing.word_anomaly_score(Word(" a", 0.0, 3.0, 0.9)) == pytest.approx(1.0)
    assert timing.word_anomaly_score(Word(" a", 0.0, 0.033, 0.9)) == pytest.approx(1.5)
    seg = dataclasses.replace(segment(0.0, 1.0, [1]), words=(Word(" a", 0.0, 0.5, 0.9),))
    assert not timing.is_segment_anomaly(seg)
    assert timing.is_segment_anomaly(dataclasses.replace(seg, words=(Word(" a", 0.0, 0.01, 0.05),)))
    assert not timing.is_segment_anomaly(None)


# -- the real model --------------------------------------------------------------------------
# openai-whisper 20250625, base weights from our registry (float32), our alignment heads:
# transcribe(jfk, temperature=0.0, word_timestamps=True, fp16=False)
JFK_SEGMENTS = [
    (0.0, 7.6, (50364, 400, 370, 452, 7177, 6280, 1029, 406, 437, 428, 1941, 393, 360, 337, 291, 11, 50744)),
    (7.6, 10.6, (50744, 1029, 437, 291, 393, 360, 337, 428, 1941, 13, 50894)),
]
JFK_BOUNDS = [(0.0, 7.42), (7.42, 10.36)]
JFK_WORDS = [
    [(" And", 0.0, 0.52, 0.6432), (" so", 0.52, 0.84, 0.9871), (" my", 0.84, 1.18, 0.7964),
     (" fellow", 1.18, 1.56, 0.9955), (" Americans", 1.56, 2.1, 0.9258), (" ask", 2.1, 3.72, 0.2836),
     (" not", 3.72, 4.24, 0.6561), (" what", 4.24, 5.52, 0.7547), (" your", 5.52, 5.76, 0.9823),
     (" country", 5.76, 6.24, 0.9989), (" can", 6.24, 6.62, 0.9966), (" do", 6.62, 6.82, 0.9948),
     (" for", 6.82, 7.08, 0.9948), (" you,", 7.08, 7.42, 0.9964)],
    [(" ask", 7.42, 8.46, 0.9025), (" what", 8.46, 8.76, 0.9623), (" you", 8.76, 9.04, 0.9865),
     (" can", 9.04, 9.32, 0.9966), (" do", 9.32, 9.56, 0.9923), (" for", 9.56, 9.78, 0.9964),
     (" your", 9.78, 9.94, 0.9964), (" country.", 9.94, 10.36, 0.999)],
]


@pytest.fixture(scope="module")
def base_model():
    from whispermedia.errors import ModelError
    from whispermedia.models import load_model

    try:
        return load_model("base")
    except ModelError as e:
        pytest.skip(f"the base model is not installed: {e}")


def _jfk_audio() -> np.ndarray:
    try:
        from whispermedia.media import load_audio
    except ImportError as e:
        pytest.skip(f"media decoding is unavailable: {e}")
    return load_audio(str(SPEECH / "jfk.flac"))


def _need_core():
    """The mel op and the cached attention op (landing separately) are needed to run the model."""
    try:
        from whispermedia import features, ops
    except ImportError as e:
        pytest.skip(f"whispermedia.features is unavailable: {e}")
    if not hasattr(features, "log_mel_spectrogram") or not hasattr(ops, "kv_attention"):
        pytest.skip("the log_mel or kv_attention op is unavailable")
    return features


def _window_features(model, audio: np.ndarray):
    features = _need_core()
    mel = features.log_mel_spectrogram(torch.from_numpy(audio), model.dims.n_mels, padding=features.N_SAMPLES)
    num_frames = mel.shape[-1] - features.N_FRAMES
    window = features.pad_or_trim(mel[:, :num_frames], features.N_FRAMES)
    with torch.no_grad():
        return model.embed_audio(window[None]), num_frames


@pytest.mark.slow
def test_jfk_word_timestamps_match_openai(base_model):
    audio = _jfk_audio()
    feats, num_frames = _window_features(base_model, audio)
    tok = base_model.tokenizer.with_language_and_task("en", "transcribe")
    segments = [Segment(id=i, seek=0, start=s, end=e, text=tok.decode(t), tokens=t, temperature=0.0,
                        avg_logprob=-0.2, compression_ratio=1.2, no_speech_prob=0.01)
                for i, (s, e, t) in enumerate(JFK_SEGMENTS)]
    out, last = timing.add_word_timestamps(segments, base_model, tok, feats, num_frames, PREPEND, APPEND, 0.0)

    assert [(s.start, s.end) for s in out] == JFK_BOUNDS and last == 10.36
    for seg, want in zip(out, JFK_WORDS):
        assert [(w.word, w.start, w.end) for w in seg.words] == [w[:3] for w in want]
        assert [w.probability for w in seg.words] == pytest.approx([w[3] for w in want], abs=2e-4)

    # invariants: words in order, inside their segment, spelling the segment's text
    for seg in out:
        assert "".join(w.word for w in seg.words) == seg.text
        assert seg.start <= seg.words[0].start and seg.words[-1].end <= seg.end
        for w in seg.words:
            assert 0.0 <= w.probability <= 1.0 and w.start <= w.end
        for a, b in zip(seg.words, seg.words[1:]):
            assert a.end <= b.start
    assert out[0].end <= out[1].start


@pytest.mark.slow
def test_transcribe_with_word_timestamps(base_model):
    """End to end through the long-form loop, once the pipeline calls the timing step."""
    _need_core()
    import whispermedia.pipeline as pipeline

    audio = _jfk_audio()
    try:
        result = pipeline.transcribe(audio, model=base_model, language="en", temperature=0.0,
                                         word_timestamps=True, preset="openai-transcribe")
    except NotImplementedError as e:
        pytest.skip(f"the pipeline does not time words yet: {e}")
    assert [(s.start, s.end) for s in result.segments] == JFK_BOUNDS
    for seg, want in zip(result.segments, JFK_WORDS):
        assert [(w.word, w.start, w.end) for w in seg.words] == [w[:3] for w in want]
