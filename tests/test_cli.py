"""The ``wm`` command, through click's CliRunner.

Most tests replace ``whispermedia.load_model`` and ``whispermedia.transcribe`` (the two names
the CLI calls) with fakes, so they check the CLI's own behaviour in milliseconds: plugin
resolution before any work, one-line errors and exit codes, skip-existing, atomic writes,
JSON progress. Bad media goes through the real media layer with a fake model; the real model
runs only in the ``slow`` end-to-end test at the bottom.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest
from click.testing import CliRunner

import whispermedia
from whispermedia.cli import cli
from whispermedia.errors import MediaError, ModelError
from whispermedia.options import TranscribeOptions
from whispermedia.types import Progress, Segment, Transcript, TranscriptInfo

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SAMPLES = ROOT / "samples"


def _import_error(name: str) -> str | None:
    """Why ``name`` cannot be imported yet (modules still being written), or None."""
    try:
        importlib.import_module(name)
    except ImportError as e:
        return f"{name}: {e}"
    return None


def _module(name: str):
    return None if _import_error(name) else importlib.import_module(name)


def _needs(*modules: str):
    errors = [e for e in map(_import_error, modules) if e]
    return pytest.mark.skipif(bool(errors), reason=f"not importable yet: {'; '.join(errors)}")


# the plugin host and the writers: needed by every test that resolves --plugin or writes a file
needs_host = _needs("whispermedia.plugins", "whispermedia.output")


def runner() -> CliRunner:
    """stdout and stderr kept apart (click < 8.2 needs mix_stderr=False; 8.2+ always separates)."""
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


def wm(*args: str, env: Dict[str, str] | None = None):
    return runner().invoke(cli, list(args), env=env, catch_exceptions=False)


def err_lines(result) -> List[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def sample_transcript(source: str, language: str = "en") -> Transcript:
    """The plugin kit's sample when it exists, else a small one built here; info filled in."""
    testing = _module("whispermedia.testing")
    if testing is not None and hasattr(testing, "sample_transcript"):
        t = testing.sample_transcript()
    else:
        segs = (
            Segment(0, 0, 0.0, 2.5, " And so my fellow Americans,", (1, 2), 0.0, -0.2, 1.2, 0.01),
            Segment(1, 0, 2.5, 5.0, " ask not what your country can do for you.", (3, 4), 0.0, -0.3, 1.3, 0.02),
        )
        info = TranscriptInfo("en", 0.97, 5.0, "transcribe", "base")
        t = Transcript(info, segs)
    info = dataclasses.replace(t.info, source=source, language=language, language_probability=0.97)
    return dataclasses.replace(t, info=info)


class FakeEngine:
    """Stands in for load_model/transcribe; records every call.

    An input whose bytes start with ``BAD`` fails the way bad media does (MediaError).
    """

    def __init__(self) -> None:
        self.loads: List[Dict[str, Any]] = []
        self.calls: List[Dict[str, Any]] = []

    def load_model(self, name_or_path: str = "base", device: str | None = None, compute_type: str = "float32"):
        self.loads.append({"name": name_or_path, "device": device, "compute_type": compute_type})
        return SimpleNamespace(name=str(name_or_path), device=device)

    def transcribe(self, audio, *, model="base", options=None, audio_stream=None, progress=None):
        self.calls.append(dict(audio=str(audio), model=model, language=options.language, task=options.task,
                               audio_stream=audio_stream, options=options))
        language = options.language
        if isinstance(audio, (str, os.PathLike)) and Path(audio).read_bytes().startswith(b"BAD"):
            raise MediaError("no audio stream", str(audio))
        if progress is not None:  # as the pipeline reports: the language first, then each window
            lang = dict(language=language or "en", language_probability=None if language else 0.97)
            progress(Progress(0.0, 30.0, 0, str(audio), **lang))
            progress(Progress(15.0, 30.0, 1, str(audio), **lang))
            progress(Progress(30.0, 30.0, 2, str(audio), **lang))
        return sample_transcript(str(audio), language or "en")


