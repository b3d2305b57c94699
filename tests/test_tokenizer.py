"""The tokenizer: special-token layout, language table, text round trips, word splitting."""

from __future__ import annotations

import json

import pytest

from whispermedia.models import REGISTRY, _locate
from whispermedia.tokenizer import LANGUAGES, load_tokenizer, normalize_language


def _tokenizer_json(name):
    path = _locate(REGISTRY[name].tokenizer)
    if path is None:
        pytest.skip(f"{name} model package not installed")
    return path


@pytest.fixture(scope="module")
def multilingual():
    return load_tokenizer(_tokenizer_json("base"), 51865)


@pytest.fixture(scope="module")
def english():
    return load_tokenizer(_tokenizer_json("tiny.en"), 51864)


@pytest.mark.parametrize("name,n_vocab", [("base", 51865), ("tiny.en", 51864)])
def test_special_tokens_match_the_models_own_tokenizer_json(name, n_vocab):
    """Our layout of the special tokens gives the ids the model's tokenizer.json lists."""
    path = _tokenizer_json(name)
    tok = load_tokenizer(path, n_vocab)
    added = {t["content"]: t["id"] for t in json.loads(path.read_text())["added_tokens"]}
    assert added["<|endoftext|>"] == tok.eot
    assert added["<|startoftranscript|>"] == tok.sot
    assert added["<|translate|>"] == tok.translate
    assert added["<|transcribe|>"] == tok.transcribe
    assert added["<|startoflm|>"] == tok.sot_lm
    assert added["<|startofprev|>"] == tok.sot_prev
    assert added["<|nocaptions|>"] == tok.no_speech
    assert added["<|notimestamps|>"] == tok.no_timestamps
    for code in tok.all_language_codes:
        # older Hugging Face exports spell Hebrew with its withdrawn code "iw"
        spelled = f"<|{code}|>" if f"<|{code}|>" in added else f"<|{ {'he': 'iw'}.get(code, code)}|>"
        assert added[spelled] == tok.language_token(code)
    assert tok.timestamp_begin + 1500 == n_vocab - 1


def test_language_table_has_whispers_order():
    codes = list(LANGUAGES)
    assert len(codes) == 100 and codes[:3] == ["en", "zh", "de"] and codes[-1] == "yue"
    try:
        from whisper.tokenizer import LANGUAGES as reference
    except ImportError:
        return
    assert LANGUAGES == reference


def test_sot_sequences(multilingual, english):
    fr = multilingual.with_language_and_task("fr", "translate")
    assert fr.sot_sequence == (50258, fr.language_token("fr"), fr.translate)
    assert english.with_language_and_task("en", "transcribe").sot_sequence == (english.sot,)


def test_text_round_trip(multilingual):
    text = " Ask not what your country can do for you — où est la café? 日本語"
    ids = multilingual.encode(text)
    assert all(i < multilingual.eot for i in ids)
    assert multilingual.decode(ids) == text
    assert multilingual.decode(ids + [multilingual.timestamp_begin]) == text  # timestamps are dropped
    # other special tokens are spelled out, as openai-whisper does
    assert multilingual.decode([multilingual.no_timestamps] + ids) == "<|notimestamps|>" + text


def test_encoding_matches_tiktoken_reference(multilingual):
    try:
        from whisper.tokenizer import get_tokenizer
    except ImportError:
        pytest.skip("openai-whisper not installed")
    ref = get_tokenizer(True, num_languages=99)
    texts = [" Hello world.", " And so, my fellow Americans", " ça-va? 123,456", " ♪♪ [music]",
             " the there then tea", " It's a beautiful day, isn't it? 東京で会いましょう。"]
    for text in texts:
        assert multilingual.encode(text) == ref.encode(text)
    assert sorted(multilingual.non_speech_tokens) == sorted(ref.non_speech_tokens)


def test_timestamps_render(multilingual):
    t0 = multilingual.timestamp_begin
    ids = [t0] + multilingual.encode(" Hi") + [t0 + 54]
    assert multilingual.decode_with_timestamps(ids) == "<|0.00|> Hi<|1.08|>"


def test_word_split(multilingual):
    tok = multilingual.with_language_and_task("en", "transcribe")
    words, tokens = tok.split_to_word_tokens(tok.encode(" Hello, world again"))
    assert words == [" Hello", ",", " world", " again"]
    assert sum(len(t) for t in tokens) == len(tok.encode(" Hello, world again"))


def test_normalize_language():
    assert normalize_language("English") == "en"
    assert normalize_language("auto") is None and normalize_language(None) is None
    assert normalize_language("mandarin") == "zh"
    with pytest.raises(ValueError, match="unsupported language"):
        normalize_language("klingon")
