"""The decoder's speed paths compute what the plain float32 model computes.

(The ops themselves, ``linear_f16w``, ``linear_i8w`` and ``cross_attention``, are tested in
``tests/ops/``.)

- ``Whisper.set_compute_type("float32")``: float16 storage only where exact, fused
  query/key/value, unchanged ``state_dict``, surviving ``.to()``;
- one cross-attention K/V per audio shared by its rows, ``logits_at``, the decode-loop threads;
- greedy and beam decodes of a packed model equal to openai-whisper's on the same weights.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from checkpoint_writers import random_state_dict, tiny_dims, write_openai
from whispermedia import decoding, ops
from whispermedia.decoding import decode
from whispermedia.model import Whisper
from whispermedia.models import build_model
from whispermedia.options import DecodingOptions
from whispermedia.weights import read_checkpoint

HAVE_OP = ops.has_kernel("linear_f16w")
needs_op = pytest.mark.skipif(not HAVE_OP, reason="whispermedia._C has no linear_f16w kernel")


# -- the model ------------------------------------------------------------------------------

def _model(tmp_path, exact: bool, seed: int = 1):
    """A tiny random model with base's vocabulary; ``exact``: weights that float16 holds exactly."""
    dims = tiny_dims(80, 51865)
    sd = {k: v * 4 if "token_embedding" in k else v for k, v in random_state_dict(dims, seed=seed).items()}
    if exact:
        sd = {k: v.half().float() for k, v in sd.items()}
    path = write_openai(tmp_path / f"tiny-{exact}-{seed}.pt", dims, sd)
    return build_model(read_checkpoint(path), name="tiny-random")


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("packed"), exact=True)


def _decoder_linears(model):
    for block in model.decoder.blocks:
        yield from (block.attn.query, block.attn.key, block.attn.value, block.attn.out,
                    block.cross_attn.query, block.cross_attn.out, block.mlp[0], block.mlp[2])


@needs_op
def test_float16_storage_only_where_exact(packed, tmp_path):
    assert packed.dtype == torch.float32
    assert all(lin.weight.dtype == torch.float16 for lin in _decoder_linears(packed))
    assert packed.decoder.token_embedding.weight.dtype == torch.float16
    # what float16 would round stays float32, and so does everything outside the decode step
    assert all(p.dtype == torch.float32 for p in packed.encoder.parameters())
    for block in packed.decoder.blocks:
        assert block.cross_attn.key.weight.dtype == torch.float32
        assert block.attn.qkv_bias.dtype == torch.float32
    inexact = _model(tmp_path, exact=False)
    assert all(lin.weight.dtype == torch.float32 for lin in _decoder_linears(inexact))
    assert inexact.decoder.token_embedding.weight.dtype == torch.float32


def test_fused_qkv_views_and_state_dict(packed):
    attn = packed.decoder.blocks[0].attn
    n = attn.query.weight.shape[0]
    assert attn.qkv_weight.shape == (3 * n, n)
    assert attn.key.weight.data_ptr() == attn.qkv_weight[n:].data_ptr()
    assert torch.equal(attn.qkv_bias[n:2 * n], torch.zeros(n))
    keys = set(packed.state_dict())
    assert "decoder.blocks.0.attn.key.weight" in keys and not any("qkv" in k for k in keys)


def test_packed_logits_equal_the_plain_float32_model(packed):
    torch.manual_seed(0)
    mel = torch.randn(2, 80, 3000)
    tokens = torch.tensor([[50258, 50259, 50359, 1000, 2000, 3000]] * 2)
    with torch.no_grad():
        features = packed.embed_audio(mel)
        got = packed.decoder(tokens, packed.decoder.new_cache(features))
        packed.set_compute_type("float32")  # idempotent
        state = {k: v.float() for k, v in packed.state_dict().items()}
        ref_model = build_model_like(packed, state)
        want = ref_model.decoder(tokens, ref_model.decoder.new_cache(features))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def build_model_like(model, state):
    """The same weights in a plain float32 model (no float16 storage, no fused projections)."""
    ref = Whisper(model.dims, model.tokenizer, model.alignment_heads, model.suppress_tokens, name=model.name)
    ref.load_state_dict(state)
    ref.eval()
    return ref


def test_to_lays_the_weights_out_again(packed):
    model = build_model_like(packed, {k: v.float() for k, v in packed.state_dict().items()})
    model.set_compute_type("float32")
    model.to(torch.float64)  # converts each parameter on its own
    attn = model.decoder.blocks[0].attn
    assert attn.qkv_weight.dtype == torch.float64
    assert attn.key.weight.data_ptr() == attn.qkv_weight[attn.key.weight.shape[0]:].data_ptr()
    model.to(torch.float32)
    if HAVE_OP:
        assert attn.query.weight.dtype == torch.float16


def test_built_complete_and_laid_out_only_by_set_compute_type(packed):
    assert packed.tokenizer is not None and packed.tokenizer.eot == 50257
    assert packed.alignment_heads == tuple((layer, head) for layer in range(1, 2) for head in range(2))
    assert packed.name == "tiny-random"
    plain = build_model_like(packed, {k: v.float() for k, v in packed.state_dict().items()})
    assert plain.tokenizer is packed.tokenizer and plain.alignment_heads == packed.alignment_heads
    plain.to(torch.float64)  # no compute type set yet: the weights stay as they are, unfused
    assert plain.decoder.blocks[0].attn.qkv_weight is None
    assert plain.decoder.blocks[0].mlp[0].weight.dtype == torch.float64


def test_unknown_compute_type(packed):
    with pytest.raises(ValueError, match="compute type"):
        packed.set_compute_type("float8")


