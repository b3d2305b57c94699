"""Silero VAD v6 (16 kHz), run natively: speech probability every 32 ms of audio.

The weights (MIT, Silero Team) come from the ``silero-vad`` wheel (6.2.3), found with
``importlib`` *without importing the package* (``import silero_vad`` calls
``torch.set_num_threads(1)`` for the whole process): by default the tensors of its default model,
``silero_vad/data/silero_vad.jit`` (what its ``load_silero_vad()`` runs), taken out of the
TorchScript file by torch; ``silero_vad_16k.safetensors`` (its tinygrad port's file, same
architecture) can be loaded too, but in 6.2.3 it holds other, earlier weights (``WEIGHT_FILES``).

What one step of the network sees: a window of 512 new samples with the 64 samples before it
(zeros before the input's first), 576 in all, reflect-padded by 64 on the right. Then
- an STFT written as a convolution: 258 filters (129 real, 129 imaginary) of 256 taps, stride
  128, i.e. 4 frames a window, and their magnitude (129 bins);
- four 1-D convolutions (k 3, pad 1) 129→128→64→64→128, strides 1, 2, 2, 1, each + ReLU: the
  4 frames become 1 feature vector of 128;
- an LSTM cell (128) whose state runs from window to window;
- ReLU, a 1×1 convolution to one logit, sigmoid: the probability that the window is speech.

Everything up to the LSTM depends on one window only, so it runs for all the windows of a block
in one batched call (the STFT is one matrix product over every frame); only the recurrence is
sequential, and it runs inside ATen (``torch.nn.LSTM`` over the block: the same gates and
weights as the cell). The result equals the package's own model to float rounding
(tests/test_vad.py compares against its TorchScript file; docs/benchmarks.md has the speed).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import warnings
from typing import Dict, Iterable, Iterator, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .decoding import decode_threads
from .errors import MissingDependency

SAMPLE_RATE = 16000
WINDOW = 512  # new samples per step: 32 ms
CONTEXT = 64  # samples of the previous window each step sees again
SECONDS_PER_STEP = WINDOW / SAMPLE_RATE
_N_FFT, _STRIDE, _PAD = 256, 128, 64
_BINS = _N_FFT // 2 + 1
#: The package's files with the 16 kHz network: its default model (what ``load_silero_vad()``
#: returns, the reference) and the safetensors file of its tinygrad port, which in 6.2.3 holds
#: other weights (an earlier v6 training: up to 0.4 apart in probability on tests/data/speech/jfk.flac).
WEIGHT_FILES = {"default": os.path.join("data", "silero_vad.jit"),
                "safetensors": os.path.join("data", "silero_vad_16k.safetensors")}
INSTALL_HINT = "pip install 'silero-vad==6.2.3' (its weights; nothing else of it is imported)"


def weights_path(which: str = "default") -> str:
    """Where the silero-vad package's weights (``WEIGHT_FILES[which]``) are, found without
    importing the package; ``MissingDependency`` naming the package when it is not installed."""
    spec = importlib.util.find_spec("silero_vad")  # locates, does not execute, a top-level package
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(folder, WEIGHT_FILES[which])
        if os.path.isfile(path):
            return path
    raise MissingDependency(f"Silero VAD needs the silero-vad package's weights: {INSTALL_HINT}; "
                            "or turn voice activity detection off (--vad off)")


class SileroVAD(nn.Module):
    """The v6 16 kHz network. ``forward(windows, state)``: windows [n, 576] float32 (each 512 new
    samples after 64 of context) and the LSTM state ((1, 1, 128), (1, 1, 128)) or None → speech
    probabilities [n] and the state after the last window."""

    def __init__(self) -> None:
        super().__init__()
        self.stft = nn.Parameter(torch.zeros(2 * _BINS, 1, _N_FFT), requires_grad=False)
        self.convs = nn.ModuleList([
            nn.Conv1d(_BINS, 128, 3, stride=1, padding=1), nn.Conv1d(128, 64, 3, stride=2, padding=1),
            nn.Conv1d(64, 64, 3, stride=2, padding=1), nn.Conv1d(64, 128, 3, stride=1, padding=1)])
        self.lstm = nn.LSTM(128, 128, batch_first=False)
        self.head = nn.Conv1d(128, 1, 1)

    @classmethod
    def load(cls, path: Optional[str] = None) -> "SileroVAD":
        """The network with the package's weights (``weights_path()`` by default), in eval mode:
        from its TorchScript file (``.jit``: only the tensors are taken) or its safetensors file."""
        path = path or weights_path()
        w = _jit_tensors(path) if path.endswith(".jit") else _safetensors(path)
        model = cls()
        with torch.no_grad():
            model.stft.copy_(w["stft_conv.weight"])
            for i, conv in enumerate(model.convs, start=1):
                conv.weight.copy_(w[f"conv{i}.weight"])
                conv.bias.copy_(w[f"conv{i}.bias"])
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):  # a cell is a one-step LSTM
                getattr(model.lstm, f"{name}_l0").copy_(w[f"lstm_cell.{name}"])
            model.head.weight.copy_(w["final_conv.weight"])
            model.head.bias.copy_(w["final_conv.bias"])
        return model.eval()

    def features(self, windows: torch.Tensor) -> torch.Tensor:
        """windows [n, 576] → the LSTM's inputs [n, 128], all windows at once."""
        x = torch.nn.functional.pad(windows[:, None, :], (0, _PAD), mode="reflect")[:, 0]  # [n, 640]
        frames = x.unfold(1, _N_FFT, _STRIDE)  # [n, 4, 256]
        spec = frames @ self.stft[:, 0, :].T  # [n, 4, 258]: the STFT conv as one matrix product
        mag = torch.sqrt(spec[..., :_BINS] ** 2 + spec[..., _BINS:] ** 2).transpose(1, 2)  # [n, 129, 4]
        for conv in self.convs:
            mag = torch.relu(conv(mag))
        return mag[:, :, 0]  # [n, 128]: four frames, strides 2 and 2, leave one

    def forward(self, windows: torch.Tensor, state: Optional[Tuple[torch.Tensor, torch.Tensor]] = None):
        # One CPU thread: the recurrence is thousands of 128-wide steps, where a second OpenMP
        # thread only adds hand-offs, and on a machine with other work its spinning workers made
        # one VAD pass hundreds of times slower (seen: 11.5 s instead of 0.03 s for 11 s of audio).
        with decode_threads(windows.device, 1):
            h, state = self.lstm(self.features(windows)[:, None, :], state)  # [n, 1, 128]: the recurrence
            logit = self.head(torch.relu(h[:, 0, :])[:, :, None])  # [n, 1, 1]
        return torch.sigmoid(logit)[:, 0, 0], state


