"""Every hook a whispermedia plugin can implement.

Named things (output formats, tasks) are registered through a typed register object,
one call per plugin, so the host can attribute every entry and settle duplicate names.
Single answers (language detection) are ``firstresult`` hooks whose built-in
implementation is ``trylast``, so any plugin can override it.

Plugins mark their functions with :data:`hookimpl` (also exported as
``whispermedia.hookimpl``). docs/plugins.md has an example for every hook, and
tests/test_hookspecs_documented.py keeps it in step with this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import pluggy

if TYPE_CHECKING:  # the hooks only name these types; importing them here would pull in torch and click
    import click
    import torch

    from .registry import FormatRegister, SpeechBackendRegister, TaskRegister
    from .tokenizer import Tokenizer
    from .types import LanguageGuess

PROJECT_NAME = "whispermedia"  # the pluggy project name, and the entry-point group

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]


# --- outputs ---------------------------------------------------------------------------------


@hookspec
def register_output_formats(register: FormatRegister) -> None:
    """Register output formats (what ``wm run --plugin NAME`` and ``whispermedia.write`` render).

    Called once per plugin when the host builds its format registry, with a register bound
    to that plugin, so every format is attributed to the plugin that added it. Add each
    format with ``register.add(OutputFormat(name, extension, write, help=..., needs_words=...))``,
    where ``write(transcript, fp, options)`` renders a :class:`~whispermedia.types.Transcript`
    into the text stream ``fp`` (opened by the host: UTF-8, ``"\\n"`` line endings, written
    atomically) and ``options`` is a read-only mapping of format options (unknown keys are
    to be ignored).

    The first registration of a name wins. Built-in formats are registered ``trylast``, so a
    plugin's format of the same name replaces the built-in one; two plugins claiming one
    name get a warning naming both. If the hook raises, the plugin is recorded as failed
    and none of its formats are kept.

    :param register: the :class:`~whispermedia.registry.FormatRegister` to add formats to.
    :returns: nothing; formats are added through ``register``.

    .. versionadded:: 0.1
    """


# --- decoding --------------------------------------------------------------------------------


@hookspec
def register_tasks(register: TaskRegister) -> None:
    """Register tasks: named ways of prompting the decoder (``transcribe``, ``translate``).

    Called once per plugin when the host builds its task registry. Add each task with
    ``register.add(Task(name, help, task_token))``, where ``task_token`` is the Whisper
    special token the decoder is prompted with: ``"transcribe"`` or ``"translate"``.
    Duplicate names are settled as for :func:`register_output_formats`. Task and output
    format names share one namespace on the command line (``--plugin NAME``).

    :param register: the :class:`~whispermedia.registry.TaskRegister` to add tasks to.
    :returns: nothing; tasks are added through ``register``.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def detect_language(model: torch.nn.Module, mel: torch.Tensor, tokenizer: Tokenizer,
                    audio_features: Optional[torch.Tensor]) -> Optional[LanguageGuess]:
    """Guess the spoken language of one 30-second window.

    Called when the caller did not name a language: for the file's first window, and with
    ``language_per_region`` for each window's head and for the stretches where the language
    may change (docs/cli.md, "Language"). Stops at first non-None result: return ``None`` to
    let the next implementation (finally the built-in one, which is ``trylast``) answer. An
    implementation that raises (``SystemExit`` too) or answers with another type is recorded
    as failed, warned about once and skipped from then on: the next one answers
    (``WM_STRICT_PLUGINS=1``: a :class:`~whispermedia.errors.PluginFailed` naming the plugin).

    :param model: the loaded Whisper model (a ``torch.nn.Module``), in eval mode, on the
        device and dtype it will decode with.
    :param mel: float32 log-mel features of the window, ``shape = (n_mels, 3000)``
        (80 or 128 mel bins, 3000 frames of 10 ms, zero-padded past the audio), on the
        model's device.
    :param tokenizer: the model's :class:`~whispermedia.tokenizer.Tokenizer`; its
        language tokens say which languages the model knows.
    :param audio_features: the model's encoder output for exactly this ``mel``,
        ``shape = (1, 1500, n_audio_state)``, when the caller already computed it (else
        ``None``); an implementation that runs Whisper's own detection can use it to skip an
        encoder pass. Declare the parameter only if you use it.
    :returns: a :class:`~whispermedia.types.LanguageGuess`, or ``None`` to pass.

    .. versionadded:: 0.1
    .. versionchanged:: 0.1 ``audio_features``; called per region with ``language_per_region``.
    """


@hookspec
def register_speech_backends(register: SpeechBackendRegister) -> None:
    """Register voice activity detectors: where in the audio someone speaks (``--vad NAME``).

    Called once per plugin when the host builds its backend registry. Add each backend with
    ``register.add(SpeechBackend(name, detect, help=...))``, where ``detect(chunks, params)``
    reads 16 kHz mono float32 audio (an iterable of 1-D ``numpy`` arrays of any sizes, read
    once) and returns the speech regions as (start, end) seconds on the audio's own timeline,
    in time order; ``params`` (:class:`~whispermedia.speech.SpeechParams`) holds the user's
    threshold, shortest speech, shortest silence and padding. The transcription loop decodes
    only windows inside these regions (with their natural pauses) and writes them into
    ``TranscriptInfo.speech``. The built-in ``silero`` (the default) and ``energy`` backends
    are registered ``trylast``, so a plugin's backend of the same name replaces them; the name
    ``off`` is reserved. Duplicate names are settled as for :func:`register_output_formats`.

    :param register: the :class:`~whispermedia.registry.SpeechBackendRegister` to add backends to.
    :returns: nothing; backends are added through ``register``.

    .. versionadded:: 0.1
    """


# --- command line ----------------------------------------------------------------------------


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``wm`` command line.

    Called once per plugin when ``wm`` builds its command list, after the core commands
    exist. Add commands with ``@cli.command()`` or ``cli.add_command(...)``. A plugin cannot
    replace a core command (the host puts the core one back and warns); if the hook raises,
    the commands it added are removed and the plugin is recorded as failed.

    :param cli: the ``wm`` :class:`click.Group`.
    :returns: nothing; commands are added to ``cli``.

    .. versionadded:: 0.1
    """