def test_rows_share_one_cross_cache_per_audio(packed):
    torch.manual_seed(1)
    features = packed.embed_audio(torch.randn(2, 80, 3000))
    tokens = torch.randint(0, 50000, (6, 5))
    with torch.no_grad():
        shared = packed.decoder.new_cache(features, rows_per_audio=3)
        assert shared.cross_k.shape[1] == 2
        got = packed.decoder(tokens, shared)
        repeated = packed.decoder.new_cache(features.repeat_interleave(3, dim=0))
        want = packed.decoder(tokens, repeated)
        assert torch.equal(shared.seqlens, repeated.seqlens)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # the word-timing path returns per-row cross-attention logits
        qk_shared, qk_repeated = [], []
        shared.reset()
        repeated.reset()
        packed.decoder(tokens, shared, cross_qk=qk_shared)
        packed.decoder(tokens, repeated, cross_qk=qk_repeated)
        for a, b in zip(qk_shared, qk_repeated):
            assert a.shape == (6, 2, 5, 1500)
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_logits_at_selects_positions(packed):
    features = packed.embed_audio(torch.randn(1, 80, 3000))
    tokens = torch.tensor([[50258, 50259, 50359, 400, 500]])
    with torch.no_grad():
        full = packed.decoder(tokens, packed.decoder.new_cache(features))
        some = packed.decoder(tokens, packed.decoder.new_cache(features), logits_at=(0, -1))
    assert some.shape == (1, 2, full.shape[-1])
    torch.testing.assert_close(some, full[:, [0, -1]], rtol=1e-5, atol=1e-5)


def test_decode_threads_restores_the_setting():
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with decoding.decode_threads(torch.device("cpu"), limit=1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with decoding.decode_threads(torch.device("cpu"), limit=None):
            assert torch.get_num_threads() == 2
        with pytest.raises(KeyError):
            with decoding.decode_threads(torch.device("cpu"), limit=1):
                raise KeyError
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


# -- against openai-whisper -----------------------------------------------------------------

@pytest.mark.parametrize("case", [dict(), dict(beam_size=3), dict(without_timestamps=True)], ids=str)
def test_packed_decode_equals_openai_whisper(packed, case):
    whisper = pytest.importorskip("whisper")
    from whisper.model import ModelDimensions
    from whisper.model import Whisper as OpenaiWhisper

    ref = OpenaiWhisper(ModelDimensions(**dataclasses.asdict(packed.dims)))
    ref.load_state_dict({k: v.float() for k, v in packed.state_dict().items()})
    ref.eval()
    torch.manual_seed(0)
    mel = torch.randn(1, 80, 3000)
    kwargs = dict(language="en", sample_len=64, **case)
    expected = whisper.decode(ref, mel, whisper.DecodingOptions(fp16=False, **kwargs))
    got = decode(packed, mel, DecodingOptions(**kwargs))
    for e, g in zip(expected, got):
        assert list(g.tokens) == e.tokens
        assert g.avg_logprob == pytest.approx(e.avg_logprob, abs=1e-4)
        assert g.no_speech_prob == pytest.approx(e.no_speech_prob, abs=1e-5)


# -- the opt-in compute types (rounded weights or activations) -----------------------------

def test_int8_compute_type(tmp_path):
    model = _model(tmp_path, exact=True)
    torch.manual_seed(2)
    mel = torch.randn(1, 80, 3000)
    tokens = torch.tensor([[50258, 50259, 50359, 1000, 2000, 3000]])
    with torch.no_grad():
        features = model.embed_audio(mel)
        want = model.decoder(tokens, model.decoder.new_cache(features))
        model.set_compute_type("int8")
        assert model.compute_type == "int8" and model.dtype == torch.float32
        for lin in _decoder_linears(model):
            assert lin.weight.dtype == torch.int8 and lin.weight_scale.shape == (lin.weight.shape[0],)
        emb = model.decoder.token_embedding
        assert emb.weight.dtype == torch.int8
        # per-row symmetric int8: every weight within half a step of its value
        attn = model.decoder.blocks[0].attn
        assert attn.qkv_scale is not None and attn.key.weight_scale.data_ptr() == attn.qkv_scale[64:].data_ptr()
        got = model.decoder(tokens, model.decoder.new_cache(features))
        assert (got - want).abs().max() < 0.05 * want.abs().max()
        assert isinstance(decode(model, mel[0], DecodingOptions(language="en", sample_len=8)).tokens, tuple)
        # the rounding is not undone in place
        with pytest.raises(ValueError, match="load the model again"):
            model.set_compute_type("float32")
        model.to(torch.float32)  # laid out again the same way
        assert emb.weight.dtype == torch.int8
        torch.testing.assert_close(model.decoder(tokens, model.decoder.new_cache(features)), got)


def test_bfloat16_compute_type_runs_the_encoder_in_bfloat16(tmp_path):
    model = _model(tmp_path, exact=True)
    mel = torch.randn(1, 80, 3000)
    with torch.no_grad():
        want = model.embed_audio(mel)
        model.set_compute_type("bfloat16")
        assert all(p.dtype == torch.bfloat16 for p in model.encoder.parameters())
        got = model.embed_audio(mel)
        assert got.dtype == torch.float32 and model.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=0.1, atol=0.1)
        assert model.decoder.blocks[0].mlp[0].weight.dtype == (torch.float16 if HAVE_OP else torch.float32)
    both = _model(tmp_path, exact=True, seed=3).set_compute_type("int8_bfloat16")
    assert both.decoder.blocks[0].mlp[0].weight.dtype == torch.int8
    assert both.encoder.conv1.weight.dtype == torch.bfloat16
