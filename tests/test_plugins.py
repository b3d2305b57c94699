"""The plugin host: registration, overrides, broken plugins, env vars, strict mode, lookups.

Entry points are faked by monkeypatching ``whispermedia.plugins.entry_points``, so these
tests never depend on what happens to be installed (except the last one, which checks the
example plugin when CI has installed it).
"""

from __future__ import annotations

import importlib.metadata
import logging
import types
import warnings

import click
import pytest

import whispermedia.plugins as plugins_module
from whispermedia.cli_render import EXIT_USAGE, exit_code_for
from whispermedia.errors import PluginError, PluginNotFound
from whispermedia.hookspecs import hookimpl
from whispermedia.plugins import PluginHost, PluginWarning, get_host, reset_host, use_host
from whispermedia.registry import FormatRegister, OutputFormat, Task, TaskRegister
from whispermedia.testing import plugin_host, sample_transcript
from whispermedia.types import LanguageGuess

BUILTIN_FORMATS = {"ass", "json", "srt", "tsv", "ttml", "txt", "vtt", "otio", "edl", "fcpxml"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("WM_DISABLE_PLUGINS", "WM_LOAD_PLUGINS", "WM_STRICT_PLUGINS", "WM_TRACE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(plugins_module, "entry_points", lambda group: [])
    reset_host()
    yield
    reset_host()


class FakeDist:
    def __init__(self, name: str, version: str = "1.0"):
        self.metadata = {"Name": name}
        self.version = version


class FakeEntryPoint:
    """Quacks like importlib.metadata.EntryPoint; counts how often it is loaded."""

    def __init__(self, name: str, plugin: object = None, dist: str = "", error: Exception = None):
        self.name, self.group, self.plugin, self.error = name, "whispermedia", plugin, error
        self.dist = FakeDist(dist or f"wm-{name}")
        self.loads = 0

    def load(self):
        self.loads += 1
        if self.error is not None:
            raise self.error  # as importing a plugin with a missing dependency would
        return self.plugin


def install(monkeypatch, *eps: FakeEntryPoint) -> None:
    def fake_entry_points(group):
        assert group == "whispermedia"
        return list(eps)

    monkeypatch.setattr(plugins_module, "entry_points", fake_entry_points)


def module_plugin(name: str, **hooks) -> types.ModuleType:
    """A plugin module whose functions are hookimpls (marked here, as a plugin file would)."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def format_plugin(name: str, *format_names: str, extension: str = "txt") -> types.ModuleType:
    def register_output_formats(register: FormatRegister) -> None:
        for fmt in format_names:
            register.add(OutputFormat(fmt, extension, lambda t, fp, o: fp.write(f"{name}\n"), help=name))

    return module_plugin(name, register_output_formats=register_output_formats)


def loaded(entry_points=True, **kwargs) -> PluginHost:
    host = PluginHost(**kwargs)
    host.load(entry_points=entry_points)
    return host


# --- registration and overrides -------------------------------------------------------------


def test_builtins_register_through_the_hooks():
    host = loaded()
    assert set(host.output_formats()) == BUILTIN_FORMATS
    assert set(host.tasks()) == {"transcribe", "translate"}
    assert host.tasks()["translate"].task_token == "translate"
    infos = {p.name: p for p in host.plugins()}
    assert set(infos) == set(plugins_module.DEFAULT_PLUGINS)
    assert all(p.builtin and p.dist_name == "whispermedia" for p in infos.values())
    assert infos["whispermedia_plugins.langid"].hooks == ("detect_language",)
    assert host.output_formats()["srt"].plugin == "whispermedia_plugins.formats_subtitles"
    assert host.failures == []


def test_in_memory_plugin_is_attributed():
    class WordsPlugin:
        @hookimpl
        def register_output_formats(self, register):
            register.add(OutputFormat("words", ".words.txt", lambda t, fp, o: None, needs_words=True))

        @hookimpl
        def register_tasks(self, register):
            register.add(Task("transcribe-en", "transcribe English", "transcribe"))

    with plugin_host(WordsPlugin()) as host:
        fmt = host.output_formats()["words"]
        assert (fmt.extension, fmt.needs_words, fmt.plugin) == ("words.txt", True, "WordsPlugin")
        assert host.tasks()["transcribe-en"].plugin == "WordsPlugin"
        assert host.output_formats().keys() == BUILTIN_FORMATS | {"words"}


def test_hookimpl_may_take_fewer_arguments():
    seen = []
    plugin = module_plugin("noargs", register_output_formats=lambda: seen.append(True))
    with plugin_host(plugin):
        pass
    assert seen == [True]


def test_third_party_format_overrides_builtin_of_the_same_name(monkeypatch, caplog):
    install(monkeypatch, FakeEntryPoint("better-srt", format_plugin("better_srt", "srt", extension="srt")))
    with caplog.at_level(logging.INFO, logger="whispermedia.plugins"), warnings.catch_warnings():
        warnings.simplefilter("error")  # an override of a built-in is expected: no warning
        host = loaded()
    assert host.output_formats()["srt"].plugin == "better-srt"
    assert "overrides the built-in" in caplog.text and "better-srt" in caplog.text


def test_two_third_parties_claiming_one_name_warns_naming_both(monkeypatch):
    install(monkeypatch, FakeEntryPoint("alpha", format_plugin("alpha", "subs")),
            FakeEntryPoint("beta", format_plugin("beta", "subs")))
    with pytest.warns(PluginWarning, match=r"'subs' is registered by plugins '(alpha|beta)' and '(alpha|beta)'"):
        host = loaded()
    assert host.output_formats()["subs"].plugin in {"alpha", "beta"}
    assert host.failures == []


def test_same_name_for_a_task_and_a_format_warns():
    with pytest.warns(PluginWarning, match="both an output format"):
        with plugin_host(format_plugin("confusing", "translate"), strict=False) as host:
            assert isinstance(host.resolve("translate"), Task)


def test_registration_hook_that_raises_is_recorded_and_its_entries_dropped():
    def register_output_formats(register):
        register.add(OutputFormat("first", "txt", lambda t, fp, o: None))
        raise RuntimeError("ran out of luck")

    plugin = module_plugin("halfway", register_output_formats=register_output_formats)
    with pytest.warns(PluginWarning, match="halfway"):
        with plugin_host(plugin, strict=False) as host:
            assert "first" not in host.output_formats()
            assert set(host.output_formats()) == BUILTIN_FORMATS
            (failure,) = host.failures
            assert failure.name == "halfway" and failure.stage == "register_output_formats"
            assert failure.error_text == "RuntimeError: ran out of luck"
            assert "ran out of luck" in failure.traceback


def test_bad_records_are_registration_failures():
    plugin = module_plugin("bad_task", register_tasks=lambda register: register.add(Task("x", "", "summarise")))
    with pytest.raises(PluginError, match=r"plugin 'bad_task' failed \(register_tasks\).*task_token"):
        with plugin_host(plugin):
            pass
    wrong_type = module_plugin("wrong_type", register_tasks=lambda register: register.add("transcribe"))
    with pytest.raises(PluginError, match="TaskRegister.add.. takes a Task"):
        with plugin_host(wrong_type):
            pass


def test_register_rejects_a_name_added_twice_by_one_plugin():
    register = TaskRegister("p")
    register.add(Task("t", "", "transcribe"))
    with pytest.raises(ValueError, match="added twice by plugin 'p'"):
        register.add(Task("t", "", "translate"))
    assert register.records[0].plugin == "p"


@pytest.mark.parametrize("name", ["", "has space", "a,b", "-dash-first", None])
def test_record_names_must_be_typeable(name):
    with pytest.raises(ValueError):
        OutputFormat(name, "txt", lambda t, fp, o: None)


# --- broken plugins -------------------------------------------------------------------------


def test_plugin_whose_import_raises_is_recorded_and_wm_still_works(monkeypatch):
    ep = FakeEntryPoint("broken", error=ImportError("No module named 'numpyy'"), dist="wm-broken")
    install(monkeypatch, ep, FakeEntryPoint("fine", format_plugin("fine", "fine")))
    with pytest.warns(PluginWarning, match=r"plugin 'broken' \(wm-broken\) failed \(load\).*wm plugins"):
        host = loaded()
    (failure,) = host.failures
    assert (failure.name, failure.dist, failure.stage) == ("broken", "wm-broken", "load")
    assert failure.error_text == "ImportError: No module named 'numpyy'"
    assert "ImportError" in failure.traceback
    assert {"fine", *BUILTIN_FORMATS} == set(host.output_formats())
    assert "broken" not in {p.name for p in host.plugins()}


def test_misspelled_hook_is_caught_by_check_pending_and_recorded(monkeypatch):
    typo = module_plugin("typo", register_output_format=lambda register: None)
    install(monkeypatch, FakeEntryPoint("typo", typo, dist="wm-typo"))
    with pytest.warns(PluginWarning, match="typo"):
        host = loaded()
    (failure,) = host.failures
    assert (failure.name, failure.dist, failure.stage) == ("typo", "wm-typo", "validate")
    assert "'register_output_format' is not a whispermedia hook" in failure.error_text
    assert "did you mean 'register_output_formats'?" in failure.error_text
    assert "typo" not in {p.name for p in host.plugins()}
    assert host.pm.get_plugin("typo") is None
    host.pm.check_pending()  # nothing left pending


def test_hookimpl_with_a_wrong_argument_is_recorded(monkeypatch):
    wrong = module_plugin("wrong_arg", register_tasks=lambda registry: None)
    install(monkeypatch, FakeEntryPoint("wrong_arg", wrong))
    with pytest.warns(PluginWarning):
        host = loaded()
    (failure,) = host.failures
    assert failure.stage == "load" and "registry" in failure.error_text
    assert host.pm.get_plugin("wrong_arg") is None


def test_two_distributions_with_one_plugin_name(monkeypatch):
    install(monkeypatch, FakeEntryPoint("dup", format_plugin("dup_a", "a"), dist="wm-a"),
            FakeEntryPoint("dup", format_plugin("dup_b", "b"), dist="wm-b"))
    with pytest.warns(PluginWarning, match="already taken"):
        host = loaded()
    assert [f.dist for f in host.failures] == ["wm-b"]
    assert "a" in host.output_formats() and "b" not in host.output_formats()


# --- environment ----------------------------------------------------------------------------


def test_disabled_plugin_is_never_imported(monkeypatch):
    bad = FakeEntryPoint("broken", error=ImportError("No module named 'numpyy'"))
    good = FakeEntryPoint("fine", format_plugin("fine", "fine"))
    install(monkeypatch, bad, good)
    monkeypatch.setenv("WM_DISABLE_PLUGINS", " broken , other")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        host = loaded()
    assert bad.loads == 0 and good.loads == 1
    assert host.failures == [] and "fine" in host.output_formats()


def test_a_builtin_can_be_disabled(monkeypatch):
    monkeypatch.setenv("WM_DISABLE_PLUGINS", "whispermedia_plugins.formats_text")
    host = loaded()
    assert set(host.output_formats()) == {"ass", "srt", "ttml", "vtt", "otio", "edl", "fcpxml"}


@pytest.mark.parametrize("value, expected", [("fine", {"fine"}), ("", set()), ("fine,other", {"fine", "other"})])
def test_load_plugins_limits_third_party_plugins(monkeypatch, value, expected):
    eps = {name: FakeEntryPoint(name, format_plugin(name, name)) for name in ("fine", "other", "third")}
    install(monkeypatch, *eps.values())
    monkeypatch.setenv("WM_LOAD_PLUGINS", value)
    host = loaded()
    assert {name for name, ep in eps.items() if ep.loads} == expected
    assert set(host.output_formats()) == BUILTIN_FORMATS | expected  # built-ins load regardless


def test_load_plugins_naming_a_missing_plugin_warns(monkeypatch):
    monkeypatch.setenv("WM_LOAD_PLUGINS", "ghost")
    with pytest.warns(PluginWarning, match="not installed: ghost"):
        loaded()


def test_entry_points_false_loads_none(monkeypatch):
    ep = FakeEntryPoint("fine", format_plugin("fine", "fine"))
    install(monkeypatch, ep)
    loaded(entry_points=False)
    assert ep.loads == 0


def test_strict_mode_raises_naming_the_plugin(monkeypatch):
    install(monkeypatch, FakeEntryPoint("broken", error=ImportError("No module named 'numpyy'"), dist="wm-broken"))
    monkeypatch.setenv("WM_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"plugin 'broken' \(wm-broken\) failed \(load\): ImportError") as err:
        loaded()
    assert isinstance(err.value.__cause__, ImportError)
    with pytest.raises(PluginError):
        get_host()
    monkeypatch.delenv("WM_STRICT_PLUGINS")
    with pytest.warns(PluginWarning):
        assert get_host().failures  # not cached after the strict failure: retried, now lenient


def test_trace_prints_hook_calls(monkeypatch, capsys):
    monkeypatch.setenv("WM_TRACE_PLUGINS", "1")
    override = module_plugin("guess", detect_language=lambda model, mel, tokenizer: LanguageGuess("de", 0.9))
    with plugin_host(override) as host:
        host.detect_language(None, None, None)
    err = capsys.readouterr().err
    assert "wm: plugin trace: register_output_formats -> whispermedia_plugins.formats_text" in err
    assert "detect_language(model=None, mel=None, tokenizer=None, audio_features=None)" in err


# --- lookups --------------------------------------------------------------------------------


def test_resolve_finds_formats_and_tasks():
    host = loaded()
    assert host.resolve("srt").name == "srt" and isinstance(host.resolve("srt"), OutputFormat)
    assert isinstance(host.resolve("translate"), Task)


def test_resolve_unknown_name_lists_known_names():
    host = loaded()
    with pytest.raises(PluginError) as err:
        host.resolve("str")
    assert str(err.value) == ("unknown plugin 'str'; known: ass, edl, fcpxml, json, otio, srt, transcribe, "
                              "translate, tsv, ttml, txt, vtt")
    assert isinstance(err.value, PluginNotFound) and exit_code_for(err.value) == EXIT_USAGE
    with pytest.raises(PluginError, match="unknown task 'summarise'"):
        host.task("summarise")


def test_accessors_need_load():
    with pytest.raises(RuntimeError, match="load"):
        PluginHost().output_formats()


def test_plugin_info_for_an_entry_point_plugin(monkeypatch):
    install(monkeypatch, FakeEntryPoint("fine", format_plugin("fine", "fine"), dist="wm-fine"))
    host = loaded()
    info = host.plugins()[0]  # third-party plugins are registered before the built-ins
    assert info == plugins_module.PluginInfo("fine", "wm-fine", "1.0", ("register_output_formats",), False)


# --- detect_language (firstresult) ----------------------------------------------------------


def test_firstresult_override_of_detect_language_beats_the_builtin():
    guess = LanguageGuess("fr", 0.8, {"fr": 0.8, "en": 0.2})
    override = module_plugin("always_french", detect_language=lambda model, mel, tokenizer: guess)
    with plugin_host(override) as host:
        assert host.detect_language(object(), object(), object()) is guess


def test_detect_language_none_passes_to_the_next_plugin():
    passing = module_plugin("passing", detect_language=lambda model, mel, tokenizer: None)
    answering = module_plugin("answering", detect_language=lambda mel: LanguageGuess("nl", 0.7))
    with plugin_host(answering, passing) as host:
        assert host.detect_language(None, None, None).language == "nl"


def test_detect_language_error_names_the_plugin():
    def detect_language(model, mel, tokenizer):
        raise ValueError("mel has the wrong shape")

    with plugin_host(module_plugin("fussy", detect_language=detect_language)) as host:
        with pytest.raises(PluginError, match=r"plugin 'fussy' failed in detect_language: ValueError: mel") as err:
            host.detect_language(None, None, None)
    assert isinstance(err.value.__cause__, ValueError)


def test_detect_language_with_no_answer(monkeypatch):
    monkeypatch.setenv("WM_DISABLE_PLUGINS", "whispermedia_plugins.langid")
    with plugin_host() as host:
        with pytest.raises(PluginError, match="no plugin answered"):
            host.detect_language(None, None, None)


def test_detect_language_must_return_a_language_guess():
    with plugin_host(module_plugin("sloppy", detect_language=lambda mel: "en")) as host:
        with pytest.raises(PluginError, match="returned str"):
            host.detect_language(None, None, None)


# --- register_commands ----------------------------------------------------------------------


def make_cli() -> click.Group:
    @click.group()
    def cli():
        pass

    @cli.command()
    def run():
        """core"""

    return cli


def test_plugins_add_commands_but_cannot_replace_core_ones():
    def add_hello(cli):
        @cli.command()
        def hello():
            click.echo("hi")

    def hijack(cli):
        @cli.command(name="run")
        def evil_run():
            pass

    def add_then_fail(cli):
        cli.add_command(click.Command("half"))
        raise RuntimeError("oops")

    cli = make_cli()
    core_run = cli.commands["run"]
    plugins = [module_plugin("hello", register_commands=add_hello),
               module_plugin("hijack", register_commands=hijack),
               module_plugin("failing", register_commands=add_then_fail)]
    with plugin_host(*plugins, strict=False) as host:
        with pytest.warns(PluginWarning) as record:
            host.register_commands(cli)
    assert set(cli.commands) == {"run", "hello"}
    assert cli.commands["run"] is core_run
    messages = " ".join(str(w.message) for w in record)
    assert "'hijack' tried to replace the core command 'run'" in messages and "'failing'" in messages
    assert [(f.name, f.stage) for f in host.failures] == [("failing", "register_commands")]


# --- the shared host and the testing kit ----------------------------------------------------


def test_nothing_loads_until_get_host(monkeypatch):
    calls = []
    monkeypatch.setattr(plugins_module, "entry_points", lambda group: calls.append(group) or [])
    reset_host()
    assert plugins_module._host is None and calls == []
    host = get_host()
    assert get_host() is host and calls == ["whispermedia"]
    reset_host()
    assert get_host() is not host


def test_plugin_host_is_what_get_host_returns_inside_the_block(tmp_path):
    outer = get_host()
    with plugin_host(format_plugin("mine", "mine")) as host:
        assert get_host() is host
        from whispermedia.output import write

        out = write(sample_transcript(), "mine", tmp_path / "x.txt")
        assert out.read_text(encoding="utf-8") == "mine\n"
    assert get_host() is outer
    with use_host(host):
        assert get_host() is host


def test_reload_starts_clean(monkeypatch):
    install(monkeypatch, FakeEntryPoint("broken", error=ImportError("No module named 'numpyy'")))
    with pytest.warns(PluginWarning):
        host = loaded()
    install(monkeypatch)
    host.load()
    assert host.failures == [] and len(host.plugins()) == len(plugins_module.DEFAULT_PLUGINS)


# --- the installable example plugin ---------------------------------------------------------


def test_example_plugin_is_loaded_from_its_entry_point(monkeypatch):
    try:
        dist = importlib.metadata.distribution("whispermedia-example-plugin")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("install it with: pip install --no-deps -e tests/example_plugin")
    monkeypatch.setattr(plugins_module, "entry_points", importlib.metadata.entry_points)  # the real ones
    host = loaded()
    info = {p.name: p for p in host.plugins()}["example"]
    assert (info.dist_name, info.version, info.builtin) == ("whispermedia-example-plugin", dist.version, False)
    assert info.hooks == ("register_output_formats",)
    assert host.output_formats()["words-csv"].plugin == "example"
    assert not [f for f in host.failures if f.name == "example"]
