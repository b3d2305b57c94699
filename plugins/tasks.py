"""Built-in tasks: the two things Whisper's decoder can be prompted to do."""

from __future__ import annotations

from whispermedia.hookspecs import hookimpl
from whispermedia.registry import Task, TaskRegister


@hookimpl(trylast=True)
def register_tasks(register: TaskRegister) -> None:
    register.add(Task("transcribe", "write down the speech in the language it is spoken in", "transcribe"))
    register.add(Task("translate", "translate the speech into English text", "translate"))
