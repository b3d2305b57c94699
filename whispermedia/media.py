"""Reading audio out of any media file, with PyAV.

Whisper wants 16 kHz mono float32 samples. This module gets them from whatever PyAV (and so the
FFmpeg libraries it bundles) can demux and decode: WAV, FLAC, MP3, Opus, AAC in MP4, a video's
sound track in MKV, ...

- :func:`probe` says what is in a file: its streams, duration and container.
- :func:`load_audio` decodes one audio stream into a single 1-D float32 array in [-1, 1].
- :func:`iter_audio_chunks` yields the same samples in fixed-size pieces while decoding, for
  long inputs; the pieces concatenated are exactly what :func:`load_audio` returns.
- :func:`open_source` decides once what an input is (path, file object, pipe, samples): its
  :class:`AudioSource` decodes it from the start as often as asked (features, voice activity).

Decoding is incremental: packets are read from the file as they are needed, never the whole
compressed file at once, and the other streams' packets (video...) are discarded by the
demuxer. Every decoded frame goes through one PyAV ``AudioResampler`` (format ``flt``, layout
``mono``, the target rate), which is flushed at the end (``resample(None)``) so that the
resampler's tail is not lost. The downmix is normalised the way ffmpeg normalises it for 16-bit
output (stereo becomes (L+R)/2), so the result matches ``ffmpeg -i FILE -ac 1 -ar 16000 -f s16le
-`` divided by 32768, which is what openai-whisper feeds its model: on the test fixtures the
sample counts are equal and the values differ by at most the int16 step (tests/test_media.py).
If the stream changes sample rate or layout part-way, the resampler is flushed and rebuilt.

Sources: a path (``str``, ``bytes`` or ``os.PathLike``) or a binary file object. A seekable
file object is read from its start, its position put back afterwards, and never closed; a
non-seekable one (a pipe) is read from where it is (:func:`open_source` spools it instead).

Errors. Every failure to read an input is a :class:`~whispermedia.errors.MediaError` whose text
is one line, ``"<path>: <problem>"``, naming the problem in a few words: ``no such file``, ``is
a directory``, ``empty file``, ``permission denied``, ``not a media file PyAV can read``, ``no
audio stream``, ``audio stream index N is out of range: the file has K audio streams``,
``truncated or corrupt ... file``, ``truncated: ...``, ``corrupt audio data after N s``, ``...
codec PyAV cannot decode``, ``implausible sample rate N Hz`` (below :data:`MIN_SAMPLE_RATE`: a
corrupt header, refused before anything is resampled), ``decodes to more audio than its N
bytes can hold`` (past :data:`MAX_SAMPLES_PER_BYTE`), ``no usable audio: ...`` (no samples, or
every one NaN or infinite). For a file object, ``<path>`` is its ``name`` or ``<file
object>``. PyAV's exceptions never reach the caller; they are chained as ``__cause__``. Bad
arguments (a negative ``sample_rate``, a source that is neither a path nor a file object) are
``ValueError``/``TypeError``, as programming errors.

Damaged input. We raise rather than return audio that we know is incomplete:

- a file cut short that cannot be opened (an MP4 whose ``moov`` index was at the end, an Ogg
  file missing its headers) gives ``truncated or corrupt MP4/MOV file (it could not be
  opened)``, when its first bytes are those of a known container (otherwise ``not a media
  file``);
- a file cut short that opens (an MP4 with its index at the front, FLAC, Matroska) decodes
  until the data runs out. If reading or decoding then fails near the end of the file, that is
  ``truncated: the data runs out after X s of the Y s the file declares``; if the data simply
  ends, the decoded length is compared with the stream duration the container declares (only
  MP4/MOV, Matroska/WebM, FLAC, Ogg, WAV; never MP3, whose durations are bitrate estimates),
  and ending more than ``max(1 s, 5 %)`` early is ``truncated: the audio ends at X s but the
  file declares Y s``. A WAV or MP3 file cut short gives the audio that is there: their
  headers do not say how long they should be, in a way FFmpeg reports;
- a packet that the demuxer or the decoder rejects in the middle of the stream is ``corrupt
  audio data after X s (...)``, where the ffmpeg command line would log it and carry on with a
  gap. Decoders that resynchronise without reporting anything (FLAC's parser skips the frames
  that fail their CRC) leave a short gap that cannot be seen from here: it is not reported.

From :func:`iter_audio_chunks`, the chunks already yielded before such an error stay valid; the
MediaError comes in place of the next chunk.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, List, Literal, Optional, Tuple, Union

import av
import numpy as np

from whispermedia.constants import N_SAMPLES, SAMPLE_RATE
from whispermedia import media_info
from whispermedia.audio_streams import StreamChoice, choose_audio_stream
from whispermedia.errors import MediaError
from whispermedia.media_info import AudioStreamInfo, MediaInfo, is_real_video as _is_real_video, stream_duration as _stream_duration

__all__ = [
    "SAMPLE_RATE",
    "AudioStreamInfo",
    "MediaInfo",
    "AudioSource",
    "open_source",
    "probe",
    "load_audio",
    "iter_audio_chunks",
]

Source = Union[str, "os.PathLike[str]", "os.PathLike[bytes]", bytes, IO[bytes]]

# What PyAV (and the file-object path inside it) may raise while opening or reading.
# av.error.FFmpegError is not an OSError subclass; its subclasses mix in OSError, ValueError,
# EOFError and others. IndexError/KeyError/RuntimeError cover PyAV's own bookkeeping on
# malformed streams (e.g. a stream list that changes shape).
_PYAV_ERRORS: Tuple[type, ...] = (
    av.error.FFmpegError,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    IndexError,
    KeyError,
    UnicodeDecodeError,
    MemoryError,
)

# Containers whose declared duration comes from an index or header that the muxer wrote after
# the fact (so a shorter decode means data is missing), not from a bitrate estimate.
_EXACT_DURATION_FORMATS = ("mov", "mp4", "matroska", "webm", "flac", "ogg", "wav")

# Decoded audio is handed on in blocks of about this many samples (4 s at 16 kHz).
_BLOCK = 1 << 16

#: The lowest input sample rate decoded. Nothing recorded is slower (telephone audio is
#: 8000 Hz, the oldest sampled formats 4000 Hz); a header saying 1 Hz is corrupt, and resampling
#: it to 16 kHz would make 16000 samples of every input sample.
MIN_SAMPLE_RATE = 1000

#: The most output samples (at 16 kHz) one byte of input may decode to: 1 s a byte. Real codecs
#: stay far below (16-bit PCM at the lowest rate: 8 a byte; digital silence in FLAC's longest
#: frames or Opus's DTX packets: about 2000), so a file past it claims more audio than its bytes
#: hold and is refused while decoding, before the audio piles up anywhere.
MAX_SAMPLES_PER_BYTE = SAMPLE_RATE

# An error while reading a packet that ends this close to the end of the file is reported as
# truncation rather than as corruption.
_END_SLACK = 4096

# Leading bytes of common media containers: an unopenable file that starts like one of these is
# reported as truncated or corrupt rather than as "not a media file".
_MAGIC = (
    (4, b"ftyp", "MP4/MOV"),
    (4, b"moov", "MP4/MOV"),
    (4, b"mdat", "MP4/MOV"),
    (4, b"free", "MP4/MOV"),
    (4, b"wide", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "RIFF (WAV/AVI)"),
    (0, b"RF64", "WAV"),
    (0, b"OggS", "Ogg"),
    (0, b"fLaC", "FLAC"),
    (0, b"ID3", "MP3"),
    (0, b"FORM", "AIFF"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMA"),
    (0, b"#!AMR", "AMR"),
    (0, b"FLV", "FLV"),
    (0, b"caff", "CAF"),
)


# --------------------------------------------------------------------------------------------
# opening


class _Input:
    """An opened container plus what is needed to report on it and to put things back."""

    def __init__(self, source: Source):
        self.label, self._fileobj, self._restore, self.size = _check_source(source)
        # "file:" keeps FFmpeg from reading a relative path such as "take:2.wav" as a URL
        target = self._fileobj if self._fileobj is not None else "file:" + self.label
        try:
            try:
                # a tag in a legacy encoding must not make the whole file unreadable
                self.container = av.open(target, mode="r", metadata_errors="replace")
            except TypeError:  # PyAV >= 19 dropped the argument (and always decodes leniently)
                self.container = av.open(target, mode="r")
        except _PYAV_ERRORS as exc:
            message = self._open_failure(exc)  # may peek at the first bytes
            self._put_back()
            raise MediaError(message, self.label) from exc
        except BaseException:
            self._put_back()
            raise

    def _open_failure(self, exc: BaseException) -> str:
        if isinstance(exc, PermissionError):
            return "permission denied"
        if isinstance(exc, FileNotFoundError):
            return "no such file"
        if isinstance(exc, IsADirectoryError):
            return "is a directory"
        kind = _sniff(self._head())
        if kind is not None:
            return f"truncated or corrupt {kind} file (it could not be opened)"
        return "not a media file PyAV can read (unrecognised format)"

    def _head(self) -> bytes:
        try:
            if self._fileobj is None:
                with open(self.label, "rb") as f:
                    return f.read(16)
            if self._restore is not None:
                self._fileobj.seek(0)
                return self._fileobj.read(16)
        except (OSError, ValueError):
            pass
        return b""

    def _put_back(self) -> None:
        if self._restore is not None:
            try:
                self._fileobj.seek(self._restore)
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        try:
            self.container.close()
        except _PYAV_ERRORS:
            pass
        finally:
            self._put_back()

    def __enter__(self) -> "_Input":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _check_source(
    source: Source,
) -> Tuple[str, Optional[IO[bytes]], Optional[int], Optional[int]]:
    """Validate ``source``.

    Returns (label for messages, file object or None, position to restore, size in bytes or
    None when unknown).
    """
    if isinstance(source, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(source))
        st = _stat_path(path)
        if stat.S_ISDIR(st.st_mode):
            raise MediaError("is a directory, not a media file", path)
        if stat.S_ISREG(st.st_mode):
            if st.st_size == 0:
                raise MediaError("empty file (0 bytes)", path)
            if not os.access(path, os.R_OK):
                raise MediaError("permission denied", path)
            return path, None, None, st.st_size
        refuse_device(path, st.st_mode)
        return path, None, None, None  # a FIFO: read as a stream

    if callable(getattr(source, "read", None)):
        label = _file_label(source)
        if getattr(source, "closed", False):
            raise MediaError("the file object is closed", label)
        restore = _position(source)
        size = None
        if restore is not None:
            try:
                size = source.seek(0, os.SEEK_END)
                source.seek(0)
            except (OSError, ValueError, AttributeError):
                restore = size = None  # not really seekable: PyAV reads it as a stream from where it is
        if size == 0:
            source.seek(restore)
            raise MediaError("empty file (0 bytes)", label)
        return label, source, restore, size

    raise TypeError(
        "source must be a path (str or os.PathLike) or a binary file object, "
        f"not {type(source).__name__}"
    )


def _stat_path(path: str) -> os.stat_result:
    """``os.stat(path)``, its failures as MediaErrors that name the path."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise MediaError("no such file", path) from None
    except NotADirectoryError:
        raise MediaError("no such file (a parent in the path is not a directory)", path) from None
    except PermissionError:
        raise MediaError("permission denied", path) from None
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL byte
        why = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
        raise MediaError(f"cannot access the file ({why[:1].lower() + why[1:]})", path) from exc


