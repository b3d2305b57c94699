"""The plugin host: loads plugins, keeps broken ones from breaking ``wm``, and answers typed questions.

Core code never calls ``pm.hook.*``; it asks a :class:`PluginHost` (``output_formats()``,
``tasks()``, ``detect_language(...)``), which owns the pluggy manager, the registries built
from the registration hooks, and the list of plugins that failed.

Loading order (``PluginHost.load``): hookspecs; third-party entry points of group
``whispermedia``, one at a time, sorted by name; the built-in plugins of
:data:`DEFAULT_PLUGINS`; ``check_pending()`` for misspelled hooks; then the registries.
Environment:

- ``WM_DISABLE_PLUGINS=a,b``  never load these (entry-point or built-in names)
- ``WM_LOAD_PLUGINS=a,b``     load only these entry points (``""``: none); built-ins still load
- ``WM_STRICT_PLUGINS=1``     a failing plugin raises :class:`PluginFailed` instead of being recorded
- ``WM_TRACE_PLUGINS=1``      print every hook call to stderr (a debugging aid)

Nothing is loaded at import time: :func:`get_host` builds the shared host on first use.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import reprlib
import sys
import threading
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, entry_points, version
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple, Union

import pluggy

from . import hookspecs
from .errors import PluginFailed, PluginNotFound, WhisperMediaError
from .registry import FormatRegister, OutputFormat, SpeechBackend, SpeechBackendRegister, Task, TaskRegister
from .types import LanguageGuess

if TYPE_CHECKING:
    import click

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginFailure",
    "PluginHost",
    "PluginInfo",
    "PluginWarning",
    "get_host",
    "reset_host",
    "use_host",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME

#: Built-in plugins: modules registered after the entry points, through the same hooks.
DEFAULT_PLUGINS: Tuple[str, ...] = (
    "whispermedia_plugins.formats_text",
    "whispermedia_plugins.formats_subtitles",
    "whispermedia_plugins.formats_timed_text",
    "whispermedia_plugins.formats_timeline",
    "whispermedia_plugins.formats_fcpxml",
    "whispermedia_plugins.tasks",
    "whispermedia_plugins.langid",
    "whispermedia_plugins.vad",
)

_REGISTRATION_HOOKS = ("register_output_formats", "register_tasks", "register_speech_backends")

log = logging.getLogger(__name__)


class PluginWarning(UserWarning):
    """A plugin failed and was disabled, or two plugins claim the same name."""


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, as ``wm plugins`` shows it.

    ``stage`` is where it failed: ``"load"`` (import or registration), ``"validate"``
    (a hook implementation matching no hook) or the name of the hook that raised.
    """

    name: str
    dist: Optional[str]  # distribution name, when the plugin came from one
    error_text: str  # one line: "ExceptionType: message"
    stage: str = "load"
    traceback: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True)
class PluginInfo:
    """A registered plugin, as ``wm plugins`` lists it."""

    name: str
    dist_name: Optional[str]
    version: Optional[str]
    hooks: Tuple[str, ...]  # the hooks it implements, sorted
    builtin: bool


def _env_names(var: str) -> Optional[Set[str]]:
    """``a, b`` -> {"a", "b"}; unset -> None (so that "" can mean "none")."""
    value = os.environ.get(var)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _env_flag(var: str) -> bool:
    return os.environ.get(var, "").strip() == "1"


def _dist_of(ep: Any) -> Tuple[Optional[str], Optional[str]]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    try:
        return dist.metadata["Name"], dist.version
    except Exception:  # broken metadata must not stop the listing
        return None, None


