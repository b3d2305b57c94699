"""Decoding one window: each logit filter alone, and whole decodes against openai-whisper's."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from checkpoint_writers import random_state_dict, tiny_dims, write_openai
from whispermedia.decoding import (ApplyTimestampRules, CachedInference, DecodingTask, Inference, SuppressBlank,
                                   SuppressTokens, compression_ratio, decode, detect_language)
from whispermedia.models import build_model
from whispermedia.options import DecodingOptions, TranscribeOptions
from whispermedia.weights import read_checkpoint


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A seeded random model with base's vocabulary: fast, and its decodes are long and varied."""
    dims = tiny_dims(80, 51865)
    sd = {k: v * 4 if "token_embedding" in k else v for k, v in random_state_dict(dims, seed=1).items()}
    path = write_openai(tmp_path_factory.mktemp("ckpt") / "tiny.pt", dims, sd)
    return build_model(read_checkpoint(path), name="tiny-random")


@pytest.fixture(scope="module")
def tok(tiny_model):
    return tiny_model.tokenizer.with_language_and_task("en", "transcribe")


def test_suppress_blank_only_at_the_start(tok):
    f = SuppressBlank(tok, sample_begin=3)
    logits = torch.zeros(2, 51865)
    f.apply(logits, torch.zeros(2, 3, dtype=torch.long))
    assert math.isinf(logits[0, tok.eot]) and math.isinf(logits[0, tok.encode(" ")[0]])
    logits = torch.zeros(2, 51865)
    f.apply(logits, torch.zeros(2, 4, dtype=torch.long))
    assert torch.isfinite(logits).all()


def test_suppress_tokens():
    logits = torch.zeros(1, 10)
    SuppressTokens([2, 5]).apply(logits, torch.zeros(1, 1, dtype=torch.long))
    assert torch.isinf(logits[0, [2, 5]]).all() and torch.isfinite(logits[0, [0, 1, 3, 4]]).all()


def test_timestamp_rules(tok):
    ts = tok.timestamp_begin
    rules = ApplyTimestampRules(tok, sample_begin=1, max_initial_timestamp_index=50)
    # at the start: only timestamps, and no later than 1.00 s
    logits = torch.zeros(1, 51865)
    rules.apply(logits, torch.tensor([[tok.sot]]))
    allowed = torch.isfinite(logits[0]).nonzero().flatten()
    assert allowed.min() == ts and allowed.max() == ts + 50
    # the window's first timestamp opens a segment: text must follow
    logits = torch.zeros(1, 51865)
    rules.apply(logits, torch.tensor([[tok.sot, ts + 10]]))
    assert torch.isinf(logits[0, ts:]).all() and torch.isfinite(logits[0, : tok.eot]).all()
    # after text then a timestamp (a closing one): no text; a second, equal or later stamp may open
    logits = torch.zeros(1, 51865)
    rules.apply(logits, torch.tensor([[tok.sot, ts, 400, ts + 10]]))
    assert torch.isinf(logits[0, : tok.eot]).all() and torch.isinf(logits[0, ts:ts + 10]).all()
    assert torch.isfinite(logits[0, ts + 10])
    # after a closed pair: text must follow
    logits = torch.zeros(1, 51865)
    rules.apply(logits, torch.tensor([[tok.sot, ts, 400, ts + 5, ts + 5]]))
    assert torch.isinf(logits[0, ts:]).all()
    # after text: a timestamp must be strictly later than the last one
    logits = torch.zeros(1, 51865)
    rules.apply(logits, torch.tensor([[tok.sot, ts + 7, 400]]))
    assert torch.isinf(logits[0, ts:ts + 8]).all() and torch.isfinite(logits[0, ts + 8])


def test_timestamps_win_when_their_total_probability_dominates(tok):
    ts = tok.timestamp_begin
    rules = ApplyTimestampRules(tok, sample_begin=1, max_initial_timestamp_index=None)
    logits = torch.full((1, 51865), -30.0)
    logits[0, 400] = 0.0  # the best text token ...
    logits[0, ts + 20:ts + 40] = -1.0  # ... loses to twenty likely timestamps together
    rules.apply(logits, torch.tensor([[tok.sot, ts, 300]]))
    assert torch.isinf(logits[0, :ts]).all()


