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
    suppressed, this never swallows a cancellation of the caller: one that comes while
    waiting is raised once the tasks have ended. (Swallowed, it kept a headset's answer
    worker answering after its conversation was closed, and the close waited for ever.)"""
    for task in tasks:
        task.cancel()
    cancelled = False
    while not all(task.done() for task in tasks):
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            cancelled = True
    for task in tasks:
        if not task.cancelled():
            task.exception()
    if cancelled:
        raise asyncio.CancelledError
