"""Whisper's audio front end: the mel filter bank, padding and log-mel features.

Same names and call shapes as openai-whisper's ``whisper.audio`` (``log_mel_spectrogram``,
``pad_or_trim``, ``mel_filters``, ``N_FRAMES`` ...) so code can switch imports; the numbers
come from :mod:`whispermedia.ops` (the fused compiled op, or its pure-torch reference), the
constants from :mod:`whispermedia.constants` (re-exported here).
:class:`MelWindows` gives the same frames for long inputs window by window, with memory
bounded by the window (two passes over the input; docs/ops.md).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Callable, Iterator, Optional, TypeVar, Union

import numpy as np
import torch
import torch.nn.functional as F

from whispermedia import ops
from whispermedia.constants import (CHUNK_LENGTH, FRAMES_PER_SECOND, HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES,
                                    N_SAMPLES_PER_TOKEN, SAMPLE_RATE, TOKENS_PER_SECOND, exact_div)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from whispermedia.media import AudioSource

__all__ = [
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "CHUNK_LENGTH",
    "N_SAMPLES",
    "N_FRAMES",
    "N_SAMPLES_PER_TOKEN",
    "FRAMES_PER_SECOND",
    "TOKENS_PER_SECOND",
    "exact_div",
    "mel_filters",
    "pad_or_trim",
    "log_mel_spectrogram",
    "MelWindows",
]

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz at 200/3 Hz per mel,
# logarithmic above with 27 mels per factor 6.4 in frequency.
_MEL_HZ_PER_MEL = 200.0 / 3.0
_MEL_BREAK_HZ = 1000.0
_MEL_BREAK = _MEL_BREAK_HZ / _MEL_HZ_PER_MEL
_MEL_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
    hz = np.asarray(hz, dtype=np.float64)
    above = _MEL_BREAK + np.log(np.maximum(hz, _MEL_BREAK_HZ) / _MEL_BREAK_HZ) / _MEL_LOG_STEP
    return np.where(hz >= _MEL_BREAK_HZ, above, hz / _MEL_HZ_PER_MEL)


def _mel_to_hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    mel = np.asarray(mel, dtype=np.float64)
    above = _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (np.maximum(mel, _MEL_BREAK) - _MEL_BREAK))
    return np.where(mel >= _MEL_BREAK, above, mel * _MEL_HZ_PER_MEL)


def _slaney_mel_bank(n_mels: int, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> NDArray[np.float32]:
    """Triangular filters evenly spaced on Slaney's mel scale from 0 Hz to Nyquist, each
    scaled to unit area in Hz (``librosa.filters.mel(..., htk=False, norm="slaney")``).
    Computed in float64 and rounded once, shape = (n_mels, n_fft // 2 + 1)."""
    bin_hz = np.arange(n_fft // 2 + 1, dtype=np.float64) * (sample_rate / n_fft)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(edges)
    rising = (bin_hz[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - bin_hz[None, :]) / widths[1:, None]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return bank.astype(np.float32)


@functools.lru_cache(maxsize=None)
def _mel_filters_cached(n_mels: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(_slaney_mel_bank(n_mels)).to(device)


def mel_filters(n_mels: int, device: Union[str, torch.device, None] = None) -> torch.Tensor:
    """Whisper's mel filter bank, float32, shape = (n_mels, N_FFT // 2 + 1) = (n_mels, 201).

    Equal to the ``mel_filters.npz`` openai-whisper ships (for 80 and 128 mels) to within
    float rounding, but computed here for any ``n_mels``. Cached per (n_mels, device): treat
    the result as read-only.
    """
    if n_mels < 1:
        raise ValueError(f"n_mels must be positive, got {n_mels}")
    return _mel_filters_cached(int(n_mels), torch.device(device if device is not None else "cpu"))


ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def pad_or_trim(array: ArrayT, length: int = N_SAMPLES, *, axis: int = -1) -> ArrayT:
    """Zero-pad at the end or cut ``array`` (numpy or torch) to ``length`` along ``axis``,
    the way the encoder expects exactly N_SAMPLES samples (or N_FRAMES frames)."""
    size = array.shape[axis]
    if size > length:
        if torch.is_tensor(array):
            return array.narrow(axis, 0, length)
        return array.take(indices=range(length), axis=axis)
    if size < length:
        if torch.is_tensor(array):
            # F.pad takes (left, right) pairs from the last dimension backwards.
            pads = [0, 0] * array.dim()
            pads[2 * (array.dim() - 1 - (axis % array.dim())) + 1] = length - size
            return F.pad(array, pads)
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - size)
        return np.pad(array, widths)
    return array


def log_mel_spectrogram(
    audio: Union[str, os.PathLike, np.ndarray, torch.Tensor],
    n_mels: int = 80,
    padding: int = 0,
    device: Union[str, torch.device, None] = None,
) -> torch.Tensor:
    """Whisper's log-mel spectrogram of 16 kHz mono audio.

    Parameters
    ----------
    audio: path, np.ndarray or torch.Tensor
        A media file (decoded with :func:`whispermedia.media.load_audio`), or samples at
        16 kHz in [-1, 1], shape = (n_samples,) or (batch, n_samples).
    n_mels: int
        Mel bins: 80 for most models, 128 for large-v3 and turbo.
    padding: int
        Zero samples appended before the transform (openai-whisper's ``padding``;
        transcription pads a full window, N_SAMPLES).
    device: str or torch.device, optional
        Where to compute; by default where ``audio`` already is (CPU for a path or array).

    Returns
    -------
    torch.Tensor, float32, shape = (n_mels, n_frames) or (batch, n_mels, n_frames)
        n_frames = (n_samples + padding) // HOP_LENGTH, i.e. FRAMES_PER_SECOND per second.
        Each row is normalised with its own maximum (max - 8 clamp, then (x + 4) / 4),
        exactly as openai-whisper normalises a single clip.
    """
    if isinstance(audio, (str, os.PathLike)):
        from whispermedia.media import load_audio  # deferred: the media layer pulls in PyAV

        audio = load_audio(audio)
    if not torch.is_tensor(audio):
        audio = torch.from_numpy(np.ascontiguousarray(audio))
    if device is not None:
        audio = audio.to(device)
    if audio.dtype != torch.float32:
        audio = audio.to(torch.float32)
    if padding > 0:
        audio = F.pad(audio, (0, padding))
    return ops.log_mel_spectrogram(audio, mel_filters(n_mels, audio.device), HOP_LENGTH)


# --------------------------------------------------------------------------------------------
# long inputs, window by window

_CONTEXT_FRAMES = -(-(N_FFT // 2) // HOP_LENGTH)  # 2: frames whose window reaches before a slice's start
_SCAN_FRAMES = N_FRAMES  # frames per op call in the first pass (30 s)


class _Cursor:
    """Forward reader over the padded signal (the input's samples, then ``padding`` zeros).

    ``samples(a, b)`` returns samples [a, b) (fewer at the end of the signal) and forgets
    everything more than ``lookback`` samples before ``a``; asking for an earlier sample than
    that starts the decoding over. Holds at most about ``b - a + lookback`` samples plus one
    decoded chunk.
    """

    lookback = N_SAMPLES  # a window may start up to 30 s before the previous one

    def __init__(self, open_chunks: Callable[[], Iterator[np.ndarray]], padding: int):
        self._open_chunks = open_chunks  # () -> a new iterator of the input's float32 samples
        self._padding = padding
        self._it = None
        self.n_content: Optional[int] = None  # samples of the input, once the decoder has ended

    def _chunks(self):
        n = 0
        for chunk in self._open_chunks():
            n += chunk.shape[0]
            yield chunk
        self.n_content = n
        left = self._padding
        while left > 0:
            step = min(left, N_SAMPLES)
            yield np.zeros(step, dtype=np.float32)
            left -= step

    def _restart(self) -> None:
        self.close()
        self._it = self._chunks()
        self._buf = np.zeros(0, dtype=np.float32)
        self._start = 0  # signal index of self._buf[0]
        self.done = False

    def samples(self, a: int, b: int) -> np.ndarray:
        if self._it is None or a < self._start:
            self._restart()
        pieces = [self._buf]
        end = self._start + self._buf.shape[0]
        while end < b and not self.done:
            try:
                chunk = next(self._it)
            except StopIteration:
                self.done = True
                break
            pieces.append(chunk)
            end += chunk.shape[0]
        buf = np.concatenate(pieces) if len(pieces) > 1 else self._buf
        drop = max(0, min(a - self.lookback, end) - self._start)
        self._buf = buf[drop:]
        if drop:
            self._buf = self._buf.copy()  # let go of the dropped samples' memory
        self._start += drop
        return self._buf[a - self._start: max(0, b - self._start)]

    @property
    def end(self) -> int:
        """Samples of the signal known so far (its length once ``done``)."""
        return self._start + self._buf.shape[0]

    def close(self) -> None:
        if self._it is not None:
            self._it.close()
            self._it = None


class MelWindows:
    """Whisper log-mel frames of a long input, computed window by window.

    ``MelWindows(source, n_mels, padding=N_SAMPLES).window(seek, n)`` equals
    ``log_mel_spectrogram(source, n_mels, padding=N_SAMPLES)[:, seek:seek + n]``, bit for bit
    on the compiled kernels (to float rounding on the pure-torch fallback), while memory stays
    bounded by a window instead of growing with the input: an hour of audio is 230 MB of
    float32 samples and 115 MB of mel frames (80 mels), never held here.

    How: the clamp at ``max - 8`` needs the maximum over the whole input, so the input is read
    twice. Pass 1 (in the constructor) streams the audio through the op without normalisation
    (``ops.log_mel_frames(..., maximum=None)``) 30 s at a time and keeps only the running
    maximum (and the sample count). Pass 2 (``window``) decodes forward again and computes
    just the frames asked for, normalised with that maximum
    (``ops.log_mel_frames(..., maximum)``), from the samples around them: frame ``t`` reads samples
    ``[t * HOP_LENGTH - N_FFT // 2, t * HOP_LENGTH + N_FFT // 2)`` of the padded signal, so each
    window is computed from a slice that starts ``2 * HOP_LENGTH`` samples early (those two
    frames, which would see the slice's reflect padding instead of the real audio, are
    dropped) and the file's own reflect padding is used only at its true start and end. The
    ``padding`` zeros are appended after the last sample, as openai-whisper's ``transcribe``
    pads. A frame's numbers depend only on its samples, and the clamp is one float32
    ``maximum`` with the same bound, so the frames equal those of the whole-input call.

    source: a :class:`whispermedia.media.AudioSource`, or anything
        :func:`whispermedia.media.open_source` takes (a media path or binary file object, or
        16 kHz mono samples: np.ndarray or torch.Tensor, shape = (n_samples,)), which is
        opened with it. A source that cannot be read twice (a pipe, a FIFO path, a
        non-seekable file object) is spooled by the media layer to a temporary file, read
        twice: memory stays bounded, at the cost of disk space the size of the input file.
        ``close()`` closes a source opened here (deleting a spool); an AudioSource passed in
        stays its caller's to close, unless ``close_source=True`` hands it over.
    n_mels: 80, or 128 for large-v3 and turbo.
    padding: zero samples appended after the input (N_SAMPLES, as transcription pads).
    stream_index: which audio stream of a media file (0-based among audio streams).
    device: where the frames are computed and returned (CPU by default; a tensor's device
        when ``source`` is a tensor).

    Windows are cheapest in non-decreasing ``seek`` order (the transcription loop's): the
    decoder runs forward and keeps the last 30 s before the latest window's start as well (a
    window may start up to 30 s earlier than the previous one, as the language-per-region
    search does), nothing older; a window that starts earlier than that restarts the decoding
    from the beginning of the input. ``mel[:, a:b]`` is ``mel.window(a, b - a)``, and
    ``mel.max()`` and ``mel.shape`` are the whole-input tensor's, so code written for that
    tensor's column slices runs unchanged.
    Attributes: ``n_samples`` (input samples), ``n_frames`` (frames of the padded input,
    the whole-input mel's width), ``content_frames`` (``n_samples // HOP_LENGTH``),
    ``maximum`` (the input's largest log10 mel value, which sets the clamp).
    """

    def __init__(self, source, n_mels: int = 80, *, padding: int = N_SAMPLES, stream_index: Optional[int] = None,
                 device: Union[str, torch.device, None] = None, close_source: Optional[bool] = None):
        from whispermedia.media import AudioSource, open_source  # deferred: the media layer pulls in PyAV

        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.n_mels = int(n_mels)
        self.padding = int(padding)
        if device is None and torch.is_tensor(source):
            device = source.device
        self.device = torch.device(device if device is not None else "cpu")
        # close_source: whether close() closes the source (None: when it was opened here)
        self._owns_source = not isinstance(source, AudioSource) if close_source is None else bool(close_source)
        self.source: Optional[AudioSource] = None
        self._cursor: Optional[_Cursor] = None
        try:
            self.source = open_source(source, stream_index)  # opened and checked: a bad input fails here
            self._filters = mel_filters(self.n_mels, self.device)
            self._cursor = _Cursor(self.source.chunks, self.padding)
            self._scan()
        except BaseException:
            self.close()
            raise

    def _frames(self, f0: int, f1: int, maximum: Optional[float]) -> torch.Tensor:
        """Frames [f0, f1) of the padded input from the samples around them, normalised with
        ``maximum`` (None: not normalised). A view of a slightly larger result."""
        a = 0 if f0 < _CONTEXT_FRAMES else (f0 - _CONTEXT_FRAMES) * HOP_LENGTH
        b = f1 * HOP_LENGTH + N_FFT // 2  # one hop more than frame f1 - 1 needs (or the end)
        x = torch.from_numpy(self._cursor.samples(a, b))
        if x.device != self.device:
            x = x.to(self.device)
        first = a // HOP_LENGTH
        return ops.log_mel_frames(x, self._filters, HOP_LENGTH, maximum)[:, f0 - first:f1 - first]

    def _scan(self) -> None:
        """Pass 1: the input's length and the maximum of its unnormalised log-mel."""
        maximum = None
        f0 = 0
        while True:
            f1 = f0 + _SCAN_FRAMES
            # decode a little past what frames [f0, f1) need, to learn whether the input ends here
            self._cursor.samples((f0 - _CONTEXT_FRAMES) * HOP_LENGTH if f0 >= _CONTEXT_FRAMES else 0,
                                 (f1 + 1) * HOP_LENGTH + N_FFT // 2)
            if self._cursor.done:
                total = self._cursor.end
                if total <= N_FFT // 2:  # the op's own "too short to reflect-pad" error
                    ops.log_mel_frames(torch.zeros(total, device=self.device), self._filters, HOP_LENGTH)
                f1 = min(f1, total // HOP_LENGTH)
            if f1 > f0:
                block_max = self._frames(f0, f1, None).amax()
                maximum = block_max if maximum is None else torch.maximum(maximum, block_max)
            f0 = f1
            if self._cursor.done and f0 >= self._cursor.end // HOP_LENGTH:
                break
        self.n_samples = int(self._cursor.n_content)
        self.n_frames = (self.n_samples + self.padding) // HOP_LENGTH
        self.content_frames = self.n_samples // HOP_LENGTH
        self.maximum = float(maximum) if maximum is not None else float("-inf")
        self._cursor.close()  # pass 2 starts from the beginning again

    def reader(self) -> Optional["MelWindows"]:
        """A second reader of the same input's windows, with its own position: the same
        numbers (pass 1 is shared, not redone), for decoding two stretches of one input side by
        side (``whispermedia.regions``) without each restarting the other's decoding. None when
        the input cannot be decoded twice at once (a caller's file object, a spooled pipe: one
        file position). Closing it leaves the input to this one."""
        from whispermedia.twin_source import twin_source

        source = twin_source(self.source) if self.source is not None else None
        if source is None:
            return None
        twin = object.__new__(MelWindows)
        twin.__dict__.update(self.__dict__)
        twin.source = source
        twin._owns_source = False
        twin._cursor = _Cursor(source.chunks, self.padding)
        return twin

    def window(self, seek: int, n_frames: int = N_FRAMES) -> torch.Tensor:
        """Frames [seek, seek + n_frames) of the whole input's normalised log-mel: float32,
        shape = (n_mels, k) with k = min(seek + n_frames, self.n_frames) - seek (0 past the
        end), exactly ``whole[:, seek:seek + n_frames]``."""
        seek, n_frames = int(seek), int(n_frames)
        if seek < 0 or n_frames < 0:
            raise ValueError(f"seek and n_frames must be >= 0, got {seek} and {n_frames}")
        f1 = min(seek + n_frames, self.n_frames)
        if f1 <= seek:
            return torch.zeros((self.n_mels, 0), dtype=torch.float32, device=self.device)
        return self._frames(seek, f1, self.maximum).contiguous()

    def __getitem__(self, index) -> torch.Tensor:
        """``mel[:, start:stop]`` is ``mel.window(start, stop - start)``: column slices of the
        whole-input tensor work unchanged (other indexing is refused)."""
        if not (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None)
                and isinstance(index[1], slice) and index[1].step in (None, 1)):
            raise TypeError("MelWindows supports column slices mel[:, start:stop] only")
        start, stop, _ = index[1].indices(self.n_frames)
        return self.window(start, max(0, stop - start))

    def max(self) -> torch.Tensor:
        """The largest normalised value, ``whole.max()`` (a 0-d float32 tensor): the maximum
        frame is never clamped, so it is ``(maximum + 4) / 4`` computed in float32."""
        top = torch.tensor(self.maximum, dtype=torch.float32, device=self.device)
        return (top + 4.0) / 4.0

    @property
    def shape(self) -> tuple:
        """(n_mels, n_frames): the whole-input tensor's shape."""
        return (self.n_mels, self.n_frames)

    def close(self) -> None:
        """Stop the decoder, and close the source if it was opened here (deleting a spool)."""
        if self._cursor is not None:
            self._cursor.close()
        if self.source is not None and self._owns_source:
            self.source.close()

    def __enter__(self) -> "MelWindows":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
