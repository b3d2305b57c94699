"""Voice activity detection: the native Silero network, regions, window plans, the backend hook.

The network is checked against the silero-vad package's own model (its TorchScript file, run by
the package in a subprocess, so that the package's ``torch.set_num_threads(1)`` at import never
touches this process), and, for the package's safetensors file, against a plain step-by-step
re-implementation of the package's reference code (``tinygrad_model.py``: ``LSTMCell`` called
window by window). Times are seconds throughout.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import whispermedia as wm
from whispermedia import silero
from whispermedia.errors import PluginNotFound
from whispermedia.hookspecs import hookimpl
from whispermedia.options import OptionError, TranscribeOptions
from whispermedia.plugins import PluginHost, use_host
from whispermedia.registry import SpeechBackend, SpeechBackendRegister
from whispermedia.speech import SpeechParams, clips_from_regions, plan_speech, regions_from_probabilities

HERE = Path(__file__).parent
JFK = HERE / "data" / "speech" / "jfk.flac"
HAVE_SILERO = importlib.util.find_spec("silero_vad") is not None
needs_silero = pytest.mark.skipif(not HAVE_SILERO, reason="needs silero-vad (pip install 'silero-vad==6.2.3')")


@pytest.fixture(scope="module")
def jfk() -> np.ndarray:
    from whispermedia.media import load_audio

    return load_audio(str(JFK))


def _test_audio(jfk: np.ndarray) -> np.ndarray:
    """jfk, then 3 s of noise at -40 dBFS, a tone, and jfk again: 25.6 s (not a multiple of 512)."""
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    return np.concatenate([jfk, 0.01 * rng.standard_normal(48000), 0.1 * np.sin(2 * np.pi * 440 * t),
                           jfk[:-123]]).astype(np.float32)


# --- the network ---------------------------------------------------------------------------------


@needs_silero
def test_weights_are_found_without_importing_the_package():
    code = textwrap.dedent("""
        import sys, torch
        torch.set_num_threads(3)
        from whispermedia import silero
        silero.weights_path(); silero.model()
        assert "silero_vad" not in sys.modules, "the package was imported"
        assert torch.get_num_threads() == 3, torch.get_num_threads()
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_silero
def test_probabilities_match_the_package_model(jfk, tmp_path):
    audio = _test_audio(jfk)
    np.save(tmp_path / "audio.npy", audio)
    reference = textwrap.dedent("""
        import sys, numpy as np, torch
        from silero_vad import load_silero_vad
        model = load_silero_vad()  # the package's default model, called as its own helpers call it
        x = torch.from_numpy(np.load(sys.argv[1]))
        x = torch.nn.functional.pad(x, (0, (-len(x)) % 512))
        probs = [model(x[i:i + 512], 16000).item() for i in range(0, len(x), 512)]
        np.save(sys.argv[2], np.array(probs, dtype=np.float32))
    """)
    subprocess.run([sys.executable, "-c", reference, str(tmp_path / "audio.npy"), str(tmp_path / "ref.npy")],
                   check=True)
    expected = np.load(tmp_path / "ref.npy")
    got = silero.speech_probabilities(audio)
    assert got.shape == expected.shape == (-(-len(audio) // 512),)
    assert np.abs(got - expected).max() < 1e-4
    assert expected.max() > 0.9 and expected.min() < 0.1  # the clip has speech and non-speech


def _step_by_step(w: dict, audio: np.ndarray) -> np.ndarray:
    """The package's reference loop (tinygrad_model.py), in plain torch: one window at a time."""
    cell = torch.nn.LSTMCell(128, 128)
    cell.load_state_dict({k[len("lstm_cell."):]: v for k, v in w.items() if k.startswith("lstm_cell.")})
    x = torch.from_numpy(audio)
    x = torch.nn.functional.pad(x, (0, (-len(x)) % 512))
    x = torch.nn.functional.pad(x, (64, 0))
    state, out = None, []
    with torch.no_grad():
        for i in range(64, len(x), 512):
            y = torch.nn.functional.pad(x[None, i - 64:i + 512], (0, 64), mode="reflect")[:, None]
            y = torch.nn.functional.conv1d(y, w["stft_conv.weight"], stride=128)
            y = (y[:, :129] ** 2 + y[:, 129:] ** 2).sqrt()
            for k, stride in zip(range(1, 5), (1, 2, 2, 1)):
                y = torch.relu(torch.nn.functional.conv1d(y, w[f"conv{k}.weight"], w[f"conv{k}.bias"],
                                                          stride=stride, padding=1))
            state = cell(y[..., 0], state)
            y = torch.nn.functional.conv1d(torch.relu(state[0])[..., None], w["final_conv.weight"],
                                           w["final_conv.bias"])
            out.append(torch.sigmoid(y).mean().item())
    return np.array(out, dtype=np.float32)


@needs_silero
def test_safetensors_weights_match_the_reference_loop(jfk):
    from safetensors.torch import load_file

    path = silero.weights_path("safetensors")
    audio = _test_audio(jfk)[:16000 * 14]
    net = silero.SileroVAD.load(path)
    got = np.concatenate(list(silero.probabilities([audio], net=net)))
    assert np.abs(got - _step_by_step(load_file(path), audio)).max() < 1e-4


@needs_silero
def test_blocks_and_chunks_change_nothing(jfk):
    audio = _test_audio(jfk)
    whole = silero.speech_probabilities(audio)
    sizes = [1000, 7, 40000, 513, 100000]
    chunks, i = [], 0
    while i < len(audio):
        n = sizes[len(chunks) % len(sizes)]
        chunks.append(audio[i:i + n])
        i += n
    blocked = np.concatenate(list(silero.probabilities(chunks, block_seconds=1.5)))
    assert np.abs(blocked - whole).max() < 1e-5


# --- regions and window plans --------------------------------------------------------------------


def _flat(regions):
    return [t for r in regions for t in r]


def test_regions_hysteresis_min_speech_min_silence_and_pad():
    p = SpeechParams(threshold=0.5, min_speech=0.25, min_silence=0.3, pad=0.1)
    step = 0.1
    probs = np.array([0, 0.9, 0.9, 0.4, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0, 0, 0, 0, 0.8, 0, 0, 0, 0.9, 0.9, 0.9])
    # 0.4 is above threshold - 0.15: no silence starts there; 2 frames (0.2 s) under it are a
    # pause kept inside; 0.8 alone (0.1 s) is too short; the last run reaches the end
    assert _flat(regions_from_probabilities(probs, step, p)) == pytest.approx([0.0, 1.1, 1.7, 2.1])
    assert regions_from_probabilities(np.zeros(50), step, p) == []
    # padding that would overlap the neighbour merges the two
    close = np.array([0.9, 0.9, 0.9, 0, 0, 0, 0.9, 0.9, 0.9])
    assert _flat(regions_from_probabilities(close, step, SpeechParams(0.5, 0.1, 0.3, 0.0))) == pytest.approx(
        [0.0, 0.3, 0.6, 0.9])
    assert _flat(regions_from_probabilities(close, step, SpeechParams(0.5, 0.1, 0.3, 0.15))) == pytest.approx(
        [0.0, 0.9])


def test_clips_join_short_gaps_and_keep_the_users_clips():
    regions = [(1.0, 2.0), (3.0, 4.0), (10.0, 12.5)]
    assert clips_from_regions(regions, [(0, 2000)], 2000, max_gap=0.0) == [(100, 200), (300, 400), (1000, 1250)]
    assert clips_from_regions(regions, [(0, 2000)], 2000, max_gap=3.0) == [(100, 400), (1000, 1250)]
    # --clip-timestamps 0,3.5,11 : the regions within the user's stretches
    assert clips_from_regions(regions, [(0, 350), (1100, 2000)], 2000, max_gap=0.0) == [
        (100, 200), (300, 350), (1100, 1250)]
    assert clips_from_regions([(19.0, 25.0)], [(0, 2000)], 2000) == [(1900, 2000)]  # clipped to the audio


# --- options -------------------------------------------------------------------------------------


def test_options_and_presets():
    assert TranscribeOptions().vad == "silero" and TranscribeOptions().suppress_hallucinations
    for preset in ("openai", "openai-transcribe"):  # openai-whisper, exactly: nothing of ours on top
        o = TranscribeOptions.from_kwargs(preset=preset)
        assert o.vad == "off" and not o.suppress_hallucinations
    assert TranscribeOptions.from_kwargs(preset="greedy").vad == "silero"
    assert TranscribeOptions.from_kwargs(preset="openai", vad="energy").vad == "energy"  # a keyword wins
    with pytest.raises(OptionError, match="vad_threshold"):
        TranscribeOptions(vad_threshold=1.5)
    with pytest.raises(OptionError, match="vad_pad"):
        TranscribeOptions(vad_pad=-1)
    with pytest.raises(OptionError, match="vad"):
        TranscribeOptions(vad="")


def test_cli_flags_parse_into_the_options():
    from whispermedia.cli_options import options_from_cli

    opts = options_from_cli(dict(vad="energy", vad_threshold="0.3", vad_max_gap="1.5",
                                 suppress_hallucinations=False))
    assert (opts.vad, opts.vad_threshold, opts.vad_max_gap, opts.suppress_hallucinations) == ("energy", 0.3, 1.5, False)


# --- the backend hook ----------------------------------------------------------------------------


class _Gate:
    """A user's backend: speech wherever a 10 ms frame peaks above 0.05; counts its calls."""

    calls = 0

    @staticmethod
    def detect(chunks, params):
        _Gate.calls += 1
        audio = np.concatenate(list(chunks))
        frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
        probs = (np.abs(frames).max(axis=1) > 0.05).astype(np.float32)
        return regions_from_probabilities(probs, 0.01, params, duration=len(audio) / 16000)

    @hookimpl
    def register_speech_backends(self, register):
        register.add(SpeechBackend("peaks", self.detect, help="peaks over 0.05"))
        register.add(SpeechBackend("silero", self.detect, help="a replacement for the built-in"))


def _burst_audio() -> np.ndarray:
    """1 s quiet, 1 s loud tone, 4 s quiet, 0.5 s loud, 1 s quiet (7.5 s)."""
    t = np.arange(16000) / 16000
    loud = 0.3 * np.sin(2 * np.pi * 300 * t)
    quiet = np.zeros(16000, dtype=np.float64)
    return np.concatenate([quiet, loud, quiet, quiet, quiet, quiet, loud[:8000], quiet]).astype(np.float32)


def test_a_plugin_backend_is_registered_and_replaces_the_builtin():
    from whispermedia.media import open_source

    host = PluginHost()
    host.load(entry_points=False)
    host.register(_Gate(), name="gate")
    with use_host(host):
        assert host.speech_backends()["peaks"].plugin == "gate"
        assert host.speech_backends()["silero"].plugin == "gate"  # the built-in is trylast
        assert host.speech_backends()["energy"].plugin == "whispermedia_plugins.vad"
        source = open_source(_burst_audio())
        opts = TranscribeOptions(vad="peaks", vad_pad=0.0, vad_min_silence=0.2, vad_max_gap=1.0)
        plan = plan_speech(source, opts, [(0, 750)], 750)
    assert [(r.start, r.end) for r in plan.regions] == [(1.0, 2.0), (6.0, 6.5)]
    assert plan.clips == ((100, 200), (600, 650)) and plan.backend == "peaks"
    assert plan.inside(1.2, 1.8) == 1.0 and plan.inside(2.0, 3.0) == 0.0 and plan.inside(1.5, 2.5) == 0.5


def test_registered_energy_backend_and_unknown_names():
    from whispermedia.media import open_source

    source = open_source(_burst_audio())
    plan = plan_speech(source, TranscribeOptions(vad="energy", vad_pad=0.0), [(0, 750)], 750)
    assert _flat((r.start, r.end) for r in plan.regions) == pytest.approx([1.0, 2.0, 6.0, 6.5], abs=0.04)
    off = plan_speech(source, TranscribeOptions(vad="off"), [(0, 750)], 750)
    assert off.regions is None and off.clips == ((0, 750),) and off.inside(0, 1) == 1.0
    with pytest.raises(PluginNotFound, match="unknown voice activity detector 'nope'.*energy, silero, off"):
        plan_speech(source, TranscribeOptions(vad="nope"), [(0, 750)], 750)
    with pytest.raises(ValueError, match="'off' is taken"):
        SpeechBackend("off", _Gate.detect)


def test_a_failing_backend_is_a_plugin_failure_naming_it():
    from whispermedia.errors import PluginFailed
    from whispermedia.media import open_source

    class Broken:
        @hookimpl
        def register_speech_backends(self, register):
            register.add(SpeechBackend("broken", lambda chunks, params: [(0.0, "soon")]))

    host = PluginHost()
    host.load(entry_points=False)
    host.register(Broken(), name="brokenvad")
    with use_host(host), pytest.raises(PluginFailed, match="speech backend 'broken' .plugin 'brokenvad'. failed: "
                                                          "ValueError"):
        plan_speech(open_source(_burst_audio()), TranscribeOptions(vad="broken"), [(0, 750)], 750)


def test_an_unknown_backend_fails_before_any_model_is_loaded(monkeypatch):
    import whispermedia.pipeline as pipeline

    monkeypatch.setattr(pipeline, "resolve_model", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(PluginNotFound):
        wm.transcribe(_burst_audio(), model="base", vad="nope")


def test_wm_run_refuses_an_unknown_backend_before_reading_any_input(tmp_path, monkeypatch):
    """``wm run --vad nope``: one usage line naming the known detectors (exit 2), before any
    input is probed (the input here does not even exist) or any model loaded."""
    from click.testing import CliRunner

    import whispermedia.cli_run as cli_run
    from whispermedia.cli import cli

    monkeypatch.setitem(vars(wm), "load_model", lambda *a, **k: pytest.fail("model loaded"))
    monkeypatch.setattr(cli_run.cli_inputs, "open_input", lambda *a, **k: pytest.fail("input probed"))
    result = CliRunner().invoke(cli, ["run", "--vad", "nope", str(tmp_path / "missing.mp4")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["wm: unknown voice activity detector 'nope' (--vad); known: energy, silero, off"]


def test_words_are_fitted_to_the_region_they_overlap_most():
    """Word timing can stretch a word over a pause between two regions decoded together: the
    word is cut back to the region (± padding) holding most of it; words inside a region, and
    words the VAD missed (no overlap), keep their times; order and segment bounds hold."""
    from whispermedia.speech import SpeechPlan
    from whispermedia.types import Segment, SpeechRegion, Word

    plan = SpeechPlan((SpeechRegion(1.0, 2.49), SpeechRegion(3.046, 4.0)), ((100, 400),))
    words = (Word(" ask", 1.2, 1.5, 0.9), Word(" what", 2.3, 3.1, 0.8),  # mostly in the first region
             Word(" you", 2.9, 3.3, 0.9),  # mostly in the second: its start moves to 3.046 - 0.03
             Word(" can", 3.3, 3.6, 0.9), Word(" now", 5.0, 5.4, 0.7))  # the last overlaps none
    seg = Segment(0, 100, 1.2, 5.4, " ask what you can now", (1, 2), 0.0, -0.2, 1.1, 0.1, words)
    fitted = plan.fit_words(seg, 0.03)
    assert [(w.start, w.end) for w in fitted.words] == [(1.2, 1.5), (2.3, 2.52), (3.016, 3.3), (3.3, 3.6),
                                                        (5.0, 5.4)]
    assert (fitted.start, fitted.end, fitted.text) == (seg.start, seg.end, seg.text)
    assert SpeechPlan(None, ((0, 100),)).fit_words(seg, 0.03) is seg
