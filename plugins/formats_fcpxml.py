"""Final Cut Pro XML (FCPXML 1.8 to 1.11, ``fcpxml_version``): the source as an asset clip on a
project's spine, with one ``<caption>`` and one ``<marker>`` per item.

Our own writer, with the standard library only: OpenTimelineIO's FCPXML adapter writes markers
but no captions. What the file relies on, from Apple's DTD of each version:

- ``fcpxml > resources (format, asset) , library > event > project > sequence > spine > asset-clip``;
  the asset's file is ``asset@src`` in 1.8 and ``asset > media-rep@src`` from 1.9 on;
- inside the asset clip, anchored items come before markers: every ``caption`` first, on a
  lane above the clip (``lane >= 1``; two captions that overlap go on different lanes), then
  every ``marker`` (``start`` and ``value`` required);
- a caption is ``text > text-style`` plus its ``text-style-def``; its role
  ``iTT?captionFormat=ITT.<language>`` makes it an iTT caption in that language;
- every time is a rational number of seconds (``"1001/30000s"``, ``"36000s"``) that is a whole
  number of frames of the sequence's ``frameDuration``. Times inside the clip are in the clip's
  own timeline, which starts at the source's start timecode (``start``/``tcStart``), so a
  caption at 2 s into a file that starts at 10:00:00:00 sits at ``offset = 36002s``.

A source without video gets a 1920x1080 format at the timeline's rate (a sequence needs one).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Optional, TextIO

from whispermedia.hookspecs import hookimpl
from whispermedia.options import FCPXML_VERSIONS
from whispermedia.registry import FormatRegister, OutputFormat
from whispermedia.timeline import TimelineClock, lanes, source_url, timeline_clock, timeline_items
from whispermedia.types import Transcript

_AUDIO_RATES = {32000: "32k", 44100: "44.1k", 48000: "48k", 88200: "88.2k", 96000: "96k",
                176400: "176.4k", 192000: "192k"}
_DEFAULT_SIZE = (1920, 1080)


# characters XML 1.0 cannot carry at all (ElementTree would write them and break the file)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` without the control characters XML 1.0 forbids."""
    return _NOT_XML.sub("", text)


def fcpxml_time(frames: int, clock: TimelineClock) -> str:
    """``frames`` frames as FCPXML time: ``"Ns"`` when whole seconds, else ``"N/Ds"`` with the
    frame duration's denominator (``"1001/30000s"`` is one frame at 29.97)."""
    step = clock.frame_duration
    value = frames * step
    if value.denominator == 1:
        return f"{value.numerator}s"
    return f"{frames * step.numerator}/{step.denominator}s"


def parse_fcpxml_time(text: str) -> Fraction:
    """The exact seconds of an FCPXML time (``"1001/30000s"``, ``"5s"``)."""
    if not text.endswith("s"):
        raise ValueError(f"not an FCPXML time: {text!r}")
    return Fraction(text[:-1])


def _version(transcript: Transcript, options: Mapping[str, Any]) -> str:
    version = options.get("fcpxml_version") or getattr(transcript.info.options, "fcpxml_version", None)
    version = str(version or FCPXML_VERSIONS[0])
    if version not in FCPXML_VERSIONS:
        raise ValueError(f"fcpxml_version {version!r} is not one of {', '.join(FCPXML_VERSIONS)}")
    return version


def build_fcpxml(transcript: Transcript, options: Optional[Mapping[str, Any]] = None) -> ET.Element:
    """The ``<fcpxml>`` element of ``transcript`` (see the module docstring)."""
    options = options or {}
    version = _version(transcript, options)
    clock = timeline_clock(transcript, options)
    info, media = transcript.info, transcript.info.media
    name = Path(info.source).stem if info.source else "whispermedia"
    items = timeline_items(transcript)
    spans = [clock.span(item) for item in items]
    seconds = media.duration if media is not None and media.duration else info.duration
    length = max([clock.frames(seconds), 1] + [first + count for first, count in spans])
    start = clock.start.frames
    t = lambda frames: fcpxml_time(frames, clock)  # noqa: E731 (one rule, used everywhere below)
    tc_format = "DF" if clock.drop_frame else "NDF"
    has_video = media is not None and media.has_video
    streams = media.audio_streams if media is not None else ()
    stream = next((s for s in streams if s.index == info.audio_stream), streams[0] if streams else None)

    root = ET.Element("fcpxml", version=version)
    resources = ET.SubElement(root, "resources")
    width, height = ((media.width, media.height) if has_video and media.width and media.height
                     else _DEFAULT_SIZE)
    ET.SubElement(resources, "format", id="r1", frameDuration=t(1), width=str(width), height=str(height))
    asset = ET.SubElement(resources, "asset", id="r2", name=name, start=t(start), duration=t(length),
                          hasVideo="1" if has_video else "0", hasAudio="1")
    if has_video:
        asset.set("format", "r1")
    asset.set("audioSources", "1")
    if stream is not None:
        asset.set("audioChannels", str(stream.channels))
        asset.set("audioRate", str(stream.sample_rate))
    if version == "1.8":
        asset.set("src", source_url(info.source))
    else:
        ET.SubElement(asset, "media-rep", kind="original-media", src=source_url(info.source))

    event = ET.SubElement(ET.SubElement(root, "library"), "event", name="whispermedia")
    project = ET.SubElement(event, "project", name=name)
    sequence = ET.SubElement(project, "sequence", format="r1", duration=t(length), tcStart=t(start),
                             tcFormat=tc_format, audioLayout="stereo" if stream is None or stream.channels > 1
                             else "mono", audioRate=_AUDIO_RATES.get(getattr(stream, "sample_rate", 0), "48k"))
    spine = ET.SubElement(sequence, "spine")
    clip = ET.SubElement(spine, "asset-clip", ref="r2", offset=t(start), name=name, start=t(start),
                         duration=t(length), format="r1", tcFormat=tc_format)

    # the DTD wants every anchored item (caption) before the first marker
    for n, (item, (first, count), lane) in enumerate(zip(items, spans, lanes(spans)), start=1):
        text = xml_text(item.text)
        caption = ET.SubElement(clip, "caption", lane=str(lane), offset=t(start + first), name=text,
                                duration=t(count), role=f"iTT?captionFormat=ITT.{item.language}")
        block = ET.SubElement(caption, "text", placement="bottom")
        ET.SubElement(block, "text-style", ref=f"ts{n}").text = text
        style = ET.SubElement(caption, "text-style-def", id=f"ts{n}")
        ET.SubElement(style, "text-style", font=".SF NS Text", fontSize="13", fontFace="Regular",
                      fontColor="1 1 1 1", backgroundColor="0 0 0 1")
    for item, (first, count) in zip(items, spans):
        ET.SubElement(clip, "marker", start=t(start + first), duration=t(count), value=xml_text(item.text))
    return root


def write_fcpxml(transcript: Transcript, fp: TextIO, options: Mapping[str, object]) -> None:
    """FCPXML of :func:`build_fcpxml`, with the XML declaration and ``<!DOCTYPE fcpxml>``."""
    root = build_fcpxml(transcript, options)
    ET.indent(root, space="  ")
    fp.write('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n')
    fp.write(ET.tostring(root, encoding="unicode"))
    fp.write("\n")


@hookimpl(trylast=True)
def register_output_formats(register: FormatRegister) -> None:
    register.add(OutputFormat("fcpxml", "fcpxml", write_fcpxml,
                              help="Final Cut Pro XML: the source clip with a caption and a marker per segment"))