def _safetensors(path: str) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


# the TorchScript file's tensor names -> the safetensors file's (the tinygrad port's) names
_JIT_NAMES = {"stft.forward_basis_buffer": "stft_conv.weight",
              "decoder.decoder.2.weight": "final_conv.weight", "decoder.decoder.2.bias": "final_conv.bias",
              **{f"decoder.rnn.{n}": f"lstm_cell.{n}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
              **{f"encoder.{i}.reparam_conv.{n}": f"conv{i + 1}.{n}" for i in range(4) for n in ("weight", "bias")}}


def _jit_tensors(path: str) -> Dict[str, torch.Tensor]:
    """The 16 kHz network's tensors from the package's TorchScript file: deserialised by torch
    (no code of the package is imported or run), renamed as in the safetensors file."""
    with warnings.catch_warnings():  # torch 2.13 calls torch.jit deprecated; it still reads the file
        warnings.simplefilter("ignore", DeprecationWarning)
        state = torch.jit.load(path, map_location="cpu")._model.state_dict()
    return {ours: state[theirs].detach().clone() for theirs, ours in _JIT_NAMES.items()}


_lock = threading.Lock()
_model: Optional[SileroVAD] = None


def model() -> SileroVAD:
    """The network, loaded once per process (1.2 MB of weights): the package's default model,
    or, where this torch cannot read TorchScript any more (``torch.jit`` is deprecated), its
    safetensors file, with a warning that the probabilities are the earlier weights'."""
    global _model
    with _lock:
        if _model is None:
            try:
                _model = SileroVAD.load()
            except (AttributeError, RuntimeError, NotImplementedError) as e:
                warnings.warn(f"Silero VAD: the package's default model cannot be read here ({e}); "
                              "using its safetensors file (other, earlier weights)")
                _model = SileroVAD.load(weights_path("safetensors"))
        return _model


def _windows(samples: np.ndarray, context: np.ndarray) -> torch.Tensor:
    """samples [k * 512] after ``context`` [64] → windows [k, 576], each with its 64 predecessors."""
    x = torch.from_numpy(np.concatenate([context, samples]).astype(np.float32, copy=False))
    return x.unfold(0, WINDOW + CONTEXT, WINDOW)


def probabilities(chunks: Iterable[np.ndarray], *, block_seconds: float = 60.0,
                  net: Optional[SileroVAD] = None) -> Iterator[np.ndarray]:
    """Speech probabilities, one per 512 samples (32 ms), of 16 kHz mono float32 audio given as
    ``chunks`` of any sizes: yields float32 arrays block by block (``block_seconds`` of audio
    each; the state runs on across blocks). The last partial window is zero-padded, as the
    package's ``get_speech_timestamps`` pads it. Memory: one block."""
    net = net or model()
    block = max(1, int(block_seconds * SAMPLE_RATE) // WINDOW) * WINDOW
    context = np.zeros(CONTEXT, dtype=np.float32)
    state = None
    pending = np.zeros(0, dtype=np.float32)
    with torch.inference_mode():
        for chunk in chunks:
            pending = np.concatenate([pending, np.asarray(chunk, dtype=np.float32).reshape(-1)])
            while pending.shape[0] >= block:
                probs, state = net(_windows(pending[:block], context), state)
                context, pending = pending[block - CONTEXT:block], pending[block:]
                yield probs.numpy()
        if pending.shape[0]:
            padded = np.zeros(-(-pending.shape[0] // WINDOW) * WINDOW, dtype=np.float32)
            padded[:pending.shape[0]] = pending
            probs, state = net(_windows(padded, context), state)
            yield probs.numpy()


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """All the probabilities of ``samples`` (16 kHz mono float32) at once: [ceil(n / 512)]."""
    out = list(probabilities([samples]))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