def _installed_version(dist_name: str) -> Optional[str]:
    try:
        return version(dist_name)
    except PackageNotFoundError:  # running from a source tree that is not installed
        return None


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (pluggy's validation errors span several)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginHost:
    """Owns the pluggy manager and everything built from the hooks.

    ``strict=None`` reads ``WM_STRICT_PLUGINS`` when :meth:`load` runs.
    """

    def __init__(self, *, strict: Optional[bool] = None):
        self._strict_arg = strict
        self.strict = bool(strict)
        self.pm: Optional[pluggy.PluginManager] = None
        self._trace = False
        self._builtins: Set[str] = set()
        self._dists: Dict[str, Tuple[Optional[str], Optional[str]]] = {}
        self._load_failures: List[PluginFailure] = []
        self._hook_failures: Dict[str, List[PluginFailure]] = {}
        self._failed_detectors: Set[str] = set()  # detect_language implementations not asked again
        self._formats: Mapping[str, OutputFormat] = MappingProxyType({})
        self._tasks: Mapping[str, Task] = MappingProxyType({})
        self._speech: Mapping[str, SpeechBackend] = MappingProxyType({})

    def __repr__(self) -> str:
        n = 0 if self.pm is None else len(self.pm.get_plugins())
        return f"<PluginHost plugins={n} failures={len(self.failures)}>"

    # --- loading ---------------------------------------------------------------------------

    def load(self, entry_points: bool = True) -> None:
        """(Re)load every plugin from scratch; see the module docstring for the order."""
        self.strict = _env_flag("WM_STRICT_PLUGINS") if self._strict_arg is None else self._strict_arg
        self._trace = _env_flag("WM_TRACE_PLUGINS")
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._builtins.clear()
        self._dists.clear()
        self._load_failures.clear()
        self._hook_failures.clear()
        self._failed_detectors.clear()
        for name in _env_names("WM_DISABLE_PLUGINS") or ():
            self.pm.set_blocked(name)
        if entry_points:
            self._load_entry_points()
        for module_name in DEFAULT_PLUGINS:
            self._load_builtin(module_name)
        self._check_pending()
        if self._trace:
            self.pm.add_hookcall_monitoring(self._trace_before, self._trace_after)
        self._build_registries()

    def register(self, plugin: object, name: Optional[str] = None) -> Optional[str]:
        """Register an in-memory plugin (a module, class or instance with hookimpls) after
        :meth:`load`, and rebuild the registries. Returns the name it was registered under,
        or None if that name is blocked or the plugin failed (recorded, or raised if strict).
        The default name is the module's or class's ``__name__``, or the instance's class name."""
        pm = self._manager()
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        try:
            registered = self._register(plugin, name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a plugin never ends wm
            self._fail(self._load_failures, name, None, "load", exc)
            return None
        if registered is None:
            return None
        self._check_pending()
        self._build_registries()
        return registered if pm.has_plugin(registered) else None

    def _manager(self) -> pluggy.PluginManager:
        if self.pm is None:
            raise RuntimeError("PluginHost.load() has not been called")
        return self.pm

    def _register(self, plugin: object, name: str) -> Optional[str]:
        pm = self._manager()
        try:
            return pm.register(plugin, name=name)
        except BaseException:
            if pm.get_plugin(name) is plugin:  # older pluggy can leave a plugin half-registered
                pm.unregister(plugin)
            raise

    def _load_entry_points(self) -> None:
        pm = self._manager()
        only = _env_names("WM_LOAD_PLUGINS")
        # sorted, so that which of two conflicting plugins wins does not depend on sys.path order
        found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        if only:
            missing = sorted(only - {ep.name for ep in found})
            if missing:
                warnings.warn(f"WM_LOAD_PLUGINS names plugins that are not installed: {', '.join(missing)}",
                              PluginWarning, stacklevel=3)
        for ep in found:
            if (only is not None and ep.name not in only) or pm.is_blocked(ep.name):
                continue  # skipped before import: a disabled plugin's code never runs
            dist, dist_version = _dist_of(ep)
            if pm.has_plugin(ep.name):
                other = self._dist(ep.name)
                self._fail(self._load_failures, ep.name, dist, "load",
                           f"the name {ep.name!r} is already taken by another plugin ({other or 'unknown'})")
                continue
            try:
                self._register(ep.load(), ep.name)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit at import too: a plugin never ends wm
                self._fail(self._load_failures, ep.name, dist, "load", exc)
                continue
            self._dists[ep.name] = (dist, dist_version)

    def _load_builtin(self, module_name: str) -> None:
        if self._manager().is_blocked(module_name):
            return
        try:
            self._register(importlib.import_module(module_name), module_name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # our own bug, but `wm plugins` and `wm doctor` must still run
            self._fail(self._load_failures, module_name, "whispermedia", "load", exc)
            return
        self._builtins.add(module_name)
        self._dists[module_name] = ("whispermedia", _installed_version("whispermedia"))

    def _check_pending(self) -> None:
        """Unregister (and record) every plugin with a hookimpl that matches no hookspec."""
        pm = self._manager()
        while True:
            try:
                pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                plugin = exc.plugin
                name = pm.get_name(plugin) or repr(plugin)
                unknown = sorted(
                    caller.name
                    for caller in pm.get_hookcallers(plugin) or ()
                    if not caller.has_spec()
                    and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
                )
                pm.unregister(plugin)
                dist = self._dists.pop(name, (None, None))[0]
                self._builtins.discard(name)
                self._fail(self._load_failures, name, dist, "validate", "; ".join(map(_unknown_hook_text, unknown)))

    def _dist(self, name: str) -> Optional[str]:
        return self._dists.get(name, (None, None))[0]

    def _fail(self, into: List[PluginFailure], name: str, dist: Optional[str], stage: str,
              error: Union[BaseException, str]) -> None:
        if isinstance(error, BaseException):
            text = _one_line(error)
            tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        else:
            text, tb = error, ""
        failure = PluginFailure(name, dist, text, stage, tb)
        where = f"plugin {name!r}" + (f" ({dist})" if dist else "")
        if self.strict:
            cause = error if isinstance(error, BaseException) else None
            raise PluginFailed(f"{where} failed ({stage}): {text}") from cause
        into.append(failure)
        warnings.warn(f"{where} failed ({stage}) and is disabled: {text}; see `wm plugins`",
                      PluginWarning, stacklevel=4)

    @property
    def failures(self) -> List[PluginFailure]:
        """Every plugin failure recorded since the last :meth:`load`, load failures first."""
        out = list(self._load_failures)
        for failures in self._hook_failures.values():
            out.extend(failures)
        return out

    # --- registries ------------------------------------------------------------------------

    def _impls(self, hook_name: str) -> Iterator[pluggy.HookImpl]:
        """The hook's implementations in pluggy's call order (tryfirst first, trylast last)."""
        for impl in reversed(getattr(self._manager().hook, hook_name).get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue  # the host calls registration hooks itself: there is no call to wrap
            if self._trace:
                self._emit_trace(f"{hook_name} -> {impl.plugin_name}")
            yield impl

    def _call(self, impl: pluggy.HookImpl, **kwargs: Any) -> None:
        # an implementation may accept a subset of the spec's arguments, as pluggy allows
        impl.function(*[kwargs[name] for name in impl.argnames])

    def _collect(self, hook_name: str, register_type: type) -> List[Any]:
        records: List[Any] = []
        failures = self._hook_failures[hook_name] = []
        for impl in self._impls(hook_name):
            register = register_type(impl.plugin_name)
            try:
                self._call(impl, register=register)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # what it added so far is dropped with it
                self._fail(failures, impl.plugin_name, self._dist(impl.plugin_name), hook_name, exc)
                continue
            records.extend(register.records)
        return records

    def _merge(self, kind: str, records: List[Any]) -> Mapping[str, Any]:
        merged: Dict[str, Any] = {}
        for record in records:
            held = merged.get(record.name)
            if held is None:
                merged[record.name] = record  # first registration in call order wins
            elif record.plugin in self._builtins and held.plugin not in self._builtins:
                log.info("%s %r from plugin %r overrides the built-in one", kind, record.name, held.plugin)
            else:
                warnings.warn(f"{kind} {record.name!r} is registered by plugins {held.plugin!r} and "
                              f"{record.plugin!r}; using the one from {held.plugin!r}", PluginWarning, stacklevel=4)
        return MappingProxyType(dict(sorted(merged.items())))

    def _build_registries(self) -> None:
        self._formats = self._merge("output format", self._collect("register_output_formats", FormatRegister))
        self._tasks = self._merge("task", self._collect("register_tasks", TaskRegister))
        self._speech = self._merge("speech backend", self._collect("register_speech_backends", SpeechBackendRegister))
        for name in sorted(set(self._formats) & set(self._tasks)):
            warnings.warn(f"{name!r} is both an output format (plugin {self._formats[name].plugin!r}) and a task "
                          f"(plugin {self._tasks[name].plugin!r}); --plugin {name} means the task",
                          PluginWarning, stacklevel=3)

    # --- typed accessors -------------------------------------------------------------------

    def output_formats(self) -> Mapping[str, OutputFormat]:
        """Every registered output format by name (sorted, read-only)."""
        self._manager()
        return self._formats

    def output_format(self, name: str) -> OutputFormat:
        """The output format called ``name``; :class:`PluginNotFound` if there is none."""
        fmt = self.output_formats().get(name)
        if fmt is None:
            raise PluginNotFound(f"unknown output format {name!r}; known: {', '.join(self._formats) or '(none)'}")
        return fmt

    def tasks(self) -> Mapping[str, Task]:
        """Every registered task by name (sorted, read-only)."""
        self._manager()
        return self._tasks

    def task(self, name: str) -> Task:
        """The task called ``name``; :class:`PluginNotFound` if there is none."""
        task = self.tasks().get(name)
        if task is None:
            raise PluginNotFound(f"unknown task {name!r}; known: {', '.join(self._tasks) or '(none)'}")
        return task

    def speech_backends(self) -> Mapping[str, SpeechBackend]:
        """Every registered voice activity detector by name (sorted, read-only)."""
        self._manager()
        return self._speech

    def speech_backend(self, name: str) -> SpeechBackend:
        """The speech backend called ``name`` (``--vad NAME``); :class:`PluginNotFound` if none."""
        backend = self.speech_backends().get(name)
        if backend is None:
            raise PluginNotFound(f"unknown voice activity detector {name!r} (--vad); known: "
                                 f"{', '.join(self._speech) or '(none)'}, off")
        return backend

    def resolve(self, name: str) -> Union[OutputFormat, Task]:
        """What ``--plugin NAME`` names: a task or an output format (a task if both)."""
        tasks, formats = self.tasks(), self.output_formats()
        if name in tasks:
            return tasks[name]
        if name in formats:
            return formats[name]
        known = ", ".join(sorted(set(tasks) | set(formats))) or "(none)"
        raise PluginNotFound(f"unknown plugin {name!r}; known: {known}")

    def detect_language(self, model: Any, mel: Any, tokenizer: Any, audio_features: Any = None) -> LanguageGuess:
        """Ask the ``detect_language`` implementations in call order (see the hook's spec) for
        the first non-None answer.

        An implementation that raises (anything but a :class:`WhisperMediaError`, which passes
        unchanged, or Ctrl-C) or answers with something that is not a ``LanguageGuess`` is
        recorded as failed (stage ``detect_language``), warned about once and not asked again
        until the next :meth:`load`; the next implementation answers instead, finally the
        built-in one. A built-in that fails, or any failure when strict, is a
        :class:`PluginFailed` naming the plugin.
        """
        kwargs = dict(model=model, mel=mel, tokenizer=tokenizer, audio_features=audio_features)
        if self._trace:  # called here, not through pluggy, so the monitoring hooks do not see it
            self._emit_trace(f"detect_language({', '.join(f'{k}={reprlib.repr(v)}' for k, v in kwargs.items())})")
        for impl in self._impls("detect_language"):
            name = impl.plugin_name
            if name in self._failed_detectors:
                continue
            try:
                guess = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except (WhisperMediaError, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._detector_failed(name, exc)
                continue
            if guess is None:
                continue
            if not isinstance(guess, LanguageGuess):
                self._detector_failed(name, f"returned {type(guess).__name__}, expected a LanguageGuess")
                continue
            if self._trace:
                self._emit_trace(f"detect_language returned {reprlib.repr(guess)} (plugin {name!r})")
            return guess
        raise PluginFailed("no plugin answered detect_language (is whispermedia_plugins.langid disabled?)")

    def _detector_failed(self, name: str, error: Union[BaseException, str]) -> None:
        text = _one_line(error) if isinstance(error, BaseException) else error
        if self.strict or name in self._builtins:  # strict, or nothing left to fall back to
            cause = error if isinstance(error, BaseException) else None
            raise PluginFailed(f"plugin {name!r} failed in detect_language: {text}") from cause
        self._failed_detectors.add(name)
        failures = self._hook_failures.setdefault("detect_language", [])
        self._fail(failures, name, self._dist(name), "detect_language", error)

    def register_commands(self, cli: click.Group) -> None:
        """Let plugins add commands to ``cli``; a failing plugin's commands are removed again,
        and a core command (one ``cli`` had before) cannot be replaced."""
        core = dict(cli.commands)
        failures = self._hook_failures["register_commands"] = []
        for impl in self._impls("register_commands"):
            before = dict(cli.commands)
            try:
                self._call(impl, cli=cli)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                cli.commands.clear()
                cli.commands.update(before)
                self._fail(failures, impl.plugin_name, self._dist(impl.plugin_name), "register_commands", exc)
                continue
            for name, command in core.items():
                if cli.commands.get(name) is not command:
                    cli.commands[name] = command
                    warnings.warn(f"plugin {impl.plugin_name!r} tried to replace the core command {name!r}; "
                                  "the core command is kept", PluginWarning, stacklevel=2)

    def plugins(self) -> List[PluginInfo]:
        """Every registered plugin in registration order (third-party first, then built-ins)."""
        pm = self._manager()
        infos = []
        for name, plugin in pm.list_name_plugin():
            if plugin is None:  # a blocked name
                continue
            dist, dist_version = self._dists.get(name, (None, None))
            hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
            infos.append(PluginInfo(name, dist, dist_version, hooks, name in self._builtins))
        return infos

    # --- tracing (WM_TRACE_PLUGINS=1) ------------------------------------------------------

    def _emit_trace(self, line: str) -> None:
        # asked for explicitly through the environment, so it may print, unlike the rest of the library
        print(f"wm: plugin trace: {line}", file=sys.stderr)

    def _trace_before(self, hook_name: str, impls: List[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        args = ", ".join(f"{k}={reprlib.repr(v)}" for k, v in kwargs.items())
        self._emit_trace(f"{hook_name}({args}) -> {[i.plugin_name for i in reversed(impls)]}")

    def _trace_after(self, outcome: Any, hook_name: str, impls: List[pluggy.HookImpl],
                     kwargs: Mapping[str, Any]) -> None:
        exc = outcome.exception
        result = f"raised {_one_line(exc)}" if exc else f"returned {reprlib.repr(outcome.get_result())}"
        self._emit_trace(f"{hook_name} {result}")


def _unknown_hook_text(hook_name: str) -> str:
    names = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), f"{hookspecs.PROJECT_NAME}_spec")]
    close = difflib.get_close_matches(hook_name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hook_name!r} is not a whispermedia hook{hint}"


# --- the shared host -------------------------------------------------------------------------

_host: Optional[PluginHost] = None
_host_lock = threading.RLock()


def get_host() -> PluginHost:
    """The process-wide host, loaded with entry points and built-ins on first use."""
    global _host
    with _host_lock:
        if _host is None:
            host = PluginHost()
            host.load()
            _host = host  # only a host that loaded is kept, so a strict failure is retried next time
        return _host


def reset_host() -> None:
    """Forget the shared host (tests; after installing a plugin in-process)."""
    global _host
    with _host_lock:
        _host = None


@contextmanager
def use_host(host: PluginHost) -> Iterator[PluginHost]:
    """Make ``host`` the one :func:`get_host` returns inside the ``with`` block."""
    global _host
    with _host_lock:
        previous, _host = _host, host
    try:
        yield host
    finally:
        with _host_lock:
            _host = previous
