"""``wm run`` over folders, with a manifest, resumed: through the real command (click's runner)
with the fake engine of test_cli (milliseconds each). A real ``wm run`` killed part-way
(SIGKILL, SIGINT) and rerun is in tests/test_run_resume.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from whispermedia.folders import MEDIA_EXTENSIONS, expand, wanted
from whispermedia.manifest import Manifest, Record, Resume, read_records
from whispermedia.run_options import RunOptions, run_flags

from test_cli import engine, err_lines, media, wav_bytes, wm  # noqa: F401 (fixture)


def tree(root: Path, *names: str) -> Path:
    """``root`` holding a short real WAV under each name (``sub/x.mp4`` makes ``sub``)."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(wav_bytes())
    return root


def records(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def outputs(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- which files a folder gives ------------------------------------------------------------------

def test_folder_gives_media_files_sorted_hidden_left_out(tmp_path):
    d = tree(tmp_path / "in", "b.mp4", "a.wav", ".hidden.mp4", "notes.txt", "sub/c.mkv", ".git/d.mp4")
    found, problems = expand([str(d)], recursive=False)
    assert [f.relative for f in found] == ["a.wav", "b.mp4"] and problems == []
    found, _ = expand([str(d)], recursive=True)
    assert [f.relative for f in found] == ["a.wav", "b.mp4", "sub/c.mkv"]
    assert all(f.root == str(d) for f in found)


def test_globs_match_names_or_paths_and_exclude_wins():
    assert wanted("sub/x.MOV", (), ()) and "mov" in MEDIA_EXTENSIONS
    assert not wanted("notes.txt", (), ())
    assert wanted("notes.txt", ("*.txt",), ())
    assert wanted("sub/a.mp4", ("sub/*",), ()) and not wanted("other/a.mp4", ("sub/*",), ())
    assert not wanted("sub/a.mp4", ("*.mp4",), ("a.*",))


def test_empty_folder_is_one_line_exit_3(tmp_path, engine):
    (tmp_path / "empty").mkdir()
    result = wm("run", "-p", "srt", str(tmp_path / "empty"))
    assert result.exit_code == 3
    assert err_lines(result) == [f"wm: {tmp_path / 'empty'}: is a folder with no files with an audio or video "
                                 "extension (--recursive looks in subfolders)"]
    assert engine.loads == []


# -- where outputs go ------------------------------------------------------------------------------

def test_output_dir_mirrors_the_tree(tmp_path, engine):
    d = tree(tmp_path / "in", "top.mp4", "x/talk.mp4", "y/talk.mp4", "x/deep/z.wav")
    result = wm("run", "-p", "srt", "--recursive", "-o", str(tmp_path / "out"), str(d))
    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path / "out") == ["top.srt", "x/deep/z.srt", "x/talk.srt", "y/talk.srt"]
    assert len(engine.loads) == 1 and len(engine.calls) == 4


def test_same_stem_in_one_folder_keeps_the_extension(tmp_path, engine):
    d = tree(tmp_path / "in", "a.mp4", "a.wav", "b.mp4")
    result = wm("run", "-p", "srt", "-p", "txt", str(d))  # beside the inputs
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in d.iterdir() if p.suffix in (".srt", ".txt")) == \
        ["a.mp4.srt", "a.mp4.txt", "a.wav.srt", "a.wav.txt", "b.srt", "b.txt"]
    # with -o, the same rule in the mirrored folder
    result = wm("run", "-p", "srt", "-o", str(tmp_path / "out"), str(d))
    assert outputs(tmp_path / "out") == ["a.mp4.srt", "a.wav.srt", "b.srt"]


def test_two_folders_with_the_same_file_never_share_an_output(tmp_path, engine):
    a, b = tree(tmp_path / "a", "talk.mp4"), tree(tmp_path / "b", "talk.mp4")
    result = wm("run", "-p", "srt", "-o", str(tmp_path / "out"), str(a), str(b))
    # both would be out/talk.mp4.srt: the second is refused, as two named files are
    assert result.exit_code == 5
    assert outputs(tmp_path / "out") == ["talk.mp4.srt"]
    assert "also the output of" in result.stderr
    # without -o each writes beside itself
    result = wm("run", "-p", "srt", str(a), str(b))
    assert result.exit_code == 0 and (a / "talk.srt").exists() and (b / "talk.srt").exists()


# -- the manifest ----------------------------------------------------------------------------------

