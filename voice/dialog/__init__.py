"""Headset dialogs: data-driven state machines that talk a picker through their work.

`machine` is the engine (states, grammars and prompts as data); `pick` is the pick
workflow with `PickWork`, the protocol the server implements; prompt texts live per locale
in ``voice/locales/<locale>/dialog.toml`` and ``<workflow>.toml``.
"""

from voice.dialog.machine import (
    Dialog,
    DialogEvent,
    Prompt,
    Reply,
    State,
    Turn,
    Workflow,
    WorkRejected,
)
from voice.dialog.pick import (
    PICK_WORKFLOW,
    AssignmentInfo,
    PickDialog,
    PickRejected,
    PickTask,
    PickWork,
)
from voice.dialog.prompts import MissingPrompt, Prompts, load_prompts

__all__ = [
    "PICK_WORKFLOW",
    "AssignmentInfo",
    "Dialog",
    "DialogEvent",
    "MissingPrompt",
    "PickDialog",
    "PickRejected",
    "PickTask",
    "PickWork",
    "Prompt",
    "Prompts",
    "Reply",
    "State",
    "Turn",
    "WorkRejected",
    "Workflow",
    "load_prompts",
]