def given(preset=None, **kwargs) -> TranscribeOptions:
    """What ``wm run`` should hand the library for these options (the task is always settled)."""
    return TranscribeOptions.from_kwargs(preset, **{"task": "transcribe", **kwargs})


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    # set in the module's namespace: whispermedia imports its names lazily (module __getattr__)
    monkeypatch.setitem(vars(whispermedia), "load_model", fake.load_model)
    monkeypatch.setitem(vars(whispermedia), "transcribe", fake.transcribe)
    return fake


def wav_bytes(seconds: float = 0.5) -> bytes:
    """A real (silent) 16 kHz mono WAV file: every input is probed before the model loads."""
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))
    return buf.getvalue()


def media(tmp_path: Path, name: str = "talk.mp4", content: bytes | None = None) -> Path:
    """A media file the media layer opens (a short WAV whatever the name says), or ``content``."""
    path = tmp_path / name
    path.write_bytes(wav_bytes() if content is None else content)
    return path


def fixture_copy(tmp_path: Path, name: str) -> Path:
    """A media fixture from tests/data copied to tmp_path (outputs go beside their input)."""
    src = DATA / name
    if not src.exists():
        pytest.skip(f"tests/data/{name} is not committed yet")
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


# ---------------------------------------------------------------------------------------------
# the group