def test_manifest_has_one_record_per_input(tmp_path, engine):
    d = tree(tmp_path / "in", "good.mp4", "kept.mp4")
    media(d, "bad.wav", b"BAD" + wav_bytes()[3:])  # probes, then fails in transcribe
    (d / "kept.srt").write_text("hand-made\n")
    m = tmp_path / "m.jsonl"
    result = wm("run", "-p", "srt", "--manifest", str(m), str(d))
    assert result.exit_code == 3
    recs = {Path(r["path"]).name: r for r in records(m)}
    assert set(recs) == {"good.mp4", "kept.mp4", "bad.wav"}
    good, kept, bad = recs["good.mp4"], recs["kept.mp4"], recs["bad.wav"]
    assert good["status"] == "done" and good["outputs"] == [str(d / "good.srt")] and good["error"] is None
    assert len(good["input_sha256"]) == 64 and len(good["options_sha256"]) == 64
    assert good["audio_seconds"] > 0 and good["seconds"] >= 0 and good["warnings"] == []
    assert kept["status"] == "skipped" and kept["kept"] == [str(d / "kept.srt")]
    assert bad["status"] == "failed" and bad["error"]["code"] == 3 and "bad.wav: " in bad["error"]["message"]
    assert all(Path(r["path"]).is_absolute() for r in recs.values())


def test_manifest_records_planning_failures_too(tmp_path, engine):
    m = tmp_path / "m.jsonl"
    result = wm("run", "-p", "srt", "--manifest", str(m), str(tmp_path / "missing.mp4"))
    assert result.exit_code == 3
    (rec,) = records(m)
    assert rec["status"] == "failed" and rec["input_sha256"] is None and "no such file" in rec["error"]["message"]


def test_manifest_that_cannot_be_opened_is_one_line_before_any_work(tmp_path, engine):
    video = media(tmp_path)
    result = wm("run", "-p", "srt", "--manifest", str(tmp_path / "no" / "such" / "m.jsonl"), str(video))
    assert result.exit_code == 5
    assert len(err_lines(result)) == 1 and "cannot use the manifest" in result.stderr
    assert engine.loads == []


def test_manifest_line_cut_short_is_ignored_and_the_next_starts_on_its_own_line(tmp_path):
    m = tmp_path / "m.jsonl"
    done = Record(path=str(tmp_path / "a.mp4"), status="done", options_sha256="x")
    m.write_text(done.to_json() + "\n" + '{"path": "/x", "sta')
    manifest = Manifest(str(m))
    manifest.write(Record(path=str(tmp_path / "b.mp4"), status="failed", options_sha256="x"))
    manifest.close()
    assert [r.path for r in read_records(str(m))] == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]


# -- resume ----------------------------------------------------------------------------------------

def test_resume_does_only_what_is_missing_or_changed(tmp_path, engine):
    d = tree(tmp_path / "in", "a.mp4", "b.mp4", "c.mp4")
    out, m = tmp_path / "out", tmp_path / "m.jsonl"
    args = ["run", "-p", "srt", "-o", str(out), "--resume", str(m), str(d)]
    assert wm(*args).exit_code == 0  # a missing resume file: a first run
    assert len(engine.calls) == 3 and len(records(m)) == 3
    first = {p: (out / p).stat().st_mtime_ns for p in outputs(out)}

    again = wm(*args)
    assert again.exit_code == 0 and len(engine.calls) == 3  # nothing redone, no model loaded
    assert len(engine.loads) == 1
    assert err_lines(again) == [f"wm: 3 inputs done earlier ({m}), skipped"]
    assert again.stdout == "" and len(records(m)) == 3  # no record appended for them

    (d / "b.mp4").write_bytes(wav_bytes(0.7))  # content changed
    (out / "c.srt").unlink()  # an output gone
    changed = wm(*args)
    assert changed.exit_code == 0
    assert sorted(Path(c["audio"]).name for c in engine.calls[3:]) == ["b.mp4", "c.mp4"]
    assert (out / "a.srt").stat().st_mtime_ns == first["a.srt"]  # never redone
    assert changed.stdout.splitlines() == [str(out / "b.srt"), str(out / "c.srt")]

    options = wm(*args, "--beam-size", "2")  # other options: everything redone, outputs replaced
    assert options.exit_code == 0 and len(engine.calls) == 8
    assert len({r["options_sha256"] for r in records(m)}) == 2


