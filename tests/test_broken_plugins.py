"""Plugins that raise what ``except Exception`` does not catch (``SystemExit`` at import or in a
hook), and a third-party ``detect_language`` that fails: recorded, warned about once, and
``wm`` carries on (the built-in language detection answers instead).

The CLI cases install a real plugin distribution (a module and its ``.dist-info`` with an
entry point) in a folder on ``PYTHONPATH`` and run the real ``wm`` entry point in a fresh
process, so the entry-point machinery is the one users have.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

from whispermedia import plugins as plugins_module
from whispermedia.errors import PluginFailed
from whispermedia.hookspecs import hookimpl
from whispermedia.plugins import PluginHost, PluginWarning, reset_host
from whispermedia.testing import plugin_host
from whispermedia.types import LanguageGuess

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "data" / "speech" / "jfk.flac"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("WM_DISABLE_PLUGINS", "WM_LOAD_PLUGINS", "WM_STRICT_PLUGINS", "WM_TRACE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    reset_host()
    yield
    reset_host()


def _module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def _raise(exc: BaseException):
    def hook(*args, **kwargs):
        raise exc
    return hook


# --- the host ---------------------------------------------------------------------------------


class _EntryPoint:
    def __init__(self, name, error):
        self.name, self.group, self.error, self.dist = name, "whispermedia", error, None

    def load(self):
        raise self.error


@pytest.mark.parametrize("exc", [SystemExit(3), SystemExit("bye"), GeneratorExit(), BaseException("odd")])
def test_base_exception_at_import_is_recorded(monkeypatch, exc):
    monkeypatch.setattr(plugins_module, "entry_points", lambda group: [_EntryPoint("quits", exc)])
    host = PluginHost(strict=False)
    with pytest.warns(PluginWarning, match=r"plugin 'quits' failed \(load\) and is disabled"):
        host.load()
    (failure,) = host.failures
    assert (failure.name, failure.stage) == ("quits", "load")
    assert failure.error_text.startswith(type(exc).__name__)
    assert "txt" in host.output_formats()  # the built-ins are all there


def test_keyboard_interrupt_at_import_is_the_users_and_passes(monkeypatch):
    monkeypatch.setattr(plugins_module, "entry_points", lambda group: [_EntryPoint("ctrl_c", KeyboardInterrupt())])
    with pytest.raises(KeyboardInterrupt):
        PluginHost(strict=False).load()


@pytest.mark.parametrize("hook", ["register_output_formats", "register_tasks"])
def test_system_exit_in_a_registration_hook_is_recorded(hook):
    host = PluginHost(strict=False)
    host.load(entry_points=False)
    with pytest.warns(PluginWarning, match=rf"plugin 'quitter' failed \({hook}\)"):
        host.register(_module("quitter", **{hook: _raise(SystemExit(0))}))
    assert [(f.name, f.stage, f.error_text) for f in host.failures] == [("quitter", hook, "SystemExit: 0")]


def test_system_exit_in_register_commands_is_recorded():
    import click

    host = PluginHost(strict=False)
    host.load(entry_points=False)
    host.register(_module("cmds", register_commands=_raise(SystemExit(1))))
    group = click.Group("wm")
    with pytest.warns(PluginWarning, match=r"plugin 'cmds' failed \(register_commands\)"):
        host.register_commands(group)
    assert group.commands == {}


@pytest.mark.parametrize("exc", [ValueError("mel has the wrong shape"), SystemExit(2)])
def test_failing_detect_language_falls_back_to_the_next_and_warns_once(exc):
    calls = []

    def detect(mel):
        calls.append(1)
        raise exc

    answering = _module("answering", detect_language=lambda mel: LanguageGuess("nl", 0.7))
    with plugin_host(answering, _module("broken", detect_language=detect), strict=False) as host:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = host.detect_language(None, None, None)
            second = host.detect_language(None, None, None)
    assert first.language == second.language == "nl"
    assert len(calls) == 1  # not asked again
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert len(messages) == 1 and "plugin 'broken' failed (detect_language) and is disabled" in messages[0]
    assert [(f.name, f.stage) for f in host.failures] == [("broken", "detect_language")]


def test_detect_language_answering_the_wrong_type_falls_back():
    answering = _module("answering", detect_language=lambda mel: LanguageGuess("nl", 0.7))
    with plugin_host(answering, _module("sloppy", detect_language=lambda mel: "en"), strict=False) as host:
        with pytest.warns(PluginWarning, match="returned str, expected a LanguageGuess"):
            assert host.detect_language(None, None, None).language == "nl"


def test_detect_language_failure_is_an_error_when_strict():
    with plugin_host(_module("broken", detect_language=_raise(SystemExit(2))), strict=True) as host:
        with pytest.raises(PluginFailed, match=r"plugin 'broken' failed in detect_language: SystemExit: 2"):
            host.detect_language(None, None, None)


def test_a_failing_builtin_detector_is_an_error(monkeypatch):
    import whispermedia_plugins.langid as langid

    monkeypatch.setattr(langid, "detect_language", hookimpl(trylast=True)(_raise(RuntimeError("bug"))))
    with plugin_host(strict=False) as host:
        with pytest.raises(PluginFailed, match="whispermedia_plugins.langid' failed in detect_language"):
            host.detect_language(None, None, None)


# --- through the real wm entry point ----------------------------------------------------------

def _install(site: Path, name: str, body: str) -> Path:
    """A plugin distribution ``wm-<name>`` with entry point ``<name>`` in folder ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(body))
    info = site / f"wm_{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: wm-{name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[whispermedia]\n{name} = {name}\n")
    return site