def _file_label(fileobj: IO[bytes]) -> str:
    """What messages call a file object: its ``name`` when it has a usable one."""
    name = getattr(fileobj, "name", None)
    return name if isinstance(name, str) and name else "<file object>"


def _position(fileobj: IO[bytes]) -> Optional[int]:
    """The file object's position when it can seek back (so it can be read again from its
    start), else None: a pipe, a socket, or an object that only claims to seek."""
    seekable = getattr(fileobj, "seekable", None)
    try:
        if seekable is None or seekable():
            return fileobj.tell()
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _sniff(head: bytes) -> Optional[str]:
    for offset, magic, kind in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return kind
    # MP3 without an ID3 tag: an MPEG audio frame sync (11 set bits)
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "MPEG audio"
    return None


# --------------------------------------------------------------------------------------------
# streams


def _select_stream(inp: _Input, stream_index: Optional[int]):
    audio = inp.container.streams.audio
    n = len(audio)
    if n == 0:
        video = [s for s in inp.container.streams.video if _is_real_video(s)]
        detail = " (the file has video only)" if video else ""
        raise MediaError(f"no audio stream{detail}", inp.label)
    if stream_index is None:
        return audio[0]
    if not 0 <= stream_index < n:
        have = "1 audio stream (index 0)" if n == 1 else f"{n} audio streams (0 to {n - 1})"
        raise MediaError(f"audio stream index {stream_index} is out of range: the file has {have}",
                         inp.label)
    return audio[stream_index]


