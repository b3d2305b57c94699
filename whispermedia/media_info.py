"""What a media file holds, as plain frozen records: its audio streams, duration, container and
the video facts that subtitles and timelines are timed against (frame rate, start timecode).

:func:`read_media_info` reads them from an opened PyAV container without decoding anything;
:func:`whispermedia.media.probe` is the public entry point (it opens the file and turns PyAV's
errors into ``MediaError``). The records travel with a transcript (``TranscriptInfo.media``),
so every output plugin, built in or third-party, sees the same facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Tuple

_AV_DISPOSITION_DEFAULT = 0x1
_AV_DISPOSITION_ATTACHED_PIC = 0x400  # cover art: a picture, not a video


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream of a media file.

    ``index`` is the stream's position among the file's *audio* streams (0-based; the value to
    pass as ``stream_index``), not its index among all streams. ``codec`` is FFmpeg's codec name
    (``"aac"``, ``"mp3"``, ``"opus"``, ``"pcm_s16le"``...). ``duration`` is in seconds, None
    when the container does not say. ``language`` is the stream's language tag as written in
    the file (e.g. ``"eng"``), None when absent or ``"und"``. ``default`` is the container's
    "default" disposition (the track a player picks first).
    """

    index: int
    codec: str
    sample_rate: int
    channels: int
    duration: Optional[float]
    language: Optional[str]
    default: bool = False

    def to_dict(self) -> dict:
        return {"index": self.index, "codec": self.codec, "sample_rate": self.sample_rate,
                "channels": self.channels, "duration": self.duration, "language": self.language,
                "default": self.default}


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`whispermedia.media.probe` found in a media file.

    ``duration`` is the container's duration in seconds (None if unknown). ``has_video`` is
    True when there is a real video stream (cover art attached to an audio file does not
    count). ``container`` is FFmpeg's demuxer name, e.g. ``"wav"``, ``"mp3"``, ``"ogg"``,
    ``"matroska,webm"`` or ``"mov,mp4,m4a,3gp,3g2,mj2"``. ``frame_rate`` is the first real
    video stream's frame rate as an exact fraction (``Fraction(24000, 1001)`` for 23.976), None
    without video. ``start_timecode`` is the start timecode the file carries
    (``"10:00:00:00"``, ``;`` before the frames for drop-frame), from a MOV/MP4 timecode track,
    a stream's or the container's ``timecode`` tag; None when there is none. ``width`` and
    ``height`` are that video stream's picture size in pixels and ``video_codec`` its codec
    (FFmpeg's name, ``"h264"``); None without video.
    """

    path: str
    duration: Optional[float]
    audio_streams: Tuple[AudioStreamInfo, ...]
    has_video: bool
    container: str
    frame_rate: Optional[Fraction] = None
    start_timecode: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    video_codec: Optional[str] = None

    def to_dict(self) -> dict:
        """The JSON shape; ``frame_rate`` as ffprobe writes it (``"24000/1001"``)."""
        rate = self.frame_rate
        return {"path": self.path, "duration": self.duration, "container": self.container,
                "has_video": self.has_video,
                "frame_rate": None if rate is None else f"{rate.numerator}/{rate.denominator}",
                "start_timecode": self.start_timecode, "video_codec": self.video_codec,
                "width": self.width, "height": self.height,
                "audio_streams": [s.to_dict() for s in self.audio_streams]}


def read_media_info(container, label: str) -> MediaInfo:
    """The facts of an opened PyAV ``container`` (``label``: what the file is called). PyAV's
    own exceptions pass through: the caller names the file."""
    streams = tuple(
        AudioStreamInfo(
            index=i,
            codec=codec_name(s),
            sample_rate=int(getattr(s.codec_context, "sample_rate", 0) or 0),
            channels=channels(s.codec_context),
            duration=stream_duration(s),
            language=language(s),
            default=_disposition(s) & _AV_DISPOSITION_DEFAULT != 0,
        )
        for i, s in enumerate(container.streams.audio))
    video = [s for s in container.streams.video if is_real_video(s)]
    return MediaInfo(
        path=label,
        duration=container_duration(container),
        audio_streams=streams,
        has_video=bool(video),
        container=str(container.format.name),
        frame_rate=frame_rate(video[0]) if video else None,
        start_timecode=start_timecode(container),
        width=_picture_size(video[0], "width") if video else None,
        height=_picture_size(video[0], "height") if video else None,
        video_codec=codec_name(video[0]) if video else None,
    )


# --------------------------------------------------------------------------------------------
# one fact each, from PyAV's stream and container objects


def channels(codec_context) -> int:
    if codec_context is None:
        return 0
    n = getattr(codec_context, "channels", None)
    if not n:
        layout = getattr(codec_context, "layout", None)
        n = getattr(layout, "nb_channels", None) or len(getattr(layout, "channels", ()) or ())
    return int(n or 0)


def codec_name(stream) -> str:
    cc = stream.codec_context  # None when PyAV has no decoder for the stream's codec
    codec = getattr(cc, "codec", None)
    for name in (getattr(codec, "canonical_name", None), getattr(cc, "name", None),
                 getattr(codec, "name", None)):
        if name:
            return str(name)
    return "unknown"


_HMS = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def stream_duration(stream) -> Optional[float]:
    """The stream's own duration in seconds, from the stream header or a DURATION tag."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    # Matroska keeps per-stream durations in a tag, e.g. "00:00:02.024000000"
    for key, value in (stream.metadata or {}).items():
        if key.upper() == "DURATION" and isinstance(value, str):
            m = _HMS.match(value.strip())
            if m:
                h, mnt, s = m.groups()
                return int(h) * 3600 + int(mnt) * 60 + float(s)
    return None


def language(stream) -> Optional[str]:
    lang = getattr(stream, "language", None) or (stream.metadata or {}).get("language")
    if not lang or lang.lower() == "und":
        return None
    return str(lang)


def _disposition(stream) -> int:
    try:
        return int(getattr(stream, "disposition", 0))
    except (TypeError, ValueError):
        return 0


def is_real_video(stream) -> bool:
    return not _disposition(stream) & _AV_DISPOSITION_ATTACHED_PIC


def _picture_size(stream, side: str) -> Optional[int]:
    value = getattr(stream.codec_context, side, None) if stream.codec_context is not None else None
    return int(value) if value else None


def container_duration(container) -> Optional[float]:
    if container.duration is None or container.duration <= 0:
        return None
    return container.duration / 1_000_000  # AV_TIME_BASE


def frame_rate(stream) -> Optional[Fraction]:
    """The video stream's frame rate, exact: the average rate the muxer wrote, else FFmpeg's
    guess from the timestamps; None when neither is a positive number."""
    for rate in (getattr(stream, "average_rate", None), getattr(stream, "guessed_rate", None)):
        if rate:
            rate = Fraction(rate)
            if rate > 0:
                return rate.limit_denominator(1001 * 1000)
    return None


_TIMECODE = re.compile(r"^\d{1,2}:\d{2}:\d{2}[:;.]\d{2,3}$")


def start_timecode(container) -> Optional[str]:
    """The first well-formed ``timecode`` tag of the file's streams (a MOV/MP4 ``tmcd`` track
    first, as FFmpeg reports it there), then of the container (MXF, some MP4 muxers)."""
    tags = [s.metadata or {} for s in container.streams if s.type == "data"]
    tags += [s.metadata or {} for s in container.streams if s.type != "data"]
    tags.append(container.metadata or {})
    for tag in tags:
        for key, value in tag.items():  # Matroska writes tag names upper-case (TIMECODE)
            value = str(value).strip()
            if key.lower() == "timecode" and _TIMECODE.match(value):
                return value
    return None
