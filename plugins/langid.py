"""Built-in language detection, ``trylast`` so that any plugin can answer first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from whispermedia.hookspecs import hookimpl

if TYPE_CHECKING:
    import torch

    from whispermedia.tokenizer import Tokenizer
    from whispermedia.types import LanguageGuess


@hookimpl(trylast=True)
def detect_language(model: torch.nn.Module, mel: torch.Tensor, tokenizer: Tokenizer,
                    audio_features: Optional[torch.Tensor]) -> Optional[LanguageGuess]:
    # imported here: the model code (and torch) load only when a language is really detected
    import whispermedia

    # the window's encoder output when the caller has it: the same numbers without a second pass
    if audio_features is not None:
        return whispermedia.detect_language(model, tokenizer=tokenizer, audio_features=audio_features)[0]
    return whispermedia.detect_language(model, mel, tokenizer)[0]
