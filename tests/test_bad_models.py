"""Malformed model files, made by the tests: each is a ``ModelError`` naming the file and the
problem, found at load (``wm run``: exit 4, one line, nothing written).

The checkpoints are the tiny random ones of ``checkpoint_writers``; each test breaks one thing.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from checkpoint_writers import random_state_dict, tiny_dims, write_ct2, write_hf, write_openai
from whispermedia.errors import ModelError
from whispermedia.models import build_model, load_model
from whispermedia.weights import Checkpoint, check_finite, read_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def _ct2(tmp_path: Path, **kwargs) -> Path:
    dims = tiny_dims()
    return write_ct2(tmp_path / "model", dims, random_state_dict(dims), **kwargs)


def _patch_bin(folder: Path, old: bytes, new: bytes) -> None:
    path = folder / "model.bin"
    blob = path.read_bytes()
    assert blob.count(old) >= 1 and len(old) == len(new)
    path.write_bytes(blob.replace(old, new, 1))


def _load_error(path: Path) -> str:
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_config_json_nested_too_deep(tmp_path):
    folder = _ct2(tmp_path)
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    message = _load_error(folder)
    assert message.startswith(str(folder / "config.json") + ": ") and "nested too deep" in message


@pytest.mark.parametrize("text,problem", [
    ("{\"alignment_heads\": ", "invalid JSON"),
    ("[1, 2]", "an object was expected"),
    ("{\"alignment_heads\": 7}", "alignment_heads: expected a list"),
    ("{\"suppress_ids\": [\"a\"]}", "suppress_ids: expected a list of token ids"),
    ("{\"suppress_ids\": [99999999]}", "outside the vocabulary"),
])
def test_config_json_malformed(tmp_path, text, problem):
    folder = _ct2(tmp_path)
    (folder / "config.json").write_text(text)
    message = _load_error(folder)
    assert message.startswith(str(folder / "config.json") + ": ") and problem in message


def test_config_json_not_utf8(tmp_path):
    folder = _ct2(tmp_path)
    (folder / "config.json").write_bytes(b"{\"x\": \"\xff\"}")
    assert "not UTF-8" in _load_error(folder)


def test_variable_name_not_utf8(tmp_path):
    folder = _ct2(tmp_path)
    _patch_bin(folder, b"encoder/conv1/weight", b"\xffncoder/conv1/weight")
    message = _load_error(folder)
    assert message.startswith(str(folder / "model.bin") + ": ") and "is not UTF-8" in message


def test_renamed_variable(tmp_path):
    folder = _ct2(tmp_path)
    _patch_bin(folder, b"encoder/conv1/weight", b"encoder/convX/weight")
    message = _load_error(folder)
    assert message.startswith(str(folder / "model.bin") + ": ")
    assert "no variable 'encoder/conv1/weight'" in message


def test_variable_claiming_more_bytes_than_the_file_has(tmp_path):
    """A record's byte count is checked against what is left before it is read."""
    folder = _ct2(tmp_path)
    name = b"encoder/conv1/bias\0"
    blob = bytearray((folder / "model.bin").read_bytes())
    at = blob.index(name) + len(name)
    rank = blob[at]
    count_at = at + 1 + 4 * rank + 1  # rank, dims, dtype id, then the byte count
    blob[count_at:count_at + 4] = struct.pack("<I", 0xFFFFFFF0)
    (folder / "model.bin").write_bytes(bytes(blob))
    assert f"variable encoder/conv1/bias: {0xFFFFFFF0} bytes for shape" in _load_error(folder)


def test_tokenizer_json_without_its_model(tmp_path):
    folder = _ct2(tmp_path)
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "added_tokens": []}))
    message = _load_error(folder)
    assert message == f"{folder / 'tokenizer.json'}: not Whisper's BPE tokenizer: 'model' is missing"


def test_tokenizer_json_nested_too_deep(tmp_path):
    folder = _ct2(tmp_path)
    (folder / "tokenizer.json").write_text("{\"model\": " + "[" * 100_000 + "]" * 100_000 + "}")
    message = _load_error(folder)
    assert message.startswith(str(folder / "tokenizer.json") + ": ") and "nested too deep" in message


@pytest.mark.parametrize("heads", [[[9, 0]], [[1, 5]], [[-1, 0]]])
def test_alignment_heads_out_of_range(tmp_path, heads):
    folder = _ct2(tmp_path, alignment_heads=heads)
    message = _load_error(folder)
    assert message.startswith(str(folder / "config.json") + ": ")
    assert "out of range: the decoder has 2 layers of 2 heads" in message


def test_alignment_heads_of_a_hand_made_checkpoint_are_checked():
    dims = tiny_dims()
    ckpt = Checkpoint(dims, random_state_dict(dims), alignment_heads=((0, 7),), source="mine")
    with pytest.raises(ModelError, match=r"^mine: alignment head \(0, 7\) is out of range"):
        build_model(ckpt, name="mine")


