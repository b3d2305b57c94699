"""The hallucination defence after decoding: which segments not to write, and why.

Layers, each reported (``types.Suppression``): before this module, the VAD keeps non-speech
from being decoded at all (``whispermedia.speech``), openai's fallback ladder and no-speech gate
run in the loop, and ``hallucination_silence_threshold`` in word timing. Here, per segment:

- ``non-speech-phrase``: the text, normalised (case, punctuation, spaces), is one of the model's
  typical outputs on non-speech (``nonspeech_phrases.PHRASES``, harvested by
  ``bench/harvest_nonspeech.py`` from generated noise, tones and music through each model);
- ``repetition-loop``: one phrase of 1-8 words repeated at least 4 times in a row makes up most
  of the segment (the "you you you ..." and "Thank you. Thank you. ..." loops);
- ``repeated-segment``: the same text (3 words or more) as each of the two segments written
  before it, all from different windows: a loop across windows.

The first two apply only to a *doubted* segment: less than half of it inside a speech region
(when the VAD ran), or a mean token log-probability under ``logprob_threshold``, or a no-speech
probability over ``no_speech_threshold``. "Thank you." said in a conversation, inside speech and
decoded with confidence, is written.
"""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING, Deque, Optional, Tuple

from .types import Segment

if TYPE_CHECKING:
    from .options import TranscribeOptions
    from .speech import SpeechPlan

__all__ = ["Defence", "normalize", "loop_share"]

LOOP_MIN_REPEATS = 4  # a phrase said 4 times in a row is a loop ("no, no, no" is 3)
LOOP_SHARE = 0.6  # ... when its repeats are most of the segment's words
REPEATED_SEGMENTS = 3  # the third window in a row with the same text
MIN_REPEATED_WORDS = 3  # ... of three words at least ("Yes." thrice is conversation)

_PUNCT = re.compile(r"[^\w\s']+", re.UNICODE)


def normalize(text: str) -> str:
    """Lower case, punctuation and runs of spaces dropped: ``" Thank you!!"`` → ``"thank you"``."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def loop_share(words: Tuple[str, ...]) -> float:
    """The largest share of ``words`` taken by one phrase of 1-8 words repeated at least
    ``LOOP_MIN_REPEATS`` times back to back (0.0 when there is none)."""
    n, best = len(words), 0
    for size in range(1, 9):
        if size * LOOP_MIN_REPEATS > n:
            break
        i = 0
        while i + size <= n:
            reps = 1
            while words[i + reps * size:i + (reps + 1) * size] == words[i:i + size]:
                reps += 1
            if reps >= LOOP_MIN_REPEATS:
                best = max(best, reps * size)
                i += reps * size
            else:
                i += 1
    return best / n if n else 0.0


class Defence:
    """Judges each segment before it is written (``judge``); remembers the last ones written,
    for loops across windows. One per transcription."""

    def __init__(self, options: "TranscribeOptions", plan: "SpeechPlan", model_name: str):
        from .nonspeech_phrases import phrases_for

        self.options = options
        self.plan = plan
        self.phrases = phrases_for(model_name)
        self._recent: Deque[Tuple[str, int]] = deque(maxlen=REPEATED_SEGMENTS - 1)  # (text, seek)

    def doubted(self, segment: Segment) -> bool:
        """Whether the VAD or the decoder's own numbers doubt that ``segment`` is speech."""
        opts = self.options
        if self.plan.regions is not None and self.plan.inside(segment.start, segment.end) < 0.5:
            return True
        if opts.logprob_threshold is not None and segment.avg_logprob < opts.logprob_threshold:
            return True
        return opts.no_speech_threshold is not None and segment.no_speech_prob > opts.no_speech_threshold

    def judge(self, segment: Segment) -> Optional[str]:
        """The reason not to write ``segment`` (see the module), or None to write it."""
        text = normalize(segment.text)
        if not text:
            return None
        words = tuple(text.split())
        doubted = self.doubted(segment)
        if doubted and text in self.phrases:
            return "non-speech-phrase"
        if doubted and loop_share(words) >= LOOP_SHARE:
            return "repetition-loop"
        if (len(words) >= MIN_REPEATED_WORDS and len(self._recent) == self._recent.maxlen
                and all(t == text for t, _ in self._recent)
                and len({s for _, s in self._recent} | {segment.seek}) == REPEATED_SEGMENTS):
            return "repeated-segment"
        return None

    def written(self, segment: Segment) -> None:
        """Tell the defence that ``segment`` was written (the history loops are judged against)."""
        text = normalize(segment.text)
        if text:
            self._recent.append((text, segment.seek))
