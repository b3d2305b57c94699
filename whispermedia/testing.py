"""A kit for testing plugins: a fresh plugin host, and a small transcript to render.

    import my_plugin
    from whispermedia.output import write
    from whispermedia.testing import plugin_host, sample_transcript

    def test_my_format(tmp_path):
        with plugin_host(my_plugin) as host:
            assert host.output_formats()["my-format"].plugin == "my_plugin"
            out = write(sample_transcript(), "my-format", tmp_path / "out.txt")
            assert out.read_text(encoding="utf-8").startswith("...")

See docs/plugins.md ("Testing a plugin").
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence, Tuple

from .options import TranscribeOptions
from .plugins import PluginHost, use_host
from .types import Segment, Transcript, TranscriptInfo, Word

__all__ = ["plugin_host", "sample_transcript"]


@contextmanager
def plugin_host(*plugins: object, entry_points: bool = False, strict: bool = True) -> Iterator[PluginHost]:
    """A freshly loaded host with the built-ins and ``plugins`` (modules, classes or
    instances with hookimpls) registered, which :func:`whispermedia.plugins.get_host`
    also returns inside the ``with`` block (so ``whispermedia.output.write`` finds your
    format by name).

    ``entry_points=False`` leaves installed plugins out, so the test sees only what it
    names. ``strict=True`` makes any plugin failure raise :class:`~whispermedia.errors.PluginFailed`
    instead of being recorded, which is what a test of one's own plugin wants.
    """
    host = PluginHost(strict=strict)
    host.load(entry_points=entry_points)
    for plugin in plugins:
        host.register(plugin)
    with use_host(host):
        yield host


def _segment(id: int, seek: int, words: Sequence[Tuple[str, float, float, float]], tokens: Tuple[int, ...],
             avg_logprob: float, compression_ratio: float, no_speech_prob: float) -> Segment:
    word_records = tuple(Word(text, start, end, p) for text, start, end, p in words)
    return Segment(
        id=id,
        seek=seek,
        start=word_records[0].start,
        end=word_records[-1].end,
        text="".join(w.word for w in word_records),  # the invariant real transcripts keep
        tokens=tokens,
        temperature=0.0,
        avg_logprob=avg_logprob,
        compression_ratio=compression_ratio,
        no_speech_prob=no_speech_prob,
        words=word_records,
    )


def sample_transcript() -> Transcript:
    """A small, realistic transcript that exercises what formats get wrong.

    Four segments with word timings: text needing escapes (``&``, ``<``, ``-->``), a
    non-ASCII name, an end time of 6.9999999 s (which must print as ``00:00:07,000``, not
    ``00:00:06,999`` or ``00:00:06,1000``) and a segment past the one-hour mark. The token ids
    are placeholders, not a real tokenizer's.
    """
    segments = (
        _segment(0, 0, [
            (" Welcome", 0.0, 0.42, 0.91), (" back", 0.42, 0.7, 0.98), (" to", 0.7, 0.84, 0.99),
            (" the", 0.84, 0.98, 0.99), (" workshop.", 0.98, 2.48, 0.95),
        ], (50364, 5678, 646, 281, 264, 13541, 13, 50488), -0.21, 1.08, 0.012),
        _segment(1, 0, [
            (" Press", 2.48, 2.9, 0.97), (" <Enter>", 2.9, 3.5, 0.81), (" &", 3.5, 3.72, 0.64),
            (" then", 3.72, 4.0, 0.96), (" type", 4.0, 4.38, 0.98), (" -->", 4.38, 5.1, 0.55),
            (" to", 5.1, 5.3, 0.99), (" continue.", 5.3, 6.9999999, 0.93),
        ], (50488, 6229, 366, 16257, 29, 1033, 550, 2010, 14095, 281, 2354, 13, 50714), -0.44, 1.21, 0.02),
        _segment(2, 0, [
            (" Our", 7.0, 7.2, 0.99), (" guest", 7.2, 7.5, 0.98), (" today", 7.5, 7.86, 0.99),
            (" is", 7.86, 8.0, 0.99), (" Zoë", 8.0, 8.52, 0.72), (" from", 8.52, 8.8, 0.99),
            (" Zürich.", 8.8, 10.5, 0.88),
        ], (50714, 2621, 8341, 965, 307, 1176, 3322, 490, 1176, 6369, 480, 13, 50889), -0.3, 1.12, 0.008),
        _segment(3, 372000, [
            (" That's", 3723.4, 3723.74, 0.97), (" all", 3723.74, 3724.02, 0.99),
            (" for", 3724.02, 3724.2, 0.99), (" today.", 3724.2, 3726.05, 0.96),
        ], (50634, 663, 311, 439, 337, 965, 13, 50764), -0.18, 0.97, 0.031),
    )
    info = TranscriptInfo(
        language="en",
        language_probability=0.97,
        duration=3727.0,
        task="transcribe",
        model="base",
        source="workshop.mp4",
        options=TranscribeOptions(word_timestamps=True),
    )
    return Transcript(info=info, segments=segments)
