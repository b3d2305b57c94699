"""``wm run --ray`` on a real local Ray cluster, with the real tiny.en model.

The cluster is one machine on the loopback address (``_node_ip_address="127.0.0.1"``, no
dashboard), two CPUs, started once for this module and shut down by its fixture, which then
checks that no Ray process is left (``pgrep -f raylet``, a bounded wait). ``wm run --ray``
finds Ray initialised and uses this cluster. The actor-killing test names one input
``die-once.flac`` (and one ``die-always.flac``): the fixture's environment variable (``whispermedia.ray.FAULT_ENV``, given to the
Ray workers through the job's ``runtime_env``) makes the actor that starts on it exit on the
spot, once (every time for the second, which is then given up after two tries).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from test_cli import err_lines, wm

ray = pytest.importorskip("ray", reason="needs Ray (bash .ci/test-needs installs ray[data])")
pytest.importorskip("ray.data", reason="needs Ray Data (ray[data])")

from whispermedia.ray import FAULT_ENV  # noqa: E402

SPEECH = Path(__file__).resolve().parent / "data" / "speech"
pytestmark = pytest.mark.slow


def _tiny_en() -> None:
    from whispermedia.models import list_models

    if not any(e.name == "tiny.en" and e.installed for e in list_models()):
        pytest.skip("model tiny.en not installed (bash .ci/test-needs)")


def _raylets() -> str:
    proc = subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True)
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    _tiny_en()
    if _raylets():
        pytest.skip("a Ray cluster is already running on this machine")
    marker = tmp_path_factory.mktemp("fault") / "died"
    fault = f"die-once.flac={marker};die-always.flac="  # once; and every time it is tried
    try:
        ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, logging_level="WARNING",
                 runtime_env={"env_vars": {FAULT_ENV: fault}})  # the job's workers (actors) get it
        yield marker
    finally:
        ray.shutdown()
        deadline = time.monotonic() + 30
        for _ in range(300):  # bounded: the raylet exits shortly after shutdown
            if not _raylets() or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not _raylets(), "ray processes left running after ray.shutdown()"


def fixtures(folder: Path, names=("a.flac", "b.flac", "c.wav", "d.flac")) -> Path:
    """Four short real-speech inputs (three FLAC copies and one WAV made here with PyAV)."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    sources = ["arctic_a0007.flac", "arctic_a0009.flac", "arctic_a0007.flac", "arctic_a0009.flac"]
    for name, source in zip(names, sources):
        if name.endswith(".wav"):
            with av.open(str(SPEECH / source)) as src, av.open(str(folder / name), "w") as dst:
                out = dst.add_stream("pcm_s16le", rate=16000, layout="mono")
                resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
                for frame in src.decode(audio=0):
                    for f in resampler.resample(frame):
                        dst.mux(out.encode(f))
                for f in resampler.resample(None):
                    dst.mux(out.encode(f))
                dst.mux(out.encode(None))
        else:
            shutil.copyfile(SPEECH / source, folder / name)
    return folder