def _check_decodable(inp: _Input, stream, position: int) -> None:
    if stream.codec_context is None:
        raise MediaError(
            f"audio stream {position} has a codec PyAV cannot decode (or a corrupt header)",
            inp.label,
        )
    _check_rate(inp, stream.codec_context.sample_rate)


def _check_rate(inp: _Input, rate: Optional[int]) -> None:
    """MediaError for a sample rate below ``MIN_SAMPLE_RATE`` (0 or None: not known yet)."""
    if rate and rate < MIN_SAMPLE_RATE:
        raise MediaError(f"implausible sample rate {rate} Hz (a corrupt header? audio below "
                         f"{MIN_SAMPLE_RATE} Hz is refused)", inp.label)


# --------------------------------------------------------------------------------------------
# public API


def probe(source: Source) -> MediaInfo:
    """Describe a media file without decoding it.

    ``source`` is a path (str or os.PathLike) or a binary file object (read from its start; its
    position is put back afterwards; it is not closed). Raises MediaError when the file cannot
    be opened; a file with no audio stream is *not* an error here (``audio_streams`` is empty).
    """
    with _Input(source) as inp:
        try:
            return media_info.read_media_info(inp.container, inp.label)
        except _PYAV_ERRORS as exc:
            raise MediaError(f"cannot read the stream headers ({_reason(exc)})", inp.label) from exc


