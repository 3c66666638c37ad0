"""Background tasks: started so that they are kept alive until they finish and their
failures are logged (`spawn`), and stopped so that the one stopping them is never
mistaken for them (`stopped`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Run `coro` in a task held until it finishes (the event loop keeps only weak
    references); an exception it ends with is logged under `name`."""
    task = asyncio.create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("task %s failed", task.get_name(), exc_info=error)


async def stopped(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` and wait until they have ended, whatever they ended with (a failure
    while stopping is not worth a warning). Unlike awaiting each with its CancelledError
    suppressed, this never swallows a cancellation of the caller: it is raised at once,
    the tasks being cancelled already. (Swallowed, it kept a headset's answer worker
    answering after its conversation was closed, and the close waited for ever; held
    back until the tasks ended, it outlived the cancel scope that sent it.)"""
    for task in tasks:
        task.add_done_callback(_quietly)
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


def _quietly(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
