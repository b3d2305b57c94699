"""The checkpoint readers, on checkpoints these tests write themselves, and the model registry."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from checkpoint_writers import random_state_dict, tiny_dims, write_ct2, write_hf, write_openai
from whispermedia.errors import ModelError
from whispermedia.models import REGISTRY, build_model, list_models, load_model
from whispermedia.weights import hf_to_openai_name, load_ct2, read_checkpoint

# base (80 mels, 51865 tokens), tiny.en's vocabulary (51864), large-v3's (128 mels, 51866)
SHAPES = [(80, 51865), (80, 51864), (128, 51866)]


def _same_state(a, b, atol=0.0):
    assert set(a) == set(b), set(a) ^ set(b)
    for k in a:
        torch.testing.assert_close(a[k].float(), b[k].float(), atol=atol, rtol=0, msg=k)


@pytest.mark.parametrize("n_mels,n_vocab", SHAPES)
def test_openai_pt_round_trip(tmp_path, n_mels, n_vocab):
    dims = tiny_dims(n_mels, n_vocab)
    sd = random_state_dict(dims)
    ckpt = read_checkpoint(write_openai(tmp_path / "m.pt", dims, sd))
    assert ckpt.dims == dims
    _same_state(ckpt.state_dict, sd)


@pytest.mark.parametrize("n_mels,n_vocab", SHAPES)
def test_hf_safetensors_folder(tmp_path, n_mels, n_vocab):
    dims = tiny_dims(n_mels, n_vocab)
    sd = random_state_dict(dims)
    ckpt = read_checkpoint(write_hf(tmp_path / "hf", dims, sd, alignment_heads=[(1, 1)]))
    assert ckpt.dims == dims
    assert ckpt.alignment_heads == ((1, 1),)
    _same_state(ckpt.state_dict, sd)


@pytest.mark.parametrize("n_mels,n_vocab", SHAPES)
@pytest.mark.parametrize("split", [1, 3])
def test_ct2_model_bin(tmp_path, n_mels, n_vocab, split):
    dims = tiny_dims(n_mels, n_vocab)
    sd = random_state_dict(dims)
    ckpt = read_checkpoint(write_ct2(tmp_path / "ct2", dims, sd, split=split))
    assert ckpt.dims == dims
    assert ckpt.alignment_heads == ((1, 0), (1, 1))
    # stored as float16, so equal up to float16 rounding; the key projections have no bias
    _same_state(ckpt.state_dict, {k: v.half() for k, v in sd.items()})


@pytest.mark.parametrize("fmt,suppress_key", [("ct2", "suppress_ids"), ("hf", "suppress_tokens")])
def test_folder_formats_read_what_config_json_adds(tmp_path, fmt, suppress_key):
    """Both folder formats take the alignment heads, the model's own suppressed tokens (under
    each format's key) and the tokenizer.json beside the weights; absent, each is None."""
    dims = tiny_dims(80, 51865)
    sd = random_state_dict(dims)
    folder = (write_ct2(tmp_path / fmt, dims, sd) if fmt == "ct2"
              else write_hf(tmp_path / fmt, dims, sd, alignment_heads=[(1, 0), (1, 1)]))
    ckpt = read_checkpoint(folder)
    assert (ckpt.alignment_heads, ckpt.suppress_tokens, ckpt.tokenizer_json) == (((1, 0), (1, 1)), None, None)
    assert ckpt.source == str(folder)
    config = json.loads((folder / "config.json").read_text())
    config[suppress_key] = [1, 2, 7]
    config.pop("alignment_heads")
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    ckpt = read_checkpoint(folder)
    assert (ckpt.alignment_heads, ckpt.suppress_tokens, ckpt.tokenizer_json) == (None, (1, 2, 7), folder / "tokenizer.json")
    other_key = {"suppress_ids": "suppress_tokens", "suppress_tokens": "suppress_ids"}[suppress_key]
    (folder / "config.json").write_text(json.dumps({**config, suppress_key: [], other_key: [5]}))
    assert read_checkpoint(folder).suppress_tokens is None  # the other format's key is not read