def load_audio(
    source: Source,
    *,
    stream_index: Optional[int] = None,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Decode one audio stream to mono float32 at ``sample_rate`` Hz, values in [-1, 1].

    ``stream_index`` picks the N-th *audio* stream (0-based, see :attr:`AudioStreamInfo.index`);
    None means the first. All channels are downmixed to one. Returns a 1-D array.

    Raises MediaError for anything wrong with the input: missing, a directory, empty, not
    media, no audio stream, ``stream_index`` out of range, truncated or corrupt (see the module
    docstring for what counts; a partial decode raises rather than returning partial audio).
    """
    decoding = _decode(source, stream_index, sample_rate)
    next(decoding)  # the empty marker yielded once the input is open and checked
    pieces = list(decoding)
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def iter_audio_chunks(
    source: Source,
    *,
    stream_index: Optional[int] = None,
    sample_rate: int = SAMPLE_RATE,
    chunk_samples: int = N_SAMPLES,
) -> Iterator[np.ndarray]:
    """Decode like :func:`load_audio`, yielding 1-D float32 chunks as the decoding goes.

    Every chunk has exactly ``chunk_samples`` samples (default 30 s at 16 kHz) except the last,
    which has the rest (never empty; nothing is yielded for a stream with no samples). Their
    concatenation equals ``load_audio(source, ...)`` sample for sample. Memory stays bounded
    by about two chunks (at most 4 s of decoded audio is held back), whatever the input's
    length.

    The file is opened, checked and its stream selected when this function is called, so a
    missing file or an out-of-range ``stream_index`` raises MediaError here, not at the first
    ``next()``. Errors found while decoding are raised from the iteration.
    """
    if isinstance(chunk_samples, bool) or not isinstance(chunk_samples, int) or chunk_samples <= 0:
        raise ValueError(f"chunk_samples must be a positive int, got {chunk_samples!r}")
    # blocks no larger than a chunk: each chunk is handed out as soon as it is decoded
    pieces = _decode(source, stream_index, sample_rate, min(chunk_samples, _BLOCK))
    next(pieces)  # run the opening and checks now: the generator stops at its first yield
    return _rechunk(pieces, chunk_samples)


# --------------------------------------------------------------------------------------------
# sources: any audio input, its kind decided once


@dataclass(frozen=True, eq=False)
class AudioSource:
    """One audio input, opened and checked by :func:`open_source`, that can be decoded from its
    start any number of times (``chunks()``). ``kind`` says what it is, decided once:

    - ``"path"``: a regular file, decoded by path each time;
    - ``"file"``: a seekable binary file object, decoded from its start each time, its position
      put back afterwards; never closed here;
    - ``"spool"``: an input readable only once (a pipe, a FIFO path, ``/dev/stdin``, a
      non-seekable file object), copied as it is (compressed) to an anonymous temporary file
      that every decode reads: memory stays bounded, disk space is the input's size;
    - ``"samples"``: 16 kHz mono float32 samples in memory, shape = (n_samples,), sliced as
      they are (nothing is copied whole).

    ``label`` is what errors call the input (the path, the file object's ``name`` or ``<file
    object>``, even for a spooled copy; ``<samples>``). ``path`` is the file-system path the
    input was given as (a spooled FIFO's too), None otherwise. ``stream_index`` is the audio
    stream decoded (0-based among audio streams, None for the first; unused for samples).
    """

    kind: Literal["path", "file", "spool", "samples"]
    label: str
    path: Optional[str]
    stream_index: Optional[int]
    _data: Any = field(repr=False)  # the path, the file object, the temporary copy, or the samples
    # which stream and why (audio_streams.choose_audio_stream), and the facts probed to choose it
    stream_choice: Optional[StreamChoice] = field(default=None, repr=False)
    _media: Optional[MediaInfo] = field(default=None, repr=False)

    def chunks(self, chunk_samples: int = N_SAMPLES) -> Iterator[np.ndarray]:
        """A new decode from the start, as :func:`iter_audio_chunks` yields it (views of the
        array for samples): opening errors come from this call, decoding errors from the
        iteration."""
        if isinstance(chunk_samples, bool) or not isinstance(chunk_samples, int) or chunk_samples <= 0:
            raise ValueError(f"chunk_samples must be a positive int, got {chunk_samples!r}")
        if self.kind == "samples":
            return (self._data[i:i + chunk_samples] for i in range(0, self._data.shape[0], chunk_samples))
        return iter_audio_chunks(self._data, stream_index=self.stream_index, chunk_samples=chunk_samples)

    def probe(self) -> Optional[MediaInfo]:
        """What the media input holds (:func:`probe`); None for samples."""
        if self.kind == "samples":
            return None
        return self._media if self._media is not None else probe(self._data)

    def close(self) -> None:
        """Delete a spooled input's temporary copy (a caller's file object stays open)."""
        if self.kind == "spool":
            self._data.close()

    def __enter__(self) -> "AudioSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_source(audio: Union[Source, np.ndarray, Any, AudioSource],
                stream_index: Optional[int] = None) -> AudioSource:
    """``audio`` as an :class:`AudioSource`: the one place that decides what an input is.

    ``audio``: a path (str, bytes, os.PathLike), a binary file object, 16 kHz mono samples (a
    1-D np.ndarray or torch.Tensor, as float32 on the CPU), or an AudioSource (returned as it
    is). ``stream_index``: the audio stream of a media input: its 0-based index among the audio
    streams, or ``"lang:<tag>"`` (``lang:eng``); None: the default-disposition stream, else the
    first (``audio_streams.choose_audio_stream``; ``stream_choice`` says which and why).

    A media input is opened and its stream selected now: a missing file, a file that is not
    media, a character or block device (a terminal, ``/dev/zero``: never media, and reading one
    may not end) or an out-of-range ``stream_index`` raises :class:`MediaError` here (for a
    spooled input too, naming the original). Samples that are not 1-D are a ValueError; anything
    else is a TypeError.
    """
    if isinstance(audio, AudioSource):
        if stream_index not in (None, audio.stream_index):
            raise ValueError(f"{audio.label}: opened for audio stream {audio.stream_index}, not {stream_index}")
        return audio
    if isinstance(audio, np.ndarray) or _is_tensor(audio):
        return AudioSource("samples", "<samples>", None, stream_index, _float_samples(audio))
    if isinstance(audio, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(audio))
        mode = _stat_path(path).st_mode
        refuse_device(path, mode)
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):  # a directory: the check below says so
            source = AudioSource("path", path, path, stream_index, path)
        else:  # a FIFO, /dev/stdin on a pipe: readable once
            with open(path, "rb") as f:
                source = AudioSource("spool", path, path, stream_index, _spool(f, path))
    elif callable(getattr(audio, "read", None)):
        label = _file_label(audio)
        if getattr(audio, "closed", False):
            raise MediaError("the file object is closed", label)
        if _position(audio) is not None:
            source = AudioSource("file", label, None, stream_index, audio)
        else:
            source = AudioSource("spool", label, None, stream_index, _spool(audio, label))
    else:
        raise TypeError("audio must be a path (str or os.PathLike), a binary file object, or 1-D 16 kHz "
                        f"samples (np.ndarray or torch.Tensor), not {type(audio).__name__}")
    try:
        if source.kind != "samples":
            source = _with_stream(source, stream_index)
        source.chunks().close()  # open and check it now: a bad input fails here, not at its first read
    except MediaError as exc:
        source.close()
        if source.kind == "spool" and exc.message.startswith("truncated or corrupt MP4/MOV"):
            raise MediaError(_PIPED_MP4, exc.path) from exc
        raise
    except BaseException:
        source.close()
        raise
    return source


# a spooled pipe holds the whole stream, so an MP4 whose index comes last opens; one that does not
# open lacks its index: the writer stopped early, or wrote a file meant to be finished by seeking back
_PIPED_MP4 = ("MP4/MOV data from a pipe without its index (moov atom): the stream was cut short "
              "before the index, which this MP4 keeps at its end; pass the file's path instead")


def _with_stream(source: AudioSource, request: Any) -> AudioSource:
    """``source`` with its audio stream chosen (``audio_streams.choose_audio_stream``), the
    probe that chose it kept."""
    info = probe(source._data)
    choice = choose_audio_stream(info.audio_streams, request, source.label) if info.audio_streams else None
    if choice is None:  # no audio: the stream check in chunks() says so, with the video hint
        return source
    return AudioSource(source.kind, source.label, source.path, choice.index, source._data, choice, info)


def refuse_device(path: str, mode: int) -> None:
    """A terminal, ``/dev/zero``, a disk: not media, and reading one may never end."""
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        if stat.S_ISCHR(mode) and _is_terminal(path):
            raise MediaError("is a terminal, not a media file (pipe the media into it)", path)
        kind = "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else "a socket"
        raise MediaError(f"is {kind}, not a media file or a pipe", path)


def _is_terminal(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _is_tensor(obj: object) -> bool:
    # a tensor can only exist once torch is imported, and this module never imports it itself
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _float_samples(audio: Any) -> np.ndarray:
    """A 1-D float32 contiguous CPU array of the samples (the array itself when it already is)."""
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D samples, got shape {tuple(audio.shape)}")
    if _is_tensor(audio):
        audio = audio.detach().cpu().float().numpy()  # .float(): numpy has no bfloat16
    return np.ascontiguousarray(audio, dtype=np.float32)


def _spool(read_from: IO[bytes], label: str) -> IO[bytes]:
    """``read_from``'s bytes, copied once to an anonymous temporary file (deleted when closed)
    that media errors call ``label``."""
    copy = tempfile.TemporaryFile(prefix="wm-spool-")
    try:
        shutil.copyfileobj(read_from, copy, 1 << 20)
        copy.seek(0)
        copy.raw.name = label  # what _check_source (so every MediaError) calls the input
    except BaseException:
        copy.close()
        raise
    return copy


# --------------------------------------------------------------------------------------------
# decoding


def _rechunk(pieces: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    buf: List[np.ndarray] = []
    held = 0
    try:
        for piece in pieces:
            while piece.size:
                take = min(size - held, piece.size)
                buf.append(piece[:take])
                held += take
                piece = piece[take:]
                if held == size:
                    yield buf[0].copy() if len(buf) == 1 else np.concatenate(buf)
                    buf, held = [], 0
        if held:
            yield np.concatenate(buf) if len(buf) > 1 else buf[0].copy()
    finally:
        pieces.close()


def _reason(exc: BaseException) -> str:
    """A short, single-line description of a PyAV error, without FFmpeg's call-site noise."""
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    text = str(text).splitlines()[0].strip()
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r"^Error number -?\d+ occurred$", "undocumented decoder error", text)
    return text[:1].lower() + text[1:] if text else exc.__class__.__name__


