"""``wm run`` in a pipeline (issue 15) and its honest input/output messages (issue 16's share):
existing outputs are skips, bad inputs are refused before any model loads, ``-`` is stdin,
the audio stream is chosen by a rule and named, and output folders are checked up front.

Through the real ``wm`` command (click's runner, or a subprocess where a real pipe matters),
with the fake engine of test_cli.py for the model; media files are made here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

import whispermedia
from test_cli import FakeEngine, engine, err_lines, media, runner, wav_bytes, wm  # noqa: F401 (fixture)
from whispermedia.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_MP4 = ROOT / "samples" / "jfk.mp4"


def events(result):
    return [json.loads(line) for line in err_lines(result)]


def no_model_loader(monkeypatch):
    """A model loader that fails the test when called."""
    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setitem(vars(whispermedia), "load_model", load_model)


# -- 1. an existing output is a skip, per format --------------------------------------------------

def test_script_rerun_then_one_more_format(tmp_path, engine):
    """set -e over a folder, run twice, then with one more format."""
    folder = tmp_path / "folder"
    folder.mkdir()
    inputs = [str(media(folder, f"{n}.mp4")) for n in ("a", "b")]
    first = wm("run", "-l", "en", "-p", "srt", "--progress", "json", *inputs)
    assert first.exit_code == 0
    assert first.stdout.splitlines() == [str(folder / "a.srt"), str(folder / "b.srt")]
    (folder / "a.srt").write_text("fixed by hand\n", encoding="utf-8")

    second = wm("run", "-l", "en", "-p", "srt", "--progress", "json", *inputs)
    assert second.exit_code == 0 and second.stdout == ""  # nothing written, nothing printed
    ev = events(second)
    assert [(e["file"], e["output"]) for e in ev if e["event"] == "skipped"] == \
        [(inputs[0], str(folder / "a.srt")), (inputs[1], str(folder / "b.srt"))]
    assert [(e["file"], e["outputs"], e["skipped"]) for e in ev if e["event"] == "done"] == \
        [(inputs[0], [], [str(folder / "a.srt")]), (inputs[1], [], [str(folder / "b.srt")])]
    assert len(engine.loads) == 1  # the second run loaded no model

    third = wm("run", "-l", "en", "-p", "srt", "-p", "tsv", "--progress", "json", *inputs)
    assert third.exit_code == 0
    assert third.stdout.splitlines() == [str(folder / "a.tsv"), str(folder / "b.tsv")]
    done = [e for e in events(third) if e["event"] == "done"]
    assert [(e["outputs"], e["skipped"]) for e in done] == [
        ([str(folder / "a.tsv")], [str(folder / "a.srt")]), ([str(folder / "b.tsv")], [str(folder / "b.srt")])]
    assert (folder / "a.srt").read_text(encoding="utf-8") == "fixed by hand\n"  # the hand-fixed file is kept

    fourth = wm("run", "-l", "en", "-p", "srt", "--overwrite", inputs[0])
    assert fourth.exit_code == 0 and fourth.stdout.splitlines() == [str(folder / "a.srt")]
    assert (folder / "a.srt").read_text(encoding="utf-8") != "fixed by hand\n"


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script")
def test_set_e_script_through_the_console_script(tmp_path):
    """The same with a real shell: every input's outputs exist, so no model is loaded and the
    script goes on (the run before is the fast test above; this one needs no model at all)."""
    wm_bin = Path(sys.executable).with_name("wm")
    if not wm_bin.exists():
        pytest.skip("the wm console script is not installed in this environment")
    (tmp_path / "a.mp4").write_bytes(wav_bytes())
    (tmp_path / "a.srt").write_text("kept\n", encoding="utf-8")
    script = f'set -e\nout=$("{wm_bin}" run -p srt --model no-such-model "{tmp_path}"/*.mp4)\necho "after:$out"\n'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "after:\n"
    assert proc.stderr.strip() == f"wm: {tmp_path / 'a.srt'}: exists, kept (--overwrite replaces it)"


# -- 2. bad inputs are refused at once, with no model --------------------------------------------

def test_bad_inputs_cost_no_model_load(tmp_path, monkeypatch):
    no_model_loader(monkeypatch)
    text = media(tmp_path, "text.mp4", b"This is a plain text file that only pretends to be a video.\n")
    missing = tmp_path / "missing.mp4"
    start = time.monotonic()
    result = wm("run", "-p", "srt", str(text), str(missing))
    took = time.monotonic() - start
    assert result.exit_code == 3
    assert err_lines(result) == [f"wm: {text}: not a media file PyAV can read (unrecognised format)",
                                 f"wm: {missing}: no such file"]
    assert took < 1.0, f"rejection took {took:.2f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.mp4"]


def test_every_input_is_checked_before_the_model_loads(tmp_path, engine, monkeypatch):
    good = media(tmp_path, "a.mp4")
    bad = media(tmp_path, "z.mp4", b"not media at all")
    order = []
    real_load = engine.load_model
    monkeypatch.setitem(vars(whispermedia), "load_model", lambda *a, **k: (order.append("load"), real_load(*a, **k))[1])
    result = wm("run", "-l", "en", "--progress", "json", str(good), str(bad))
    assert result.exit_code == 3
    ev = events(result)
    assert ev[0]["event"] == "error" and ev[0]["file"] == str(bad)  # reported before the good one's work
    assert order == ["load"] and (tmp_path / "a.txt").exists()


def test_library_refuses_a_missing_or_bad_input_before_the_model(tmp_path, monkeypatch):
    import whispermedia.pipeline as pipeline

    def no_model(*args, **kwargs):
        raise AssertionError("the model was resolved")

    monkeypatch.setattr(pipeline, "resolve_model", no_model)
    start = time.monotonic()
    with pytest.raises(whispermedia.MediaError, match="no such file"):
        whispermedia.transcribe(str(tmp_path / "missing.wav"))
    with pytest.raises(whispermedia.MediaError, match="not a media file"):
        whispermedia.transcribe(str(media(tmp_path, "t.mp4", b"plain text")))
    assert time.monotonic() - start < 1.0


# -- 3. stdin, FIFOs, devices -----------------------------------------------------------------------

def test_dash_reads_stdin_and_names_outputs_stdin(tmp_path, engine):
    out = tmp_path / "subs"
    result = runner().invoke(cli, ["run", "-l", "en", "-p", "srt", "-o", str(out), "-"], input=wav_bytes(),
                             catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [str(out / "stdin.srt")]
    assert "-->" in (out / "stdin.srt").read_text(encoding="utf-8")


def test_dash_twice_is_refused(tmp_path, engine):
    result = runner().invoke(cli, ["run", "-l", "en", "-", "-"], input=wav_bytes(), catch_exceptions=False)
    assert result.exit_code == 2 and "stdin can be read once" in result.stderr
    assert engine.loads == []


def _wm_subprocess(args, stdin_bytes, cwd):
    return subprocess.run([sys.executable, "-m", "whispermedia", *args], input=stdin_bytes, capture_output=True,
                          cwd=cwd, timeout=120)


def test_piped_mp4_without_its_index_says_so(tmp_path):
    """A pipe that ends before an MP4's index (moov, at the end of this sample)."""
    data = SAMPLE_MP4.read_bytes()
    proc = _wm_subprocess(["run", "-p", "srt", "--model", "no-such-model", "-"], data[: len(data) // 2], tmp_path)
    assert proc.returncode == 3, proc.stderr
    line = proc.stderr.decode().strip()
    assert "\n" not in line and "index (moov atom)" in line and "pass the file's path" in line
    assert "corrupt" not in line and list(tmp_path.iterdir()) == []


def test_dev_stdin_on_a_pipe_is_read_not_called_empty(tmp_path):
    proc = _wm_subprocess(["run", "-o", str(tmp_path), "--model", "no-such-model", "/dev/stdin"],
                          b"just some text, not media\n", tmp_path)
    assert proc.returncode == 3
    assert proc.stderr.decode().strip() == "wm: /dev/stdin: not a media file PyAV can read (unrecognised format)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_with_a_writer_is_transcribed(tmp_path, engine):
    fifo = tmp_path / "talk.wav"
    os.mkfifo(fifo)

    def writer():
        with open(fifo, "wb") as f:
            f.write(wav_bytes(1.0))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    out = tmp_path / "out"
    result = wm("run", "-l", "en", "-p", "srt", "-o", str(out), str(fifo))
    thread.join(5)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [str(out / "talk.srt")]
    assert engine.calls and "spool" in engine.calls[0]["audio"]  # the spooled copy, not the FIFO again


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_character_devices_are_refused_as_such(device, monkeypatch):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    no_model_loader(monkeypatch)
    result = wm("run", "-p", "srt", device)
    assert result.exit_code == 3
    assert err_lines(result) == [f"wm: {device}: is a character device, not a media file or a pipe"]


def test_media_layer_refuses_devices_and_explains_a_streamed_mp4(tmp_path):
    from whispermedia import media as wm_media

    if os.path.exists("/dev/zero"):  # reading it would never end
        with pytest.raises(whispermedia.MediaError, match="^/dev/zero: is a character device, not a media file"):
            wm_media.open_source("/dev/zero")
        with pytest.raises(whispermedia.MediaError, match="is a character device"):
            wm_media.load_audio("/dev/zero")
    if not hasattr(os, "mkfifo"):
        return
    fifo = tmp_path / "talk.mp4"
    os.mkfifo(fifo)

    def writer():
        try:
            with open(fifo, "wb") as f:
                f.write(SAMPLE_MP4.read_bytes())
        except BrokenPipeError:  # the reader gave up once it knew
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    with pytest.raises(whispermedia.MediaError) as info:  # read as a stream, not spooled: no index yet
        wm_media.load_audio(str(fifo))
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # drain what the writer still holds, so it ends
    try:
        while thread.is_alive():
            try:
                if not os.read(fd, 1 << 16):
                    break
            except BlockingIOError:
                time.sleep(0.01)
    finally:
        os.close(fd)
    thread.join(5)
    assert "index (moov atom) is at the end" in str(info.value) and "pass the file's path" in str(info.value)


# -- 4. several audio streams -------------------------------------------------------------------

def _two_streams(path: Path, tracks) -> Path:
    """A Matroska file with one AAC stream per (language, default) in ``tracks``; stream i is a
    tone of 200 * (i + 1) Hz."""
    out = av.open(str(path), "w")
    streams = []
    for lang, default in tracks:
        s = out.add_stream("aac", rate=16000)
        s.layout = "mono"
        s.metadata["language"] = lang
        s.disposition = av.stream.Disposition.default if default else av.stream.Disposition(0)
        streams.append(s)
    for i, s in enumerate(streams):
        tone = (0.1 * np.sin(2 * np.pi * 200 * (i + 1) * np.arange(16000) / 16000)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for p in [*s.encode(frame), *s.encode()]:
            out.mux(p)
    out.close()
    return path


def test_the_default_stream_is_used_and_named(tmp_path, engine):
    film = _two_streams(tmp_path / "film.mkv", [("spa", False), ("eng", True)])
    result = wm("run", "-l", "en", str(film))
    assert result.exit_code == 0, result.stderr
    assert engine.calls[0]["audio_stream"] == 1
    assert err_lines(result) == [f"{film}: audio stream 1 (eng, default) of 2 (flagged default); others: 0 (spa) "
                                 "(--audio-stream N or lang:TAG picks one)"]
    result = wm("run", "-l", "en", "--overwrite", "--progress", "json", str(film))
    ev = [e for e in events(result) if e["event"] == "audio_stream"]
    assert len(ev) == 1 and ev[0]["stream"] == 1 and ev[0]["reason"] == "default"
    assert [(s["index"], s["language"], s["default"]) for s in ev[0]["streams"]] == [(0, "spa", False), (1, "eng", True)]


def test_without_a_default_flag_the_first(tmp_path, engine):
    film = _two_streams(tmp_path / "film.mkv", [("spa", False), ("eng", False)])
    result = wm("run", "-l", "en", str(film))
    assert result.exit_code == 0 and engine.calls[0]["audio_stream"] == 0
    assert "audio stream 0 (spa) of 2 (the first; none is flagged default); others: 1 (eng)" in result.stderr


def test_audio_stream_by_language_tag_and_index(tmp_path, engine):
    film = _two_streams(tmp_path / "film.mkv", [("spa", False), ("eng", True)])
    assert wm("run", "-l", "es", "--audio-stream", "lang:SPA", str(film)).exit_code == 0
    assert wm("run", "-l", "en", "--overwrite", "--audio-stream", "1", str(film)).exit_code == 0
    assert [c["audio_stream"] for c in engine.calls] == [0, 1]
    result = wm("run", "--overwrite", "--audio-stream", "lang:deu", str(film))
    assert result.exit_code == 3
    assert err_lines(result) == [f"wm: {film}: no audio stream with language 'deu' (the file has: 0 (spa), "
                                 "1 (eng, default))"]
    result = wm("run", "--audio-stream", "2", "--overwrite", str(film))
    assert result.exit_code == 3 and "out of range" in result.stderr and len(engine.calls) == 2
    result = wm("run", "--audio-stream", "english", str(film))
    assert result.exit_code == 2 and "lang:<tag>" in result.stderr


def test_library_picks_the_default_stream(tmp_path):
    from whispermedia import media as wm_media

    film = _two_streams(tmp_path / "film.mkv", [("spa", False), ("eng", True)])
    with wm_media.open_source(str(film)) as source:
        assert (source.stream_index, source.stream_choice.reason) == (1, "default")
        second = np.concatenate(list(source.chunks()))
    assert np.array_equal(second, wm_media.load_audio(str(film), stream_index=1))
    with wm_media.open_source(str(film), "lang:spa") as source:
        assert source.stream_index == 0


# -- outputs: folders that are not writable, names that are folders ------------------------------

@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_output_that_is_a_directory(tmp_path, monkeypatch, overwrite):
    no_model_loader(monkeypatch)
    video = media(tmp_path)
    (tmp_path / "talk.srt").mkdir()
    result = wm("run", "-p", "srt", *overwrite, str(video))
    assert result.exit_code == 5
    assert err_lines(result) == [f"wm: {tmp_path / 'talk.srt'}: is a directory"]


def test_an_output_folder_that_cannot_be_made_is_refused_at_once(tmp_path, monkeypatch):
    no_model_loader(monkeypatch)
    video = media(tmp_path)
    blocker = media(tmp_path, "notes.bin", b"a file where a folder would go")
    result = wm("run", "-p", "srt", "-o", str(blocker / "subs"), str(video))
    assert result.exit_code == 5
    assert err_lines(result) == [f"wm: {blocker / 'subs'}: {blocker} is not a folder"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_folder_is_refused_before_the_model(tmp_path, monkeypatch):
    no_model_loader(monkeypatch)
    folder = tmp_path / "ro"
    folder.mkdir()
    video = media(folder)
    folder.chmod(0o555)
    try:
        result = wm("run", "-p", "srt", str(video))
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 5 and "cannot write in" in result.stderr


def test_output_dir_is_made_only_when_something_is_written(tmp_path, engine):
    video = media(tmp_path)
    (tmp_path / "talk.srt").write_text("kept\n", encoding="utf-8")
    out = tmp_path / "new" / "subs"
    bad = media(tmp_path, "bad.mp4", b"no media")
    assert wm("run", "-p", "srt", "-o", str(out), str(bad)).exit_code == 3
    assert not (tmp_path / "new").exists()
    assert wm("run", "-l", "en", "-p", "srt", "-o", str(out), str(video)).exit_code == 0
    assert (out / "talk.srt").exists()


# -- 7. the language when known, the bar's speed, warnings at --help ------------------------------

def test_the_language_is_reported_before_the_progress(tmp_path, engine):
    result = wm("run", "--progress", "json", str(media(tmp_path)))
    kinds = [e["event"] for e in events(result)]
    assert kinds.index("language") < kinds.index("progress")


def test_progress_bar_shows_speed_and_time_left():
    import io
    from contextlib import redirect_stderr

    from whispermedia.cli_render import Reporter
    from whispermedia.types import Progress

    now = [100.0]
    reporter = Reporter("bar", clock=lambda: now[0])
    err = io.StringIO()
    with redirect_stderr(err):
        reporter.progress("talk.mp4", Progress(0.0, 120.0, 0))
        now[0] += 10.0
        reporter.progress("talk.mp4", Progress(30.0, 120.0, 4))
    last = err.getvalue().split("\r")[-1]
    assert "3.0x, 0:30 left" in last  # 30 s of audio in 10 s: 90 s to go at 3x


@pytest.mark.parametrize("command", [["models"], ["models", "--json"], ["plugins"], ["--help"]])
def test_listing_commands_do_not_import_torch(command):
    """Point 7: listing models and plugins reads package metadata only; importing torch (seconds,
    tens of seconds on a loaded machine) is for the commands that run a model or report on it."""
    code = ("import sys\nfrom whispermedia.cli import main\n"
            f"try:\n    main({command!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "False"


def test_help_with_a_broken_plugin_is_one_warning_line(tmp_path):
    """A plugin that fails at import, installed as an entry point: ``wm --help`` still works and
    says so in one ``wm: warning:`` line (no Python warning with its source line)."""
    from whispermedia.plugins import ENTRY_POINT_GROUP

    (tmp_path / "broken_wm_plugin.py").write_text("raise RuntimeError('broken on purpose')\n")
    dist = tmp_path / "broken_wm_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-wm-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = broken_wm_plugin\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "WM_STRICT_PLUGINS": ""}
    proc = subprocess.run([sys.executable, "-m", "whispermedia", "--help"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and "run" in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("wm: warning: ") and "broken on purpose" in lines[0], proc.stderr


# -- end to end with a real model (tiny.en), through the console script ----------------------------

def _tiny_en_wm():
    from whispermedia.models import list_models

    wm_bin = Path(sys.executable).with_name("wm")
    if not wm_bin.exists():
        pytest.skip("the wm console script is not installed in this environment")
    if not any(e.name == "tiny.en" and e.installed for e in list_models()):
        pytest.skip("model tiny.en not installed (bash .ci/test-needs)")
    return wm_bin


@pytest.mark.slow
def test_set_e_script_run_twice_then_one_more_format(tmp_path):
    wm_bin = _tiny_en_wm()
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.mp4").write_bytes(SAMPLE_MP4.read_bytes())
    script = f"""set -e
wm() {{ "{wm_bin}" run -m tiny.en --device cpu --progress json "$@"; }}
one=$(wm -p srt "{folder}"/*.mp4 2> one.jsonl)
two=$(wm -p srt "{folder}"/*.mp4 2> two.jsonl)
three=$(wm -p srt -p tsv "{folder}"/*.mp4 2> three.jsonl)
printf '%s\\n--\\n%s\\n--\\n%s\\n' "$one" "$two" "$three"
"""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    one, two, three = proc.stdout.rstrip("\n").split("\n--\n")
    assert one.splitlines() == [str(folder / "a.srt"), str(folder / "b.srt")]
    assert two == ""
    assert three.splitlines() == [str(folder / "a.tsv"), str(folder / "b.tsv")]

    def done(name):
        lines = (tmp_path / name).read_text().splitlines()
        return [(e["file"], e["outputs"], e["skipped"]) for e in map(json.loads, lines) if e["event"] == "done"]

    a, b = str(folder / "a.mp4"), str(folder / "b.mp4")
    assert done("two.jsonl") == [(a, [], [str(folder / "a.srt")]), (b, [], [str(folder / "b.srt")])]
    assert done("three.jsonl") == [(a, [str(folder / "a.tsv")], [str(folder / "a.srt")]),
                                   (b, [str(folder / "b.tsv")], [str(folder / "b.srt")])]
    assert "ask not what your country" in (folder / "a.srt").read_text(encoding="utf-8").lower()


@pytest.mark.slow
def test_a_piped_mp4_with_its_index_at_the_end(tmp_path):
    wm_bin = _tiny_en_wm()
    proc = subprocess.run(f'cat "{SAMPLE_MP4}" | "{wm_bin}" run -m tiny.en --device cpu -p txt -o out -',
                          shell=True, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["out/stdin.txt"]
    assert "ask not what your country" in (tmp_path / "out" / "stdin.txt").read_text(encoding="utf-8").lower()


@pytest.mark.slow
def test_transcribe_takes_binary_file_objects_as_load_audio_does():
    from fake_streams import Pipe

    _tiny_en_wm()
    data = SAMPLE_MP4.read_bytes()
    with open(SAMPLE_MP4, "rb") as f:
        seekable = whispermedia.transcribe(f, model="tiny.en", device="cpu", preset="greedy")
        assert f.tell() == 0 and not f.closed
    piped = whispermedia.transcribe(Pipe(data, name="stdin"), model="tiny.en", device="cpu", preset="greedy")
    assert "ask not what your country" in seekable.text.lower()
    assert piped.text == seekable.text and piped.info.audio_stream == 0