def test_all_formats_give_the_same_model(tmp_path):
    dims = tiny_dims(128, 51866)
    sd = {k: v.half().float() for k, v in random_state_dict(dims).items()}  # exact in all formats
    mel = torch.randn(1, 128, 3000)
    tokens = torch.tensor([[50258, 50259, 50360]])
    outputs = []
    for ckpt in (read_checkpoint(write_openai(tmp_path / "m.pt", dims, sd)),
                 read_checkpoint(write_hf(tmp_path / "hf", dims, sd)),
                 read_checkpoint(write_ct2(tmp_path / "ct2", dims, sd))):
        model = build_model(ckpt, name="t")
        cache = model.decoder.new_cache(model.embed_audio(mel))
        outputs.append(model.decoder(tokens, cache))
    for out in outputs[1:]:
        torch.testing.assert_close(out, outputs[0])


def test_large_v3_vocabulary_layout(tmp_path):
    """100 languages: <|yue|> exists and every later special token moves up by one."""
    dims = tiny_dims(128, 51866)
    model = build_model(read_checkpoint(write_openai(tmp_path / "m.pt", dims, random_state_dict(dims))), name="t")
    tok = model.tokenizer
    assert model.num_languages == tok.num_languages == 100
    assert tok.language_token("yue") == 50358
    assert (tok.translate, tok.transcribe, tok.no_timestamps, tok.timestamp_begin) == (50359, 50360, 50364, 50365)
    assert tok.timestamp_begin + 1500 == dims.n_vocab - 1


def test_hf_names_cover_every_parameter():
    from checkpoint_writers import openai_to_hf

    sd = random_state_dict(tiny_dims())
    back = {hf_to_openai_name(k): k for k in openai_to_hf(sd)}
    back.pop(None)  # proj_out is tied
    assert set(back) == set(sd)


def test_truncated_ct2_names_the_problem(tmp_path):
    dims = tiny_dims()
    folder = write_ct2(tmp_path / "ct2", dims, random_state_dict(dims))
    data = (folder / "model.bin").read_bytes()
    (folder / "model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        read_checkpoint(folder)


def test_ct2_checksum_mismatch_is_refused(tmp_path):
    dims = tiny_dims()
    folder = write_ct2(tmp_path / "ct2", dims, random_state_dict(dims))
    path = folder / "model.bin"
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    load_ct2(folder, [path], [good])  # the right sum passes
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        load_ct2(folder, [path], ["0" * 64])


@pytest.mark.parametrize("make", ["missing", "empty", "text", "empty_dir"])
def test_bad_model_paths(tmp_path, make):
    path = tmp_path / "model.pt"
    if make == "empty":
        path.write_bytes(b"")
    elif make == "text":
        path.write_text("not a checkpoint")
    elif make == "empty_dir":
        path = tmp_path / "folder"
        path.mkdir()
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    assert str(path) in str(info.value)


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        load_model("nope")


def test_registry_lists_every_model_with_an_install_command():
    entries = {e.name: e for e in list_models()}
    assert set(entries) == set(REGISTRY)
    assert entries["base"].default
    for e in entries.values():
        assert e.install_command.startswith("pip install")
        assert e.installed == (e.path is not None)


def test_base_model_is_installed_and_verified():
    """The default install pulls the base model; its pinned sums hold."""
    entry = next(e for e in list_models() if e.name == "base")
    if not entry.installed:
        pytest.skip("base model packages not installed")
    model = load_model("base")
    assert model.dims.n_text_layer == 6 and model.is_multilingual
    assert model.alignment_heads[0] == (3, 1)


def test_damaged_registry_file_is_refused(tmp_path, monkeypatch):
    entry = next(e for e in list_models() if e.name == "tiny.en")
    if not entry.installed:
        pytest.skip("tiny.en not installed")
    import whispermedia.model_registry as model_registry
    import whispermedia.models as models

    copy = tmp_path / "pkg"
    shutil.copytree(entry.path, copy / "model")
    blob = bytearray((copy / "model" / "model.bin").read_bytes())
    blob[-100] ^= 0xFF  # one flipped byte deep in the weights: parses fine, sum differs
    (copy / "model" / "model.bin").write_bytes(bytes(blob))
    monkeypatch.setattr(model_registry, "_package_dir", lambda module: copy)
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        models.load_model("tiny.en")