def records(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tree_bytes(root: Path):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


RUN = ["run", "-m", "tiny.en", "--device", "cpu", "-p", "srt", "-p", "vtt", "-p", "txt", "-p", "json"]


def test_ray_outputs_are_byte_identical_to_wm_run(cluster, tmp_path, monkeypatch):
    fixtures(tmp_path / "in")
    monkeypatch.chdir(tmp_path)  # relative paths, as typed: JSON's info.source is the path as given
    local = wm(*RUN, "-o", "local", "in")
    assert local.exit_code == 0, local.stderr
    started = time.monotonic()
    on_ray = wm(*RUN, "-o", "ray", "--manifest", "m.jsonl", "in", "--ray")
    took = time.monotonic() - started
    assert on_ray.exit_code == 0, on_ray.stderr
    assert took < 120
    expected = tree_bytes(tmp_path / "local")
    assert len(expected) == 16  # 4 inputs x 4 formats
    assert b'"source": "in/a.flac"' in expected["a.json"]
    assert tree_bytes(tmp_path / "ray") == expected
    assert sorted(on_ray.stdout.splitlines()) == sorted(str(Path("ray") / p) for p in expected)
    assert "deprecat" not in on_ray.stderr.lower(), on_ray.stderr  # wm turns Python warnings into lines
    recs = records(tmp_path / "m.jsonl")
    assert sorted(Path(r["path"]).name for r in recs) == ["a.flac", "b.flac", "c.wav", "d.flac"]
    for r in recs:
        assert r["status"] == "done" and r["worker"].startswith("ray:") and len(r["input_sha256"]) == 64
        assert r["audio_seconds"] > 2 and len(r["outputs"]) == 4 and r["error"] is None
    # the Ray job's manifest resumes like wm run's: all done, nothing sent to the cluster
    again = wm(*RUN, "-o", "ray", "--resume", "m.jsonl", "in", "--ray")
    assert again.exit_code == 0 and again.stdout == ""
    assert "wm: 4 inputs done earlier (m.jsonl), skipped" in again.stderr
    assert len(records(tmp_path / "m.jsonl")) == 4


def test_ray_killed_actor_is_replaced_and_bad_input_is_a_record(cluster, tmp_path):
    inputs = fixtures(tmp_path / "in", names=("a.flac", "die-once.flac", "c.wav", "d.flac"))
    (inputs / "e-broken.mp4").write_bytes(b"this is not media at all\n" * 40)
    shutil.copyfile(inputs / "a.flac", inputs / "die-always.flac")
    m = tmp_path / "m.jsonl"
    result = wm(*RUN[:5], "-p", "srt", "-o", str(tmp_path / "out"), "--manifest", str(m), str(inputs), "--ray")
    assert cluster.exists(), result.stderr + result.stdout
    assert result.exit_code in (1, 3), result.stderr  # the first failure's code; the job itself finished
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.srt", "c.srt", "d.srt", "die-once.srt"]
    recs = records(m)
    assert sorted(Path(r["path"]).name for r in recs) == ["a.flac", "c.wav", "d.flac", "die-always.flac",
                                                         "die-once.flac", "e-broken.mp4"]  # one record each
    by_name = {Path(r["path"]).name: r for r in recs}
    assert by_name["die-once.flac"]["status"] == "done" and by_name["die-once.flac"]["outputs"]
    broken = by_name["e-broken.mp4"]
    assert broken["status"] == "failed" and broken["error"]["code"] == 3
    assert any(line.startswith(f"wm: {inputs / 'e-broken.mp4'}: ") for line in err_lines(result))
    poison = by_name["die-always.flac"]  # killed two actors: given up, the job went on
    assert poison["status"] == "failed" and poison["error"]["code"] == 1
    assert "died on this input 2 times" in poison["error"]["message"] and not poison["outputs"]


def test_ray_ctrl_c_stops_the_job_and_its_cluster(cluster, tmp_path):
    """SIGINT to ``wm run --ray=local`` (its own cluster, also on loopback): one line, exit 130,
    the records written so far kept, and the cluster it started gone."""
    import signal
    import sys

    inputs = fixtures(tmp_path / "in", names=("a.flac", "b.flac", "c.flac", "d.flac"))
    for i in range(4):
        shutil.copyfile(SPEECH / "jfk.flac", inputs / f"long{i}.flac")
    before = len(_raylets().splitlines())
    m = tmp_path / "m.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "whispermedia", *RUN[:5], "-p", "srt", "-o", str(tmp_path / "out"),
                             "--manifest", str(m), str(inputs), "--ray=local"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not (m.exists() and m.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no manifest record in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 130, stderr
    assert [line for line in stderr.splitlines() if line.strip()][-1] == "wm: interrupted"
    done = records(m)
    assert 1 <= len(done) < 8 and all(r["status"] == "done" for r in done)
    for _ in range(300):  # bounded: its raylet exits shortly after ray.shutdown()
        if len(_raylets().splitlines()) <= before:
            break
        time.sleep(0.1)
    assert len(_raylets().splitlines()) <= before