def test_compression_ratio():
    assert compression_ratio("") == 0.0
    assert compression_ratio("la " * 200) > 10 > compression_ratio("The quick brown fox jumps over the lazy dog.")


def test_options_validation():
    with pytest.raises(ValueError, match="patience"):
        TranscribeOptions.from_kwargs(preset="greedy", patience=1.0)
    with pytest.raises(TypeError, match="unknown transcribe option"):
        TranscribeOptions.from_kwargs(bogus=1)
    assert TranscribeOptions.from_kwargs(temperature=0).temperature == (0.0,)
    assert TranscribeOptions.from_kwargs(temperature=[0, 0.5]).temperature == (0.0, 0.5)


def test_sampling_is_seeded_and_ranked(tiny_model):
    mel = torch.randn(80, 3000)
    opts = DecodingOptions(language="en", temperature=0.7, best_of=3, sample_len=20)
    runs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(123)
        runs.append(DecodingTask(tiny_model, opts, generator=g).run(mel[None])[0].tokens)
    assert runs[0] == runs[1]


# -- against openai-whisper, on the same random weights ------------------------------------

def _openai_model(model):
    whisper = pytest.importorskip("whisper")
    from whisper.model import ModelDimensions, Whisper

    ref = Whisper(ModelDimensions(**dataclasses.asdict(model.dims)))
    ref.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    return ref.eval(), whisper


