"""Transcripts for the layout tests: real sentences with word timings laid out like speech.

``timed_transcript(text, ...)`` times every word by its letters (``seconds_per_letter``), with
a short pause after commas, a longer one after sentences, and a long silence every
``long_pause_every`` sentences; segments end at sentence ends, as Whisper's usually do.
``fps`` puts a video frame rate on the transcript's media info; ``speech`` adds voice-activity
regions (each run of words without a pause, its first word's start moved ``early`` seconds into
the silence before it, as word timing tends to place it).
"""

from __future__ import annotations

from fractions import Fraction
from typing import List, Optional

from whispermedia.media_info import MediaInfo
from whispermedia.options import TranscribeOptions
from whispermedia.types import Segment, SpeechRegion, Transcript, TranscriptInfo, Word

TEXT = (
    "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for "
    "your country. He turned sharply, and faced Gregson across the table. And you always want to see it in "
    "the superlative degree. The committee will meet again on Thursday to discuss the new proposal for the "
    "harbour, which has been delayed twice already because the engineers could not agree on the cost. "
    "Doctor Margaret Hamilton explained that the software was not the problem. It was the schedule. "
    "We have not seen anything like this before, and I do not think we will see it again in our lifetime. "
    "Yes. No. Maybe later. Thank you all for coming tonight, it has been a pleasure to talk with every one "
    "of you about the future of this small but remarkable town."
)


def timed_transcript(text: str = TEXT, *, seconds_per_letter: float = 0.06, start: float = 1.2,
                     long_pause_every: int = 3, fps: Optional[Fraction] = None, speech: bool = False,
                     early: float = 0.4, language: str = "en", options: Optional[TranscribeOptions] = None
                     ) -> Transcript:
    words: List[Word] = []
    at = start
    sentences = 0
    runs: List[List[float]] = [[start, start]]
    segments: List[Segment] = []
    seg_words: List[Word] = []
    for token in text.split():
        duration = 0.12 + seconds_per_letter * sum(ch.isalnum() for ch in token)
        first_of_run = runs[-1][0] == at
        w_start = at - early if (speech and first_of_run) else at
        word = Word(" " + token, round(w_start, 3), round(at + duration, 3), 0.9)
        words.append(word)
        seg_words.append(word)
        at += duration
        runs[-1][1] = at
        pause = 0.0
        if token.endswith((".", "?", "!")):
            sentences += 1
            pause = 2.5 if sentences % long_pause_every == 0 else 0.45
        elif token.endswith(","):
            pause = 0.2
        if token.endswith((".", "?", "!")):
            segments.append(_segment(len(segments), seg_words))
            seg_words = []
        if pause >= 0.4:
            at += pause
            runs.append([at, at])
        else:
            at += pause + 0.03
    if seg_words:
        segments.append(_segment(len(segments), seg_words))
    media = None
    if fps is not None:
        media = MediaInfo(path="talk.mp4", duration=at + 2.0, audio_streams=(), has_video=True,
                          container="mov,mp4,m4a,3gp,3g2,mj2", frame_rate=fps)
    regions = tuple(SpeechRegion(round(a, 3), round(b, 3)) for a, b in runs if b > a) if speech else None
    info = TranscriptInfo(language=language, language_probability=None, duration=at + 2.0, task="transcribe",
                          model="test", source=None, options=options or TranscribeOptions(word_timestamps=True),
                          media=media, speech=regions)
    return Transcript(info=info, segments=tuple(segments))


def _segment(id: int, words: List[Word]) -> Segment:
    return Segment(id=id, seek=0, start=words[0].start, end=words[-1].end, text="".join(w.word for w in words),
                   tokens=(), temperature=0.0, avg_logprob=-0.2, compression_ratio=1.2, no_speech_prob=0.01,
                   words=tuple(words))