def _wm(site: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "whispermedia", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _warnings(stderr: str):
    return [line for line in stderr.splitlines() if line.startswith("wm: warning: ")]


def _tone(path: Path, seconds: float = 2.0) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return path


EXIT_AT_IMPORT = """
    import sys
    sys.exit("this plugin quits at import")
"""

EXIT_IN_HOOK = """
    import sys
    from whispermedia.hookspecs import hookimpl

    @hookimpl
    def register_output_formats(register):
        sys.exit(0)
"""


@pytest.mark.parametrize("body,stage,error", [(EXIT_AT_IMPORT, "load", "SystemExit: this plugin quits at import"),
                                              (EXIT_IN_HOOK, "register_output_formats", "SystemExit: 0")])
def test_wm_plugins_and_doctor_survive_system_exit(tmp_path, body, stage, error):
    site = _install(tmp_path / "site", "quitter", body)
    listed = _wm(site, "plugins")
    assert listed.returncode == 0, listed.stderr
    where = "" if stage == "load" else f" in {stage}"
    assert f"FAILED quitter (wm-quitter){where}: {error}" in listed.stdout.splitlines()
    (warning,) = _warnings(listed.stderr)
    assert warning == (f"wm: warning: plugin 'quitter' (wm-quitter) failed ({stage}) and is disabled: "
                       f"{error}; see `wm plugins`")
    doctor = _wm(site, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    report = json.loads(doctor.stdout)
    assert [(f["name"], f["stage"]) for f in report["plugins"]["failures"]] == [("quitter", stage)]


@pytest.mark.slow
def test_wm_run_survives_a_plugin_exiting_at_import(tmp_path):
    site = _install(tmp_path / "site", "quitter", EXIT_AT_IMPORT)
    audio = _tone(tmp_path / "tone.wav")
    out = tmp_path / "out"
    proc = _wm(site, "run", "--model", "tiny.en", "--preset", "greedy", "--progress", "none", "-o", str(out), str(audio))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(out / "tone.txt")]
    assert len(_warnings(proc.stderr)) == 1
    assert sorted(p.name for p in out.iterdir()) == ["tone.txt"]


@pytest.mark.slow
def test_wm_run_falls_back_when_a_plugins_detect_language_raises(tmp_path):
    """The input still gets its transcript, in the language the built-in detects, with one warning."""
    site = _install(tmp_path / "site", "badlang", """
        from whispermedia.hookspecs import hookimpl

        @hookimpl
        def detect_language(mel):
            raise SystemExit("no languages today")
    """)
    out = tmp_path / "out"
    proc = _wm(site, "run", "--model", "base", "--progress", "none", "--plugin", "json", "-o", str(out), str(SPEECH))
    assert proc.returncode == 0, proc.stderr
    assert _warnings(proc.stderr) == ["wm: warning: plugin 'badlang' (wm-badlang) failed (detect_language) and is "
                                      "disabled: SystemExit: no languages today; see `wm plugins`"]
    assert f"{SPEECH}: detected language: en" in proc.stderr
    result = json.loads((out / "jfk.json").read_text())
    assert result["language"] == "en" and "ask not what your country can do for you" in result["text"].lower()


def test_a_writer_exiting_is_its_plugin_failure_and_leaves_nothing(tmp_path):
    from whispermedia.output import write
    from whispermedia.registry import OutputFormat
    from whispermedia.testing import sample_transcript

    def register_output_formats(register):
        register.add(OutputFormat("quits", "q", _raise(SystemExit(1))))

    with plugin_host(_module("quitter", register_output_formats=register_output_formats)):
        with pytest.raises(PluginFailed, match=r"output format 'quits' \(plugin 'quitter'\) failed: SystemExit: 1"):
            write(sample_transcript(), "quits", tmp_path / "out.q")
    assert list(tmp_path.iterdir()) == []
