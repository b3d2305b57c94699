"""Whisper's tokenizer: byte-level BPE from a model's ``tokenizer.json``, plus Whisper's special tokens.

The BPE part (ids below ``<|endoftext|>``) comes from the ``tokenizers`` library. The special
tokens are laid out here from the vocabulary size, the way the model was trained, so a checkpoint
with 51866 tokens (large-v3: 100 languages) gets the right ids even when its BPE file came from a
99-language model:

    eot, sot, <|lang|> x num_languages, translate, transcribe, startoflm, startofprev,
    nospeech, notimestamps, then 1501 timestamps <|0.00|> ... <|30.00|>
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

# Whisper's languages in token order; the order fixes the ids.
LANGUAGES: Dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}

# names and common aliases -> code, for users who type "English" or "mandarin"
TO_LANGUAGE_CODE: Dict[str, str] = {
    **{name: code for code, name in LANGUAGES.items()},
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht",
    "letzeburgesch": "lb", "pushto": "ps", "panjabi": "pa", "moldavian": "ro",
    "moldovan": "ro", "sinhalese": "si", "castilian": "es", "mandarin": "zh",
}

N_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|> in 0.02 s steps
TIME_PRECISION = 0.02  # seconds per timestamp token


def normalize_language(language: Optional[str]) -> Optional[str]:
    """A code from a code, a name or an alias (case-insensitive); None and "auto" mean detect."""
    if language is None or language.lower() == "auto":
        return None
    key = language.lower()
    if key in LANGUAGES:
        return key
    if key in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[key]
    raise ValueError(f"unsupported language: {language!r}")


@dataclass(frozen=True)
class Tokenizer:
    """Encodes text and decodes ids for one Whisper vocabulary, task and language.

    ``sot_sequence`` is the prompt that starts every window: ``(sot, <|lang|>, <|task|>)`` for
    multilingual models, ``(sot,)`` for English-only ones (openai-whisper's layout).
    """

    bpe: "object" = field(repr=False, compare=False)  # tokenizers.Tokenizer
    n_vocab: int
    multilingual: bool
    num_languages: int
    language: Optional[str] = None
    task: Optional[str] = None

    # -- special tokens --------------------------------------------------------------------
    @property
    def eot(self) -> int:
        return 50257 if self.multilingual else 50256

    @property
    def sot(self) -> int:
        return self.eot + 1

    def language_token(self, language: str) -> int:
        codes = self.all_language_codes
        if language not in codes:
            raise KeyError(f"language {language!r} not in this model's vocabulary")
        return self.sot + 1 + codes.index(language)

    @property
    def all_language_codes(self) -> Tuple[str, ...]:
        return tuple(LANGUAGES)[: self.num_languages]

    @property
    def all_language_tokens(self) -> Tuple[int, ...]:
        return tuple(range(self.sot + 1, self.sot + 1 + self.num_languages))

    @property
    def translate(self) -> int:
        return self.sot + 1 + self.num_languages

    @property
    def transcribe(self) -> int:
        return self.translate + 1

    @property
    def sot_lm(self) -> int:
        return self.translate + 2

    @property
    def sot_prev(self) -> int:
        return self.translate + 3

    @property
    def no_speech(self) -> int:
        return self.translate + 4

    @property
    def no_timestamps(self) -> int:
        return self.translate + 5

    @property
    def timestamp_begin(self) -> int:
        return self.no_timestamps + 1

    @property
    def sot_sequence(self) -> Tuple[int, ...]:
        seq = [self.sot]
        if self.multilingual:
            if self.language is not None:
                seq.append(self.language_token(self.language))
            if self.task is not None:
                seq.append(self.transcribe if self.task == "transcribe" else self.translate)
        return tuple(seq)

    @property
    def sot_sequence_including_notimestamps(self) -> Tuple[int, ...]:
        return self.sot_sequence + (self.no_timestamps,)

    def with_language_and_task(self, language: Optional[str], task: Optional[str]) -> "Tokenizer":
        if not self.multilingual:
            language, task = "en", "transcribe"
        return Tokenizer(self.bpe, self.n_vocab, self.multilingual, self.num_languages, language, task)

    # -- text ------------------------------------------------------------------------------
    def encode(self, text: str) -> List[int]:
        return list(self.bpe.encode(text, add_special_tokens=False).ids)

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of the tokens: timestamps dropped, other special tokens spelled out by name
        (as openai-whisper's decode does, so texts compare equal)."""
        pieces: List[str] = []
        run: List[int] = []
        for t in tokens:
            if t < self.eot:
                run.append(t)
            elif t < self.timestamp_begin:
                if run:
                    pieces.append(self.bpe.decode(run, skip_special_tokens=False))
                    run = []
                pieces.append(self.special_token_names[t - self.eot])
        if run:
            pieces.append(self.bpe.decode(run, skip_special_tokens=False))
        return "".join(pieces)

    @functools.cached_property
    def special_token_names(self) -> Tuple[str, ...]:
        """Names of the ids from ``eot`` up to ``timestamp_begin``, in id order."""
        languages = tuple(f"<|{code}|>" for code in self.all_language_codes)
        return ("<|endoftext|>", "<|startoftranscript|>", *languages, "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>")

    def decode_with_timestamps(self, tokens: Sequence[int]) -> str:
        """Text with timestamp tokens rendered as ``<|1.08|>`` (openai's debugging view)."""
        out: List[str] = []
        run: List[int] = []
        for t in tokens:
            if t >= self.timestamp_begin:
                if run:
                    out.append(self.decode(run))
                    run = []
                out.append(f"<|{(t - self.timestamp_begin) * TIME_PRECISION:.2f}|>")
            elif t < self.eot:
                run.append(t)
        if run:
            out.append(self.decode(run))
        return "".join(out)

    def decode_token_bytes(self, token: int) -> bytes:
        """The raw bytes of one BPE token (a word piece may be part of a UTF-8 character)."""
        piece = self.bpe.id_to_token(token)
        decoder = _byte_decoder()
        return bytes(decoder[c] for c in piece)

    # -- token sets the decoder uses --------------------------------------------------------
    @functools.cached_property
    def non_speech_tokens(self) -> Tuple[int, ...]:
        """Tokens of symbols that are never speech, suppressed by default.

        Speaker tags and music notes as the model saw them in training captions; the hyphen
        and apostrophe are kept (words need them) except in their leading-space forms.
        """
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
        miscellaneous = set("♩♪♫♬♭♮♯")
        assert all(0x2640 <= ord(c) <= 0x267F for c in miscellaneous)
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + list(miscellaneous):
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in miscellaneous:
                    result.add(tokens[0])
        return tuple(sorted(result))

    def split_to_word_tokens(self, tokens: Sequence[int]) -> Tuple[List[str], List[List[int]]]:
        """Words and their tokens: on spaces and punctuation, or per character for languages
        written without spaces."""
        if self.language in {"zh", "ja", "th", "lo", "my", "yue"}:
            return self._split_by_unicode(tokens)
        return self._split_by_spaces(tokens)

    def _split_by_unicode(self, tokens: Sequence[int]) -> Tuple[List[str], List[List[int]]]:
        words: List[str] = []
        word_tokens: List[List[int]] = []
        current: List[int] = []
        for t in tokens:
            current.append(t)
            text = self.decode_with_timestamps(current)
            if "\ufffd" not in text:  # a complete UTF-8 sequence
                words.append(text)
                word_tokens.append(current)
                current = []
        return words, word_tokens

    def _split_by_spaces(self, tokens: Sequence[int]) -> Tuple[List[str], List[List[int]]]:
        subwords, subword_tokens = self._split_by_unicode(tokens)
        words: List[str] = []
        word_tokens: List[List[int]] = []
        for sub, sub_tokens in zip(subwords, subword_tokens):
            special = sub_tokens[0] >= self.eot
            with_space = sub.startswith(" ")
            punctuation = sub.strip() in string.punctuation
            if special or with_space or punctuation or not words:
                words.append(sub)
                word_tokens.append(list(sub_tokens))
            else:
                words[-1] += sub
                word_tokens[-1].extend(sub_tokens)
        return words, word_tokens


@functools.lru_cache(maxsize=1)
def _byte_decoder() -> Dict[str, int]:
    """GPT-2's byte-level alphabet: printable stand-ins -> the bytes they stand for."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _merges_in_rank_order(vocab: Dict[str, int], merges: List, n_bpe: int) -> List[Tuple[str, str]]:
    """The merge list rebuilt so that merge i produces token ``256 + i``.

    Whisper's byte-level BPE (GPT-2's, and the multilingual one) numbers every merged token by
    its merge rank, so the vocabulary alone fixes the order. Some converted ``tokenizer.json``
    files lack merges (the base model's has 49,999 of 50,001: ``Ġ t`` among them, so " the"
    encodes as two tokens); this restores them, keeping every pair the file does give.
    """
    pairs = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]
    by_result = {a + b: (a, b) for a, b in pairs}
    id_to_token = {i: t for t, i in vocab.items()}
    rebuilt = []
    for token_id in range(256, n_bpe):
        token = id_to_token[token_id]
        if len(token) < 2:  # the multilingual vocabulary's empty token 50256: no merge makes it
            continue
        pair = by_result.get(token)
        if pair is None:
            pair = next((token[:k], token[k:]) for k in range(1, len(token))
                        if vocab.get(token[:k], n_bpe) < token_id and vocab.get(token[k:], n_bpe) < token_id)
        rebuilt.append(pair)
    return rebuilt


def load_tokenizer(tokenizer_json: Path, n_vocab: int, language: Optional[str] = None,
                   task: Optional[str] = None) -> Tokenizer:
    """Tokenizer for a model with ``n_vocab`` tokens, its BPE read from ``tokenizer_json``.

    A file that is not a Hugging Face BPE tokenizer with Whisper's byte-level vocabulary (no
    ``model``, no ``vocab`` or ``merges``, a token the BPE library rejects) is a ``ModelError``
    naming it, found here rather than at the first ``encode``.
    """
    import json

    from tokenizers import Tokenizer as BPE

    from .errors import ModelError
    from .weights import read_json_object

    multilingual = n_vocab >= 51865
    num_languages = n_vocab - 51765 - int(multilingual)
    spec = read_json_object(Path(tokenizer_json))
    n_bpe = 50257 if multilingual else 50256  # ids below <|endoftext|>
    try:
        model = spec["model"]
        vocab, merges = model["vocab"], model["merges"]
        if not isinstance(vocab, dict) or not isinstance(merges, list):
            raise TypeError("'vocab' must be an object and 'merges' a list")
        id_to_token = {i: t for t, i in vocab.items()}
        if len(merges) != sum(len(id_to_token.get(i, "")) >= 2 for i in range(256, n_bpe)):
            model["merges"] = [list(p) for p in _merges_in_rank_order(vocab, merges, n_bpe)]
        bpe = BPE.from_str(json.dumps(spec))
        tok = Tokenizer(bpe, n_vocab, multilingual, num_languages)
        tok.encode(" a")  # the byte-level BPE works at all
    except KeyError as e:
        raise ModelError(f"not Whisper's BPE tokenizer: {e.args[0]!r} is missing", str(tokenizer_json)) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # the Rust library's own errors (a panic is a BaseException)
        raise ModelError(f"not a usable BPE tokenizer ({type(e).__name__}: {str(e)[:200]})",
                         str(tokenizer_json)) from None
    return tok.with_language_and_task(language, task) if (language or task) else tok
