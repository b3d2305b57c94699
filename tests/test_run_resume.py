"""A real ``wm run --resume`` over a folder, killed part-way (SIGKILL, then SIGINT) and rerun.

Four copies of tests/data/speech/jfk.flac (11 s of speech each) are transcribed with tiny.en,
one after the other, by ``python -m whispermedia`` in a subprocess. As soon as the manifest
holds its first record the process is killed; the same command is then run again. Since the
four inputs are the same speech, every output must end up byte-identical, which shows that
nothing partial survived under an output's name; the inputs finished before the kill must not
be redone (their outputs keep their modification time, their records are not repeated).
Every wait is bounded in time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SPEECH = Path(__file__).resolve().parent / "data" / "speech"
pytestmark = pytest.mark.slow
N = 4


def _tiny_en() -> None:
    from whispermedia.models import list_models

    if not any(e.name == "tiny.en" and e.installed for e in list_models()):
        pytest.skip("model tiny.en not installed (bash .ci/test-needs)")


def records(path: Path):
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line cut short by the kill
    return out


def command(tmp_path: Path):
    return [sys.executable, "-m", "whispermedia", "run", "-m", "tiny.en", "--device", "cpu", "--progress", "none",
            "-p", "srt", "-o", str(tmp_path / "out"), "--resume", str(tmp_path / "m.jsonl"), str(tmp_path / "in")]


def start(tmp_path: Path) -> subprocess.Popen:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for i in range(N):
        shutil.copyfile(SPEECH / "jfk.flac", folder / f"talk{i}.flac")
    # SIGINT as a terminal sends it, whatever the test runner's own handling of it
    return subprocess.Popen(command(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_first_record(proc: subprocess.Popen, manifest: Path, limit: float = 240) -> None:
    deadline = time.monotonic() + limit
    while not records(manifest):
        assert proc.poll() is None, f"wm run ended before its first record: {proc.communicate()}"
        assert time.monotonic() < deadline, "no manifest record in time"
        time.sleep(0.05)


def rerun_and_check(tmp_path: Path, before: list) -> None:
    out = tmp_path / "out"
    finished = {r["path"]: r for r in before if r["status"] == "done"}
    assert 1 <= len(finished) < N, "the kill came too late to test anything"
    stamps = {p: os.stat(p).st_mtime_ns for r in finished.values() for p in r["outputs"]}
    proc = subprocess.run(command(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(finished)} input" in proc.stderr and "done earlier" in proc.stderr
    after = records(tmp_path / "m.jsonl")
    done = [r for r in after if r["status"] == "done"]
    assert sorted(Path(r["path"]).name for r in done) == [f"talk{i}.flac" for i in range(N)]  # once each
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps  # a finished input is never redone
    written = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    assert [p.name for p in written] == [f"talk{i}.srt" for i in range(N)]
    texts = {p.read_bytes() for p in written}
    assert len(texts) == 1 and b"ask not what your country can do for you" in texts.pop()
    assert proc.stdout.splitlines() == [str(out / f"talk{i}.srt") for i in range(N)
                                        if str(tmp_path / "in" / f"talk{i}.flac") not in finished]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_run_resumes_with_only_what_is_missing(tmp_path, sig):
    _tiny_en()
    proc = start(tmp_path)
    try:
        wait_for_first_record(proc, tmp_path / "m.jsonl")
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    if sig == signal.SIGINT:  # Ctrl-C: one line, the conventional exit code
        assert proc.returncode == 130, stderr
        assert [line for line in stderr.splitlines() if line.strip()][-1] == "wm: interrupted"
    else:
        assert proc.returncode == -signal.SIGKILL
    rerun_and_check(tmp_path, records(tmp_path / "m.jsonl"))