@pytest.mark.parametrize("fmt", ["ct2", "pt", "hf"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_weights_are_refused(tmp_path, fmt, bad):
    dims = tiny_dims()
    sd = random_state_dict(dims)
    sd["decoder.blocks.1.mlp.0.weight"][3, :5] = bad
    if fmt == "ct2":
        path, named = write_ct2(tmp_path / "m", dims, sd), tmp_path / "m" / "model.bin"
    elif fmt == "pt":
        path = named = write_openai(tmp_path / "m.pt", dims, sd)
    else:
        path, named = write_hf(tmp_path / "m", dims, sd), tmp_path / "m" / "model.safetensors"
    message = _load_error(path)
    assert message.startswith(f"{named}: weight ")
    assert "5 of its 16384 values are NaN or infinite" in message


def test_finite_check_passes_good_weights_and_ignores_integers():
    check_finite({"a": torch.randn(10), "b": torch.tensor([2 ** 31 - 1], dtype=torch.int32)}, "x")


@pytest.mark.parametrize("change,problem", [
    (dict(n_audio_ctx=100), "n_audio_ctx = 100"),
    (dict(n_text_head=3), "not divisible by n_text_head = 3"),
    (dict(n_vocab=5), "n_vocab = 5"),
    (dict(n_text_layer=0), "n_text_layer = 0 is not a positive whole number"),
])
def test_impossible_dimensions_in_a_pt(tmp_path, change, problem):
    import dataclasses

    dims = tiny_dims()
    path = tmp_path / "m.pt"
    torch.save({"dims": {**dataclasses.asdict(dims), **change}, "model_state_dict": random_state_dict(dims)}, path)
    message = _load_error(path)
    assert message.startswith(f"{path}: ") and problem in message


def test_pt_with_unknown_dims_keys(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"dims": {"n_mels": 80, "bogus": 1}, "model_state_dict": {}}, path)
    assert "malformed 'dims'" in _load_error(path)


def _wav(path: Path, seconds: float = 1.0) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return path


def _nan_weights(tmp_path: Path) -> Path:
    dims = tiny_dims()
    sd = random_state_dict(dims)
    sd["encoder.conv1.weight"][0, 0, 0] = math.nan
    return write_ct2(tmp_path / "model", dims, sd)


def _break(tmp_path: Path, how: str):
    """A broken model folder and the one line ``wm run`` must print for it."""
    if how == "nan":
        folder = _nan_weights(tmp_path)
        return folder, (f"{folder / 'model.bin'}: weight encoder.conv1.weight: 1 of its 15360 values are NaN "
                        "or infinite; the file is damaged")
    folder = _ct2(tmp_path, alignment_heads=[[5, 0]] if how == "heads" else ((1, 0), (1, 1)))
    if how == "nested":
        (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
        return folder, f"{folder / 'config.json'}: invalid JSON (nested too deep to be a model's file)"
    if how == "utf8":
        _patch_bin(folder, b"encoder/conv1/weight", b"\xffncoder/conv1/weight")
        return folder, None  # the byte offset is the writer's business
    if how == "renamed":
        _patch_bin(folder, b"encoder/conv1/weight", b"encoder/convX/weight")
        return folder, (f"{folder / 'model.bin'}: no variable 'encoder/conv1/weight': not a complete Whisper "
                        "model (renamed or missing?)")
    if how == "tokenizer":
        (folder / "tokenizer.json").write_text("{}")
        return folder, f"{folder / 'tokenizer.json'}: not Whisper's BPE tokenizer: 'model' is missing"
    assert how == "heads"
    return folder, (f"{folder / 'config.json'}: alignment head (5, 0) is out of range: the decoder has 2 layers "
                    "of 2 heads")


@pytest.mark.parametrize("how", ["nested", pytest.param("utf8", marks=pytest.mark.slow),
                                 pytest.param("renamed", marks=pytest.mark.slow),
                                 pytest.param("tokenizer", marks=pytest.mark.slow),
                                 pytest.param("heads", marks=pytest.mark.slow),
                                 pytest.param("nan", marks=pytest.mark.slow)])
def test_wm_run_with_a_bad_model_exits_4_with_one_line(tmp_path, how):
    """Through the real entry point: exit 4, the one line names the file, nothing is written."""
    folder, line = _break(tmp_path, how)
    audio = _wav(tmp_path / "in.wav")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "whispermedia", "run", "--model", str(folder), "-o", str(out),
                           "--progress", "none", str(audio)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "WM_LOAD_PLUGINS": ""})
    assert proc.returncode == 4, proc.stderr
    (got,) = proc.stderr.splitlines()
    if line is None:
        assert got.startswith(f"wm: {folder / 'model.bin'}: a variable name after byte ") and "is not UTF-8" in got
    else:
        assert got == f"wm: {line}"
    assert proc.stdout == ""
    assert not out.exists()  # -o is made only when something is written into it
