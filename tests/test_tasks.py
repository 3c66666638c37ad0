"""Stopping background tasks (`rtc.tasks.stopped`): the task ends, and the one stopping it
keeps its own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from rtc.tasks import stopped


async def test_a_stopped_task_has_ended_whatever_it_ended_with() -> None:
    async def fails_when_stopped() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("failed while stopping") from None

    waiting = asyncio.create_task(asyncio.sleep(60))
    failing = asyncio.create_task(fails_when_stopped())
    done = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(0.01)
    await stopped(waiting, failing, done)
    assert waiting.cancelled() and failing.done() and done.done()


async def test_the_stopper_cancelled_meanwhile_is_cancelled_and_the_task_still_ends() -> None:
    """A task slow to stop (it tidies up first), and its stopper cancelled while it waits:
    the stopper's cancellation is not taken for the task's, and the task still ends."""
    tidied = asyncio.Event()

    async def tidies_up() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.05)
            tidied.set()

    worker = asyncio.create_task(tidies_up())
    await asyncio.sleep(0.01)
    stopper = asyncio.create_task(stopped(worker))
    await asyncio.sleep(0.01)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()
    await asyncio.wait({worker})
    assert tidied.is_set() and worker.cancelled()