CASES = {
    "greedy": dict(),
    "no_timestamps": dict(without_timestamps=True),
    "prompt": dict(prompt=" The quick brown fox"),
    "prefix": dict(prefix=" Hello there"),
    "no_suppression": dict(suppress_blank=False, suppress_tokens=""),
    "initial_timestamp": dict(max_initial_timestamp=0.2),
    "short": dict(sample_len=12),
    "beam": dict(beam_size=3),
    "beam_patience": dict(beam_size=2, patience=2.0, length_penalty=0.5),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_decode_equals_openai_whisper(tiny_model, case):
    ref, whisper = _openai_model(tiny_model)
    torch.manual_seed(0)
    # openai-whisper's beam search takes one window at a time (it does not repeat the audio
    # features per beam), so the beam cases compare one window
    mel = torch.randn(1 if "beam" in case else 2, 80, 3000)
    # 64 tokens keep the test quick and still cover many steps of the timestamp rules
    kwargs = dict(language="en", fp16=False, **{"sample_len": 64, **CASES[case]})
    expected = whisper.decode(ref, mel, whisper.DecodingOptions(**kwargs))
    ours_kwargs = {k: v for k, v in kwargs.items() if k != "fp16"}
    for key in ("prompt", "prefix"):
        if key in ours_kwargs:
            ours_kwargs[key] = tuple(tiny_model.tokenizer.encode(" " + ours_kwargs[key].strip()))
    got = decode(tiny_model, mel, DecodingOptions(**ours_kwargs))
    for e, g in zip(expected, got):
        assert list(g.tokens) == e.tokens
        assert g.text == e.text
        assert g.avg_logprob == pytest.approx(e.avg_logprob, abs=1e-4)
        assert g.no_speech_prob == pytest.approx(e.no_speech_prob, abs=1e-5)


def test_language_detection_equals_openai_whisper(tiny_model):
    ref, whisper = _openai_model(tiny_model)
    mel = torch.randn(3, 80, 3000)
    _, ref_probs = ref.detect_language(mel)
    ours = detect_language(tiny_model, mel)
    for guess, probs in zip(ours, ref_probs):
        assert guess.language == max(probs, key=probs.get)
        assert guess.probability == pytest.approx(probs[guess.language], abs=1e-5)


def test_batched_beam_search_equals_one_window_at_a_time(tiny_model):
    torch.manual_seed(1)
    mel = torch.randn(2, 80, 3000)
    opts = DecodingOptions(language="en", beam_size=3, sample_len=24)
    together = decode(tiny_model, mel, opts)
    alone = [decode(tiny_model, m, opts) for m in mel]
    assert [r.tokens for r in together] == [r.tokens for r in alone]


def test_detect_language_takes_audio_features_by_keyword(tiny_model):
    torch.manual_seed(2)
    mel = torch.randn(2, 80, 3000)
    with torch.no_grad():
        features = tiny_model.embed_audio(mel)
    from_mel = detect_language(tiny_model, mel)
    assert detect_language(tiny_model, audio_features=features) == from_mel
    assert detect_language(tiny_model, features) == from_mel  # openai's positional form, told by shape
    assert detect_language(tiny_model, audio_features=features[0]) == detect_language(tiny_model, mel[0])
    with pytest.raises(ValueError, match="either a mel or audio_features"):
        detect_language(tiny_model, mel, audio_features=features)
    with pytest.raises(ValueError, match="either a mel or audio_features"):
        detect_language(tiny_model)


# -- the Inference seam: the search sees only Inference.logits / reorder -----------------------

class CountingInference(Inference):
    """Wraps another inference; records every call and the CPU threads each step ran with."""

    def __init__(self, inner: Inference, fail_at_step: int = -1):
        self.inner = inner
        self.fail_at_step = fail_at_step
        self.calls = []
        self.threads = []

    def start(self, audio_features, rows_per_audio, sot_index):
        self.calls.append(("start", rows_per_audio, sot_index))
        self.inner.start(audio_features, rows_per_audio, sot_index)

    def logits(self, tokens, first):
        self.calls.append(("logits", first, tokens.shape[1]))
        if len(self.threads) == self.fail_at_step:
            raise KeyError("step")
        out = self.inner.logits(tokens, first)
        self.threads.append(torch.get_num_threads())
        return out

    def no_speech_probs(self):
        return self.inner.no_speech_probs()

    def reorder(self, rows):
        self.calls.append(("reorder", len(rows)))
        self.inner.reorder(rows)

    def release(self):
        self.calls.append(("release",))
        self.inner.release()


@pytest.mark.parametrize("search", [dict(), dict(beam_size=3)], ids=["greedy", "beam"])
def test_an_injected_inference_drives_the_search_to_the_same_tokens(tiny_model, search):
    torch.manual_seed(3)
    mel = torch.randn(2, 80, 3000)
    opts = DecodingOptions(language="en", sample_len=24, **search)
    expected = DecodingTask(tiny_model, opts).run(mel)
    counting = CountingInference(CachedInference(tiny_model, tiny_model.tokenizer.no_speech))
    task = DecodingTask(tiny_model, opts, inference=counting)
    got = task.run(mel)
    assert got == expected
    assert [r.no_speech_prob for r in got] == [r.no_speech_prob for r in expected]

    n_group = search.get("beam_size", 1)
    assert counting.calls[0] == ("start", n_group, task.sot_index)
    assert counting.calls[-1] == ("release",)
    steps = [c for c in counting.calls if c[0] == "logits"]
    # the whole prompt once, then one call a step, each seeing one more token
    assert steps[0] == ("logits", True, task.sample_begin)
    assert steps[1:] == [("logits", False, task.sample_begin + i) for i in range(1, len(steps))]
    reorders = [c for c in counting.calls if c[0] == "reorder"]
    assert bool(reorders) == ("beam_size" in search)
    assert all(n == 2 * n_group for _, n in reorders)


class ScriptedInference(Inference):
    """No model: every row's next token is ``script[k]`` at step k, then <|endoftext|>."""

    def __init__(self, script, eot, n_vocab):
        self.script, self.eot, self.n_vocab = list(script), eot, n_vocab
        self.n_prompt = None

    def start(self, audio_features, rows_per_audio, sot_index):
        self.n_rows = audio_features.shape[0] * rows_per_audio

    def logits(self, tokens, first):
        if first:
            self.n_prompt = tokens.shape[1]
        step = tokens.shape[1] - self.n_prompt
        logits = torch.zeros(tokens.shape[0], self.n_vocab)
        logits[:, self.script[step] if step < len(self.script) else self.eot] = 20.0
        return logits

    def no_speech_probs(self):
        return [0.25] * self.n_rows

    def reorder(self, rows):
        pass


@pytest.mark.parametrize("search", [dict(), dict(beam_size=2)], ids=["greedy", "beam"])
def test_a_fake_inference_alone_decides_the_tokens(tiny_model, search):
    script = tiny_model.tokenizer.encode(" Hello there, general Kenobi.")
    fake = ScriptedInference(script, tiny_model.tokenizer.eot, tiny_model.dims.n_vocab)
    opts = DecodingOptions(language="en", without_timestamps=True, **search)
    features = torch.zeros(2, tiny_model.dims.n_audio_ctx, tiny_model.dims.n_audio_state)
    results = DecodingTask(tiny_model, opts, inference=fake).run(None, audio_features=features)
    assert [r.tokens for r in results] == [tuple(script)] * 2
    assert [r.text for r in results] == ["Hello there, general Kenobi."] * 2
    assert [r.no_speech_prob for r in results] == [0.25] * 2


@pytest.mark.parametrize("limit, one_token_steps", [(1, 1), (None, 2)])
def test_cached_inference_limits_threads_for_the_one_token_steps_only(tiny_model, limit, one_token_steps):
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        counting = CountingInference(CachedInference(tiny_model, tiny_model.tokenizer.no_speech, decode_threads=limit))
        DecodingTask(tiny_model, DecodingOptions(language="en", sample_len=6), inference=counting).run(
            torch.randn(1, 80, 3000))
        assert counting.threads[0] == 2  # the prompt step keeps torch's setting
        assert len(counting.threads) > 1 and set(counting.threads[1:]) == {one_token_steps}
        assert torch.get_num_threads() == 2  # restored by release()
    finally:
        torch.set_num_threads(saved)


def test_the_inference_is_released_when_a_step_fails(tiny_model):
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        counting = CountingInference(CachedInference(tiny_model, tiny_model.tokenizer.no_speech), fail_at_step=3)
        with pytest.raises(KeyError, match="step"):
            DecodingTask(tiny_model, DecodingOptions(language="en", sample_len=10), inference=counting).run(
                torch.randn(1, 80, 3000))
        assert counting.calls[-1] == ("release",) and counting.inner.cache is None
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


def test_cache_reorder_moves_every_position_a_row_reads():
    """KVCache.reorder copies only the rows that change and only below the longest length (on a
    CPU): every position a row reads afterwards (below its new length) equals a whole-buffer
    move, and the rows left in place are not touched."""
    from whispermedia.model import KVCache

    g = torch.Generator().manual_seed(0)
    layers, rows, ctx, heads, dim = 2, 5, 12, 2, 4
    k = torch.randn(layers, rows, ctx, heads, dim, generator=g)
    v = torch.randn(layers, rows, ctx, heads, dim, generator=g)
    seqlens = torch.tensor([7, 7, 6, 7, 5], dtype=torch.int32)
    source = torch.tensor([3, 1, 0, 0, 2])
    cache = KVCache(self_k=k.clone(), self_v=v.clone(), cross_k=torch.zeros(1), cross_v=torch.zeros(1),
                    seqlens=seqlens.clone(), rows_per_audio=rows)
    cache.reorder(source)
    assert cache.seqlens.tolist() == seqlens[source].tolist()
    for got, whole in ((cache.self_k, k[:, source]), (cache.self_v, v[:, source])):
        for row, n in enumerate(cache.seqlens.tolist()):
            assert torch.equal(got[:, row, :n], whole[:, row, :n])
    assert torch.equal(cache.self_k[:, 1], k[:, 1])  # row 1 keeps its own row: untouched
    untouched = cache.self_k.clone()
    cache.reorder(torch.arange(rows))
    assert torch.equal(cache.self_k, untouched)