def _decode(
    source: Source,
    stream_index: Optional[int],
    sample_rate: int,
    block_samples: int = _BLOCK,
) -> Iterator[np.ndarray]:
    """Generator: first yields an empty array once the input is open and checked, then the
    resampled audio in blocks of about ``block_samples``. Closes the container when finished
    or closed early."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    if stream_index is not None and (isinstance(stream_index, bool)
                                     or not isinstance(stream_index, int)):
        raise TypeError(f"stream_index must be an int or None, not {type(stream_index).__name__}")
    inp = _Input(source)
    try:
        stream = _select_stream(inp, stream_index)
        _check_decodable(inp, stream, stream_index or 0)
        for other in inp.container.streams:
            if other is not stream:
                try:
                    other.discard = av.stream.Discard.all  # demuxer drops their packets early
                except (AttributeError, ValueError, TypeError):
                    pass
        yield np.zeros(0, dtype=np.float32)
        yield from _decode_stream(inp, stream, sample_rate, block_samples)
    finally:
        inp.close()


def _decode_stream(inp: _Input, stream, sample_rate: int, block_samples: int) -> Iterator[np.ndarray]:
    resampler = None
    scale = None
    key = None
    produced = 0  # output samples so far, for messages and the truncation check
    packet_end = -1  # byte offset just past the last packet read, when the demuxer says
    pending: List[np.ndarray] = []  # resampled frames not yet handed out
    pending_n = 0
    non_finite = 0  # NaN or infinite samples replaced so far

    # what the input's bytes can hold (MAX_SAMPLES_PER_BYTE), checked as the audio is made
    limit = None if inp.size is None else (inp.size + 1) * MAX_SAMPLES_PER_BYTE

    def take(frame) -> None:
        nonlocal produced, pending_n
        if limit is not None and produced > limit:
            raise MediaError(f"decodes to more audio than its {inp.size} bytes can hold ({produced / sample_rate:.0f} s "
                             "so far): a corrupt header?", inp.label)
        for out in resampler.resample(frame):
            samples = out.to_ndarray().reshape(-1)
            if samples.size:
                if scale is not None:
                    samples = samples.astype(np.float32) * np.float32(scale)
                pending.append(samples)
                pending_n += samples.size
                produced += samples.size

    def block() -> np.ndarray:
        # Frames are a few hundred samples each; the per-call cost of numpy on each of them
        # would cost more than the decoding, so they are joined into blocks first.
        nonlocal pending, pending_n, non_finite
        out = np.concatenate(pending) if len(pending) > 1 else np.array(pending[0], np.float32)
        pending, pending_n = [], 0
        # float decoders (AAC, MP3, Opus) can overshoot full scale, and float PCM can hold
        # anything, NaN included; whisper's ffmpeg path clips when it converts to int16, and
        # our contract says [-1, 1]
        finite = np.isfinite(out)
        if not finite.all():
            non_finite += int(out.size - np.count_nonzero(finite))
            np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        return np.clip(out, -1.0, 1.0, out=out)

    try:
        for packet in inp.container.demux(stream):
            pos = packet.pos
            if pos is not None and pos >= 0:
                packet_end = pos + packet.size
            for frame in packet.decode():
                # A stream may change its sample rate or channel layout mid-way (broadcast
                # captures, concatenated MP3s): flush the old resampler and start a new one.
                frame_key = (frame.format.name, frame.layout.name, frame.sample_rate)
                if frame_key != key:
                    _check_rate(inp, frame.sample_rate)
                    if resampler is not None:
                        take(None)
                    resampler, scale = _make_resampler(sample_rate)
                    key = frame_key
                take(frame)
                if pending_n >= block_samples:
                    yield block()
        if resampler is not None:
            take(None)  # flush: the resampler holds back its last few samples
        if pending_n:
            yield block()
    except MediaError:
        raise
    except _PYAV_ERRORS as exc:
        got = produced / sample_rate
        # An error while reading the last bytes of the file is the file being cut short.
        if inp.size is not None and packet_end >= inp.size - _END_SLACK:
            declared = _stream_duration(stream)
            of = f" of the {declared:.2f} s the file declares" if declared else ""
            message = f"truncated: the data runs out after {got:.2f} s{of}"
        elif inp.size is None and produced == 0 and "mp4" in str(inp.container.format.name):
            message = ("an MP4/MOV read as a stream (a pipe) cannot be decoded: its index (moov atom) "
                       "is at the end; pass the file's path, or use wm.transcribe or open_source, "
                       "which spool a pipe first")
        else:
            message = f"corrupt audio data after {got:.2f} s ({_reason(exc)})"
        raise MediaError(message, inp.label) from exc

    if produced == 0:
        raise MediaError("no usable audio: the audio stream holds no decodable samples (empty, truncated or "
                         "corrupt?)", inp.label)
    if non_finite == produced:
        raise MediaError(f"no usable audio: all {produced} samples are NaN or infinite", inp.label)
    _check_complete(inp, stream, produced / sample_rate)


def _make_resampler(sample_rate: int):
    """An AudioResampler to mono float at ``sample_rate``, and the scale its output needs.

    The downmix must be the one openai-whisper gets from ``ffmpeg -ac 1 ... -f s16le``. FFmpeg's
    default mixing matrix for stereo to mono is L/sqrt(2) + R/sqrt(2); for *integer* output
    it is normalised (here to L/2 + R/2) so that it cannot clip, for float output it is not.
    ``rematrix_maxval=1`` asks for the same normalisation with float output. PyAV before 18
    cannot pass resampler options; there we ask for ``s16`` and scale by 1/32768, which is
    exactly openai-whisper's arithmetic (16-bit quantisation included).
    """
    try:
        return av.AudioResampler(format="flt", layout="mono", rate=sample_rate,
                                 options={"rematrix_maxval": "1.0"}), None
    except TypeError:
        return av.AudioResampler(format="s16", layout="mono", rate=sample_rate), 1.0 / 32768.0


def _check_complete(inp: _Input, stream, got: float) -> None:
    fmt = str(inp.container.format.name)
    if not any(name in fmt.split(",") for name in _EXACT_DURATION_FORMATS):
        return
    declared = _stream_duration(stream)
    if declared is None or not math.isfinite(declared):
        return
    if declared - got > max(1.0, 0.05 * declared):
        raise MediaError(
            f"truncated: the audio ends at {got:.2f} s but the file declares {declared:.2f} s",
            inp.label,
        )