def test_version():
    result = wm("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("wm ")


def test_help_lists_commands():
    result = wm("--help")
    assert result.exit_code == 0
    for name in ("run", "doctor", "models", "plugins"):
        assert name in result.stdout


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "whispermedia", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wm ")


# ---------------------------------------------------------------------------------------------
# wm run: everything checked before the model loads


@needs_host
def test_unknown_plugin_is_one_line_exit_2(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--plugin", "srt", "--plugin", "xyz", str(video))
    assert result.exit_code == 2
    lines = err_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wm: unknown plugin 'xyz' (known: ")
    assert "srt" in lines[0] and "Traceback" not in result.stderr
    assert engine.loads == [] and engine.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]


@needs_host
def test_task_plugin_sets_the_task(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--plugin", "translate", "--plugin", "srt", str(video))
    assert result.exit_code == 0, result.stderr
    assert engine.calls[0]["task"] == "translate"
    assert (tmp_path / "talk.srt").exists()


@needs_host
def test_conflicting_tasks_are_a_usage_error(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--plugin", "translate", "--task", "transcribe", str(video))
    assert result.exit_code == 2
    assert len(err_lines(result)) == 1 and "conflicting tasks" in result.stderr
    assert engine.loads == []


@needs_host
def test_bad_decoding_option_is_a_usage_error(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--temperature", "-1", str(video))
    assert result.exit_code == 2
    assert len(err_lines(result)) == 1 and "temperature" in result.stderr
    assert engine.loads == []


@needs_host
def test_unknown_language_is_a_usage_error(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--language", "klingon", str(video))
    assert result.exit_code == 2
    assert len(err_lines(result)) == 1
    assert engine.loads == []


# ---------------------------------------------------------------------------------------------
# wm run: inputs that cannot be read -> exit 3, one line naming the file, nothing written


def _assert_input_error(result, path: Path, tmp_path: Path, keep: List[str]):
    assert result.exit_code == 3, (result.stdout, result.stderr)
    lines = err_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"wm: {path}: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


@needs_host
def test_missing_path(tmp_path, engine):
    missing = tmp_path / "nope.mp4"
    result = wm("run", "--plugin", "srt", str(missing))
    _assert_input_error(result, missing, tmp_path, keep=[])
    assert engine.loads == []  # no model load for an input that is not there


@needs_host
def test_zero_byte_file(tmp_path, engine):
    empty = media(tmp_path, "empty.mp4", b"")
    result = wm("run", "--plugin", "srt", str(empty))
    _assert_input_error(result, empty, tmp_path, keep=["empty.mp4"])
    assert engine.loads == []


_REAL_MODEL: List[Any] = []


@pytest.fixture
def real_media(monkeypatch: pytest.MonkeyPatch):
    """The real transcribe, so the real media layer, with the default model loaded once."""
    errors = [e for e in map(_import_error, ("whispermedia.pipeline", "whispermedia.media")) if e]
    if errors:
        pytest.skip(f"not importable yet: {'; '.join(errors)}")
    if not _REAL_MODEL:
        _REAL_MODEL.append(whispermedia.load_model("base", device="cpu"))
    loads: List[Dict[str, Any]] = []

    def load_model(name_or_path: str = "base", device: str | None = None, compute_type: str = "float32"):
        loads.append({"name": name_or_path, "device": device, "compute_type": compute_type})
        return _REAL_MODEL[0]

    monkeypatch.setitem(vars(whispermedia), "load_model", load_model)
    return loads


@needs_host
@pytest.mark.parametrize(
    "name, content",
    [
        ("text.mp4", b"This is a plain text file that only pretends to be a video.\n"),
        ("not_media.mp4", None),
        ("video_only.mp4", None),
        ("truncated.mp4", None),
        ("truncated_faststart.mp4", None),
        ("empty.mp4", None),
    ],
)
def test_unreadable_media(tmp_path, real_media, name, content):
    path = media(tmp_path, name, content) if content is not None else fixture_copy(tmp_path, name)
    result = wm("run", "--plugin", "srt", str(path))
    _assert_input_error(result, path, tmp_path, keep=[name])


@needs_host
def test_several_inputs_one_fails(tmp_path, engine):
    a = media(tmp_path, "a.mp4")
    bad = media(tmp_path, "b.mp4", b"BAD")
    c = media(tmp_path, "c.mp4")
    missing = tmp_path / "d.mp4"
    result = wm("run", "--plugin", "srt", "--language", "en", str(a), str(bad), str(missing), str(c))
    assert result.exit_code == 3
    assert result.stdout.splitlines() == [str(tmp_path / "a.srt"), str(tmp_path / "c.srt")]
    lines = err_lines(result)
    assert lines == [f"wm: {bad}: not a media file PyAV can read (unrecognised format)",
                     f"wm: {missing}: no such file"]
    assert (tmp_path / "a.srt").exists() and (tmp_path / "c.srt").exists()
    assert not (tmp_path / "b.srt").exists()
    assert len(engine.loads) == 1  # one model for all inputs


# ---------------------------------------------------------------------------------------------
# wm run: outputs


@needs_host
def test_writes_srt_beside_input_and_prints_path(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--plugin", "srt", str(video))
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "talk.srt"
    assert result.stdout == f"{out}\n"
    text = out.read_text(encoding="utf-8")
    assert "-->" in text and "," in text.split("-->")[0]
    # atomic writes leave nothing behind but the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4", "talk.srt"]


class _BrokenFormat:
    """A plugin whose format writes half a file, then fails."""

    def __init__(self) -> None:
        from whispermedia.hookspecs import hookimpl
        from whispermedia.registry import OutputFormat

        def write(transcript, fp, options):
            fp.write("half a file")
            raise RuntimeError("disk on fire")

        @hookimpl
        def register_output_formats(register):
            register.add(OutputFormat("boom", "boom", write))

        self.register_output_formats = register_output_formats


@needs_host
def test_failed_write_leaves_nothing_behind(tmp_path, engine):
    from whispermedia.testing import plugin_host

    video = media(tmp_path)
    with plugin_host(_BrokenFormat()):
        result = wm("run", "-l", "en", "-p", "srt,boom", str(video))
    assert result.exit_code == 6  # a plugin failed while running: PluginFailed, not a usage error
    lines = err_lines(result)
    assert len(lines) == 1 and "disk on fire" in lines[0] and "Traceback" not in result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / "talk.srt")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4", "talk.srt"]  # no temp file, no talk.boom


@needs_host
def test_default_format_is_txt_and_several_formats(tmp_path, engine):
    video = media(tmp_path)
    assert wm("run", str(video)).exit_code == 0
    assert (tmp_path / "talk.txt").exists()
    result = wm("run", "--plugin", "srt,vtt", str(video))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / "talk.srt"), str(tmp_path / "talk.vtt")]
    assert (tmp_path / "talk.vtt").read_text(encoding="utf-8").startswith("WEBVTT")


@needs_host
def test_output_dir(tmp_path, engine):
    video = media(tmp_path)
    out_dir = tmp_path / "subs" / "en"
    result = wm("run", "--plugin", "srt", "--output-dir", str(out_dir), str(video))
    assert result.exit_code == 0, result.stderr
    assert (out_dir / "talk.srt").exists()
    assert not (tmp_path / "talk.srt").exists()


@needs_host
def test_existing_output_kept_without_overwrite(tmp_path, engine):
    video = media(tmp_path)
    out = tmp_path / "talk.srt"
    out.write_text("old\n", encoding="utf-8")
    result = wm("run", "--plugin", "srt", str(video))
    assert result.exit_code == 0
    assert err_lines(result) == [f"wm: {out}: exists, kept (--overwrite replaces it)"]
    assert out.read_text(encoding="utf-8") == "old\n"
    assert engine.calls == [] and engine.loads == []  # skipped before transcribing, no model

    result = wm("run", "--plugin", "srt", "--overwrite", str(video))
    assert result.exit_code == 0, result.stderr
    assert out.read_text(encoding="utf-8") != "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4", "talk.srt"]


@needs_host
def test_existing_output_skips_only_that_input(tmp_path, engine):
    a, b = media(tmp_path, "a.mp4"), media(tmp_path, "b.mp4")
    (tmp_path / "a.srt").write_text("old\n", encoding="utf-8")
    result = wm("run", "--plugin", "srt", str(a), str(b))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [str(tmp_path / "b.srt")]
    assert [c["audio"] for c in engine.calls] == [str(b)]


@needs_host
def test_output_never_replaces_the_input(tmp_path, engine):
    notes = media(tmp_path, "notes.txt")
    result = wm("run", "-p", "txt", "--overwrite", str(notes))
    assert result.exit_code == 5 and len(err_lines(result)) == 1
    assert notes.read_bytes() == wav_bytes() and engine.calls == []


@needs_host
def test_two_inputs_same_output_name(tmp_path, engine):
    a, b = media(tmp_path, "x.mp4"), media(tmp_path, "x.mkv")
    result = wm("run", "--plugin", "srt", str(a), str(b))
    assert result.exit_code == 5
    assert result.stdout.splitlines() == [str(tmp_path / "x.srt")]
    assert "also the output of" in result.stderr


# ---------------------------------------------------------------------------------------------
# wm run: what reaches the library, language line, progress


@needs_host
def test_options_reach_transcribe(tmp_path, engine):
    video = media(tmp_path)
    result = wm(
        "run", "--model", "tiny.en", "--device", "cpu", "--language", "English", "--audio-stream", "0",
        "--temperature", "0,0.4", "--beam-size", "3", "--no-condition-on-previous-text",
        "--initial-prompt", "Hello.", "--word-timestamps", "--no-speech-threshold", "0.5", str(video),
    )
    assert result.exit_code == 0, result.stderr
    assert engine.loads == [{"name": "tiny.en", "device": "cpu", "compute_type": "float32"}]
    call = engine.calls[0]
    assert call["language"] == "en" and call["audio_stream"] == 0 and call["task"] == "transcribe"
    assert call["options"] == given(
        temperature=(0.0, 0.4), beam_size=3, condition_on_previous_text=False, language="en",
        initial_prompt="Hello.", word_timestamps=True, no_speech_threshold=0.5,
    )
    assert "detected language" not in result.stderr  # the language was named


@needs_host
def test_preset_and_every_decoding_option_reach_transcribe(tmp_path, engine):
    video = media(tmp_path)
    result = wm(
        "run", "--preset", "openai", "--language-per-region", "--patience", "2", "--length-penalty", "0.5",
        "--best-of", "3", "--carry-initial-prompt", "--initial-prompt", "Names.", "--prefix", "So",
        "--suppress-tokens=-1,11", "--no-suppress-blank", "--without-timestamps", "--max-initial-timestamp", "0.5",
        "--clip-timestamps", "0,5", "--word-timestamps", "--hallucination-silence-threshold", "2",
        "--prepend-punctuations", "(", "--append-punctuations", ")", "--compression-ratio-threshold", "2.0",
        "--logprob-threshold", "-0.5", str(video),
    )
    assert result.exit_code == 0, result.stderr
    assert engine.calls[0]["language"] is None
    assert engine.calls[0]["options"] == given(
        "openai", language_per_region=True, patience=2.0, length_penalty=0.5, best_of=3,
        carry_initial_prompt=True, initial_prompt="Names.", prefix="So", suppress_tokens=(-1, 11),
        suppress_blank=False, without_timestamps=True, max_initial_timestamp=0.5, clip_timestamps=(0.0, 5.0),
        word_timestamps=True, hallucination_silence_threshold=2.0, prepend_punctuations="(",
        append_punctuations=")", compression_ratio_threshold=2.0, logprob_threshold=-0.5,
    )


@needs_host
def test_compute_type_reaches_the_model_load(tmp_path, engine):
    result = wm("run", "-l", "en", str(media(tmp_path)))
    assert result.exit_code == 0, result.stderr
    result = wm("run", "-l", "en", "--compute-type", "int8", str(media(tmp_path, "b.mp4")))
    assert result.exit_code == 0, result.stderr
    assert [load["compute_type"] for load in engine.loads] == ["float32", "int8"]
    result = wm("run", "--compute-type", "int4", str(media(tmp_path, "c.mp4")))
    assert result.exit_code == 2 and "int4" in result.stderr


@needs_host
def test_temperature_increment_on_fallback(tmp_path, engine):
    result = wm("run", "-l", "en", "--temperature", "0", "--temperature-increment-on-fallback", "0.25",
                str(media(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert engine.calls[0]["options"].temperature == (0.0, 0.25, 0.5, 0.75, 1.0)
    result = wm("run", "-l", "en", "--temperature-increment-on-fallback", "0.2", str(media(tmp_path, "b.mp4")))
    assert engine.calls[1]["options"].temperature == (0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0)
    result = wm("run", "-l", "en", "--temperature", "0,0.5", "--temperature-increment-on-fallback", "0.2",
                str(media(tmp_path, "c.mp4")))
    assert result.exit_code == 2 and len(engine.calls) == 2
    assert err_lines(result) == ["wm: --temperature-increment-on-fallback needs one --temperature "
                                 "(the first of the schedule)"]


@needs_host
@pytest.mark.parametrize("args, message", [
    (["--preset", "fast"], "Invalid value for '--preset'"),
    (["--language-per-region", "--language", "fr"], "wm: --language-per-region detects the language of every window"),
    (["--suppress-tokens", "a,b"], "wm: --suppress-tokens: expected token ids"),
    (["--clip-timestamps", "0,x"], "wm: --clip-timestamps: expected seconds"),
    (["--preset", "greedy", "--patience", "2"], "wm: --patience requires --beam-size"),
])
def test_bad_decoding_options_are_usage_errors(tmp_path, engine, args, message):
    result = wm("run", *args, str(media(tmp_path)))
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert engine.calls == [] and engine.loads == []


def _with_languages(engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the fake engine's transcript carry per-region languages."""
    real = engine.transcribe

    def transcribe(audio, **kwargs):
        t = real(audio, **kwargs)
        langs = ["en", "fr", "fr"]
        segs = tuple(dataclasses.replace(s, language=langs[i % 3]) for i, s in enumerate(t.segments))
        return dataclasses.replace(t, segments=segs)

    monkeypatch.setitem(vars(whispermedia), "transcribe", transcribe)


@needs_host
def test_language_regions_on_stderr(tmp_path, engine, monkeypatch):
    _with_languages(engine, monkeypatch)
    video = media(tmp_path)
    result = wm("run", "--language-per-region", str(video))
    assert result.exit_code == 0, result.stderr
    lines = err_lines(result)
    assert lines[0] == f"{video}: detected language: en (p=0.97)"
    segs = sample_transcript(str(video)).segments
    assert lines[1].startswith(f"{video}: languages by region: en 0:00.0-")
    assert ", fr " in lines[1] and len(lines) == 2 and len(segs) >= 2


@needs_host
def test_language_regions_json_event(tmp_path, engine, monkeypatch):
    _with_languages(engine, monkeypatch)
    video = media(tmp_path)
    result = wm("run", "--language-per-region", "--progress", "json", str(video))
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in err_lines(result)]
    regions = [e for e in events if e["event"] == "language_regions"]
    assert len(regions) == 1 and regions[0]["file"] == str(video)
    assert [r["language"] for r in regions[0]["regions"]][:2] == ["en", "fr"]
    assert all(r["start"] <= r["end"] for r in regions[0]["regions"])


@needs_host
def test_default_device(tmp_path, engine):
    import torch

    assert wm("run", "-l", "en", str(media(tmp_path))).exit_code == 0
    assert engine.loads == [{"name": "base", "device": "cuda" if torch.cuda.is_available() else "cpu",
                             "compute_type": "float32"}]


@needs_host
def test_detected_language_on_stderr(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--language", "auto", str(video))
    assert result.exit_code == 0, result.stderr
    assert engine.calls[0]["language"] is None
    assert err_lines(result) == [f"{video}: detected language: en (p=0.97)"]


@needs_host
def test_progress_json_lines(tmp_path, engine):
    good, bad = media(tmp_path, "a.mp4"), media(tmp_path, "b.mp4", b"BAD")
    result = wm("run", "--progress", "json", "--plugin", "srt", str(good), str(bad))
    assert result.exit_code == 3
    events = [json.loads(line) for line in err_lines(result)]  # every line parses
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and all(e["file"] == str(good) for e in progress)
    assert set(progress[-1]) == {"event", "file", "seconds_done", "seconds_total", "segments"}
    assert progress[-1]["seconds_done"] == progress[-1]["seconds_total"] == 30.0
    done = [e for e in events if e["event"] == "done"]
    assert done == [{"event": "done", "file": str(good), "outputs": [str(tmp_path / "a.srt")], "skipped": []}]
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1 and errors[0]["file"] == str(bad) and errors[0]["code"] == 3
    assert str(bad) in errors[0]["message"]
    assert result.stdout.splitlines() == [str(tmp_path / "a.srt")]


@needs_host
def test_progress_none_on_a_pipe(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--language", "en", str(video))  # --progress auto, stderr not a terminal
    assert result.exit_code == 0
    assert result.stderr == ""


@needs_host
def test_progress_bar_when_asked(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "--language", "en", "--progress", "bar", str(video))
    assert result.exit_code == 0
    assert "100%" in result.stderr and "talk.mp4" in result.stderr


# ---------------------------------------------------------------------------------------------
# wm run: failures that are not the input's


@needs_host
def test_model_error_exit_4(tmp_path, engine, monkeypatch):
    def broken(name_or_path="base", device=None, compute_type="float32"):
        raise ModelError("not installed (pip install whatever)", name_or_path)

    monkeypatch.setitem(vars(whispermedia), "load_model", broken)
    a, b = media(tmp_path, "a.mp4"), media(tmp_path, "b.mp4")
    result = wm("run", "--model", "huge", str(a), str(b))
    assert result.exit_code == 4
    assert err_lines(result) == ["wm: huge: not installed (pip install whatever)"]
    assert engine.calls == []


@needs_host
def test_unexpected_exception_one_line_unless_debug(tmp_path, engine, monkeypatch):
    def boom(audio, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setitem(vars(whispermedia), "transcribe", boom)
    video = media(tmp_path)
    result = wm("run", str(video), env={"WM_DEBUG": None})
    assert result.exit_code == 1
    lines = err_lines(result)
    assert len(lines) == 1 and str(video) in lines[0] and "RuntimeError: kaboom" in lines[0]
    assert "Traceback" not in result.stderr

    result = wm("run", str(video), env={"WM_DEBUG": "1"})
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "kaboom" in result.stderr


# ---------------------------------------------------------------------------------------------
# doctor, models, plugins


@_needs("whispermedia.plugins")
def test_doctor_text_and_json():
    result = wm("doctor")
    assert result.exit_code == 0, result.stderr
    for word in ("python", "torch", "_C", "model", "plugins"):
        assert word in result.stdout
    report = json.loads(wm("doctor", "--json").stdout)
    assert set(report) >= {"python", "torch", "extension", "default_model", "plugins"}
    assert "error" not in report["torch"]


@_needs("whispermedia.models")
def test_models_text_and_json():
    result = wm("models")
    assert result.exit_code == 0, result.stderr
    entries = json.loads(wm("models", "--json").stdout)
    assert entries and {"name", "installed", "install_command", "default"} <= set(entries[0])
    assert sum(1 for e in entries if e["default"]) == 1
    for e in entries:
        assert e["name"] in result.stdout
        # an argv list, runnable as it is: no shell comment, no quoting left in
        argv = e["install_command"]
        assert isinstance(argv, list) and argv[:2] == ["pip", "install"]
        assert not any(a.startswith("#") or '"' in a for a in argv)
        if not e["installed"]:
            assert shlex.join(argv) in result.stdout


@_needs("whispermedia.plugins")
def test_plugins_text_and_json():
    result = wm("plugins")
    assert result.exit_code == 0, result.stderr
    report = json.loads(wm("plugins", "--json").stdout)
    assert set(report) == {"plugins", "failures", "output_formats", "tasks", "speech_backends"}
    names = {f["name"] for f in report["output_formats"]}
    assert {"srt", "txt"} <= names
    assert {"transcribe", "translate"} <= {t["name"] for t in report["tasks"]}
    assert {"silero", "energy"} <= {b["name"] for b in report["speech_backends"]}
    assert "voice activity detectors (--vad): energy, silero" in result.stdout
    assert json.loads(wm("--no-plugins", "plugins", "--json").stdout)["plugins"]


class _FailingRegistration:
    """A plugin whose registration hook raises."""

    def __init__(self) -> None:
        from whispermedia.hookspecs import hookimpl

        @hookimpl
        def register_output_formats(register):
            raise RuntimeError("broken on purpose")

        self.register_output_formats = register_output_formats


@needs_host
def test_a_broken_plugin_is_shown_and_wm_keeps_working(tmp_path, engine):
    from whispermedia.testing import plugin_host

    with pytest.warns(UserWarning, match="broken on purpose"), plugin_host(_FailingRegistration(), strict=False):
        report = json.loads(wm("plugins", "--json").stdout)
        assert any("broken on purpose" in (f.get("error_text") or "") for f in report["failures"])
        text = wm("plugins")
        assert text.exit_code == 0 and "FAILED" in text.stdout and "broken on purpose" in text.stdout
        doctor = wm("doctor")
        assert doctor.exit_code == 0 and "1 failed" in doctor.stdout and "broken on purpose" in doctor.stdout
        result = wm("run", "-l", "en", "-p", "srt", str(media(tmp_path)))
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "talk.srt").exists()


def _example_plugin_installed() -> bool:
    try:
        importlib.metadata.distribution("whispermedia-example-plugin")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@needs_host
@pytest.mark.skipif(not _example_plugin_installed(),
                    reason="tests/example_plugin is not installed (pip install --no-deps -e tests/example_plugin)")
def test_third_party_plugin_and_no_plugins(tmp_path, engine):
    listed = json.loads(wm("plugins", "--json").stdout)["plugins"]
    assert "whispermedia-example-plugin" in {p["dist_name"] for p in listed}
    bare = json.loads(wm("--no-plugins", "plugins", "--json").stdout)["plugins"]
    assert "whispermedia-example-plugin" not in {p["dist_name"] for p in bare}

    video = media(tmp_path)
    result = wm("run", "-p", "words-csv", "-l", "en", str(video))
    assert result.exit_code == 0, result.stderr
    assert engine.calls[0]["options"] == given(language="en", word_timestamps=True)  # the format needs words
    assert (tmp_path / "talk.words.csv").read_text(encoding="utf-8").startswith("start,end,word,probability")
    # a format that needs words beside one the layout engine lays out: word timing asked for once
    result = wm("run", "-p", "srt", "-p", "words-csv", "-l", "en", "--overwrite", str(video))
    assert result.exit_code == 0, result.stderr
    assert engine.calls[-1]["options"] == given(language="en", word_timestamps=True)
    assert (tmp_path / "talk.srt").is_file()

    result = wm("--no-plugins", "run", "-p", "words-csv", str(video))
    assert result.exit_code == 2 and "unknown plugin 'words-csv'" in result.stderr


# ---------------------------------------------------------------------------------------------
# end to end, the real model on the README's sample


@pytest.mark.slow
@needs_host
@_needs("whispermedia.pipeline", "whispermedia.media")
def test_end_to_end_srt_on_sample(tmp_path):
    videos = sorted(SAMPLES.glob("*.mp4"))
    if not videos:
        pytest.skip("samples/ has no .mp4 yet")
    video = tmp_path / videos[0].name
    shutil.copyfile(videos[0], video)
    env = dict(os.environ, WM_DEBUG="1")
    proc = subprocess.run(
        [sys.executable, "-m", "whispermedia", "run", "--plugin", "srt", str(video)],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    srt = video.with_suffix(".srt")
    assert proc.stdout.strip() == str(srt)
    assert "detected language: en" in proc.stderr
    text = srt.read_text(encoding="utf-8").lstrip("\ufeff")
    assert text.startswith("1\n00:00:0")
    cue_text = [ln for ln in text.splitlines() if ln.strip() and "-->" not in ln and not ln.strip().isdigit()]
    spoken = " ".join(re.sub(r"[^a-z ]", " ", " ".join(cue_text).lower()).split())
    for words in ("fellow americans", "ask not what your country can do for you"):
        assert words in spoken, text


@pytest.mark.slow
@needs_host
@_needs("whispermedia.pipeline", "whispermedia.media")
def test_end_to_end_translate_srt_equals_openai(tmp_path):
    """``wm run --plugin translate --plugin srt fr.flac``: English subtitles, and their text is
    openai-whisper's greedy translation of the same clip with the same weights (golden)."""
    golden = json.loads((ROOT / "tests" / "golden" / "tokens_base.json").read_text(encoding="utf-8"))
    expected = golden["cases"]["translate"]["clips"]["tests/data/speech_multilingual/fr.flac"]
    clip = tmp_path / "fr.flac"
    shutil.copyfile(DATA / "speech_multilingual" / "fr.flac", clip)
    env = dict(os.environ, WM_DEBUG="1")
    proc = subprocess.run(
        [sys.executable, "-m", "whispermedia", "run", "--plugin", "translate", "--plugin", "srt",
         "--preset", "openai-transcribe", "--temperature", "0", "--progress", "none", str(clip)],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"detected language: {expected['language']}" in proc.stderr
    srt = clip.with_suffix(".srt").read_text(encoding="utf-8").lstrip("\ufeff")
    cues = [ln for ln in srt.splitlines() if ln.strip() and "-->" not in ln and not ln.strip().isdigit()]
    assert " ".join(cues).split() == expected["text"].split()
