"""Timeline formats through OpenTimelineIO: ``otio`` (OTIO JSON) and ``edl`` (CMX3600 locators).

Both need the ``timeline`` extra (``pip install 'whispermedia[timeline]'``: opentimelineio and
otio-cmx3600-adapter); without it each format's ``check`` raises ``MissingDependency`` before
anything is transcribed or written.

The timeline: one track holding one clip that references the source file
(``ExternalReference``, its available range = the whole file from its start timecode), placed at
the start of a timeline whose ``global_start_time`` is that same timecode, so source and record
timecode agree. One marker per item (``whispermedia.timeline.timeline_items``) sits on the clip,
in the clip's media time, whole frames: its name is the text, and ``metadata["whispermedia"]``
holds the text, the exact seconds, the record timecode, the segment's language, scores and
words with their probabilities.

The OTIO file is written with the schema versions of OTIO 0.18.0 (``Marker.2``), so readers
from 0.15 on load it even once OTIO writes ``Marker.3`` (RGB colours) by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, TextIO

from whispermedia.errors import MissingDependency
from whispermedia.hookspecs import hookimpl
from whispermedia.registry import FormatRegister, OutputFormat
from whispermedia.timecode import is_drop_frame_rate
from whispermedia.timeline import TimelineClock, TimelineItem, source_url, timeline_clock, timeline_items
from whispermedia.types import Transcript

INSTALL = "pip install 'whispermedia[timeline]'"
#: The OTIO release whose schema versions the otio format writes.
OTIO_TARGET_RELEASE = "0.18.0"
MARKER_COLOR = "GREEN"


def _otio():
    try:
        import opentimelineio
    except ImportError:
        raise MissingDependency(f"the otio and edl formats need OpenTimelineIO, from the timeline extra: "
                                f"{INSTALL}") from None
    return opentimelineio


def check_otio() -> None:
    """``MissingDependency`` unless opentimelineio imports."""
    _otio()


def check_edl() -> None:
    """``MissingDependency`` unless opentimelineio and its CMX3600 adapter are installed."""
    otio = _otio()
    if "cmx_3600" not in otio.adapters.available_adapter_names():
        raise MissingDependency(f"the edl format needs otio-cmx3600-adapter, from the timeline extra: {INSTALL}")


def _marker_metadata(item: TimelineItem, transcript: Transcript, clock: TimelineClock) -> Dict[str, Any]:
    segment = next(s for s in transcript.segments if s.id == item.segment)
    data: Dict[str, Any] = {
        "text": item.text, "start": item.start, "end": item.end, "timecode": str(clock.timecode(item.start)),
        "segment": item.segment, "language": item.language,
        "avg_logprob": segment.avg_logprob, "no_speech_prob": segment.no_speech_prob,
    }
    if item.words is not None:
        data["words"] = [{"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                         for w in item.words]
    return data


def build_timeline(transcript: Transcript, options: Optional[Mapping[str, Any]] = None, *,
                   video_track: Optional[bool] = None):
    """The ``opentimelineio.schema.Timeline`` of ``transcript`` (see the module docstring).
    ``video_track``: put the clip on a video track (default: when the source has video)."""
    otio = _otio()
    RationalTime, TimeRange = otio.opentime.RationalTime, otio.opentime.TimeRange
    clock = timeline_clock(transcript, options)
    rate = float(clock.rate)
    info, media = transcript.info, transcript.info.media
    name = Path(info.source).stem if info.source else "whispermedia"
    items = timeline_items(transcript)
    spans = [clock.span(item) for item in items]
    seconds = media.duration if media is not None and media.duration else info.duration
    length = max([clock.frames(seconds), 1] + [first + count for first, count in spans])
    available = TimeRange(RationalTime(clock.start.frames, rate), RationalTime(length, rate))

    reference = otio.schema.ExternalReference(target_url=source_url(info.source), available_range=available)
    clip = otio.schema.Clip(name=name, media_reference=reference, source_range=available)
    for item, (first, count) in zip(items, spans):
        clip.markers.append(otio.schema.Marker(
            name=item.text,
            marked_range=TimeRange(RationalTime(clock.start.frames + first, rate), RationalTime(count, rate)),
            color=MARKER_COLOR,
            metadata={"whispermedia": _marker_metadata(item, transcript, clock)}))

    if video_track is None:
        video_track = media is not None and media.has_video
    kind = otio.schema.TrackKind.Video if video_track else otio.schema.TrackKind.Audio
    track = otio.schema.Track(name="V1" if video_track else "A1", kind=kind)
    track.append(clip)
    timeline = otio.schema.Timeline(name=name, global_start_time=RationalTime(clock.start.frames, rate))
    timeline.tracks.append(track)
    timeline.metadata["whispermedia"] = {
        "source": info.source, "language": info.language, "task": info.task, "model": info.model,
        "frame_rate": f"{clock.rate.numerator}/{clock.rate.denominator}",
        "start_timecode": str(clock.start), "drop_frame": clock.drop_frame,
    }
    return timeline


def target_schema_versions() -> Dict[str, int]:
    """The schema versions of OTIO :data:`OTIO_TARGET_RELEASE` (``Marker`` 2)."""
    otio = _otio()
    try:
        return dict(otio.versioning.fetch_map("OTIO_CORE", OTIO_TARGET_RELEASE))
    except Exception:  # a release that no longer knows 0.18.0's map: pin what matters
        return {"Marker": 2, "Clip": 2, "Timeline": 1, "Track": 1, "ExternalReference": 1}


def write_otio(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """OTIO JSON of :func:`build_timeline`, in OTIO 0.18.0's schema versions."""
    otio = _otio()
    text = otio.adapters.write_to_string(build_timeline(transcript, options), "otio_json",
                                         target_schema_versions=target_schema_versions(), indent=2)
    fp.write(text if text.endswith("\n") else text + "\n")


def write_edl(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """CMX3600 (Avid style) through OTIO's adapter: one video event for the source clip, source
    and record in at the start timecode, and a ``* LOC:`` line per item at its record timecode. The adapter's limits apply: locators are
    points (durations are dropped) and their names upper-cased; at 29.97 and 59.94 it writes
    drop-frame timecode, which the ``FCM:`` line added here says."""
    otio = _otio()
    timeline = build_timeline(transcript, options, video_track=True)
    # The adapter takes record timecode from the clip's place in the track, not from
    # global_start_time; a track whose range starts at -start puts the clip at the start
    # timecode (how its reader represents a first event's record in)
    (track,) = timeline.tracks
    start = timeline.global_start_time
    track.source_range = otio.opentime.TimeRange(start_time=otio.opentime.RationalTime(-start.value, start.rate),
                                                 duration=track.duration())
    text = otio.adapters.write_to_string(timeline, "cmx_3600", style="avid")
    drop = is_drop_frame_rate(timeline_clock(transcript, options).rate)
    lines = text.splitlines()
    fcm = "FCM: DROP FRAME" if drop else "FCM: NON-DROP FRAME"
    at = 1 if lines and lines[0].startswith("TITLE:") else 0
    lines[at:at] = [fcm]
    fp.write("\n".join(lines) + "\n")


@hookimpl(trylast=True)
def register_output_formats(register: FormatRegister) -> None:
    register.add(OutputFormat("otio", "otio", write_otio, check=check_otio,
                              help="OpenTimelineIO timeline: the source clip with a marker per segment "
                                   "(needs whispermedia[timeline])"))
    register.add(OutputFormat("edl", "edl", write_edl, check=check_edl,
                              help="CMX3600 EDL with a locator per segment (needs whispermedia[timeline])"))