def test_resume_redoes_failures_and_unrecorded_inputs_replacing_their_outputs(tmp_path, engine):
    d = tree(tmp_path / "in", "a.mp4", "b.mp4")
    m = tmp_path / "m.jsonl"
    (d / "b.srt").write_text("written by a run killed before its record\n")
    Manifest(str(m)).write(Record(path=str(d / "a.mp4"), status="failed", options_sha256="x"))
    result = wm("run", "-p", "srt", "--resume", str(m), str(d))
    assert result.exit_code == 0, result.stderr
    assert sorted(Path(c["audio"]).name for c in engine.calls) == ["a.mp4", "b.mp4"]
    assert (d / "b.srt").read_text() != "written by a run killed before its record\n"


def test_resume_into_another_manifest_copies_the_finished_records(tmp_path, engine):
    d = tree(tmp_path / "in", "a.mp4", "b.mp4")
    m1, m2 = tmp_path / "m1.jsonl", tmp_path / "m2.jsonl"
    wm("run", "-p", "srt", "--manifest", str(m1), str(d / "a.mp4"))
    result = wm("run", "-p", "srt", "--resume", str(m1), "--manifest", str(m2), str(d))
    assert result.exit_code == 0
    assert sorted(Path(r["path"]).name for r in records(m2)) == ["a.mp4", "b.mp4"]
    assert len(records(m1)) == 1 and len(engine.calls) == 2


def test_resume_trusts_size_and_mtime_else_hashes(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x" * 10)
    from whispermedia.manifest import fingerprint

    fp = fingerprint(str(f))
    out = tmp_path / "a.srt"
    out.write_text("1\n")
    rec = Record(path=str(f), status="done", options_sha256="o", input_sha256=fp.sha256, outputs=(str(out),),
                 size=fp.size, mtime_ns=fp.mtime_ns)
    m = tmp_path / "m.jsonl"
    m.write_text(rec.to_json() + "\n")
    assert Resume(str(m)).finished(str(f), "o") is not None
    assert Resume(str(m)).finished(str(f), "other") is None
    os.utime(f, ns=(fp.mtime_ns + 10**9, fp.mtime_ns + 10**9))  # touched, same bytes: still finished
    assert Resume(str(m)).finished(str(f), "o") is not None
    f.write_bytes(b"y" * 10)  # same size, new bytes
    assert Resume(str(m)).finished(str(f), "o") is None


# -- the run options -------------------------------------------------------------------------------

def test_run_options_are_one_definition_with_a_flag_each():
    from whispermedia.cli import run_command

    flags = {o for p in run_command.params for o in getattr(p, "opts", [])}
    for f, flag in run_flags():
        assert "--" + f.name.replace("_", "-") in flags and flag.help
    with pytest.raises(ValueError, match="not a Ray address"):
        RunOptions(ray="videos/")
    assert RunOptions(resume="r.jsonl").manifest_path == "r.jsonl"


def test_ray_followed_by_a_folder_is_a_usage_error(tmp_path, engine):
    d = tree(tmp_path / "in", "a.mp4")
    result = wm("run", "--ray", str(d))
    assert result.exit_code == 2
    (line,) = err_lines(result)
    assert line.startswith(f"wm: --ray: '{d}' is not a Ray address") and line.endswith("--ray=ADDRESS")


def test_ray_without_the_extra_is_one_line_naming_it(tmp_path, engine, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: import ray raises ImportError
    video = media(tmp_path)
    result = wm("run", "-p", "srt", str(video), "--ray")
    assert result.exit_code == 2
    (line,) = err_lines(result)
    assert line.startswith("wm: --ray needs Ray Data, from the ray extra: pip install 'whispermedia[ray]'")
    assert engine.loads == [] and not (tmp_path / "talk.srt").exists()


def test_ray_actor_sizes_follow_the_cluster():
    from types import SimpleNamespace

    from whispermedia.ray import sizes

    def cluster(cpus, gpus=0):
        return SimpleNamespace(cluster_resources=lambda: {"CPU": cpus, **({"GPU": gpus} if gpus else {})})

    assert sizes(cluster(2), RunOptions(), 10) == (1, 0.0, 1.0)  # a CPU left for the probes
    assert sizes(cluster(16), RunOptions(ray_cpus=4), 10) == (3, 0.0, 4.0)
    assert sizes(cluster(16, 2), RunOptions(), 10) == (2, 1.0, 1.0)  # one per GPU
    assert sizes(cluster(16, 2), RunOptions(ray_gpus=0.5), 10) == (4, 0.5, 1.0)  # two models per GPU
    assert sizes(cluster(16, 2), RunOptions(), 100, device="cpu") == (15, 0.0, 1.0)  # --device cpu
    assert sizes(cluster(16, 2), RunOptions(ray_actors=8), 3) == (3, 1.0, 1.0)  # never more than inputs
