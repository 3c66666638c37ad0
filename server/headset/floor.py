"""What a headset session tells the floor: the picker's live status on the supervisors'
boards (`connected`, each answer `heard`, `offline`) and every judged answer kept for the
recognition figures. Reported in the background, in order, so the picker never waits for
a board or the database; `close` lets what is pending finish. A status is stamped with
the moment it happened, not the moment it is published: the dialog's own writes (a
sign-off) are announced at once, so a board orders a picker's frames by `at`. The
answers of all the headsets of a process are kept together (`HeardAnswers`): a
transaction of its own for each answer was a fifth of a busy server's database work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.orm import Session

from rtc.tasks import spawn, stopped
from server.db import Database
from server.events import EventBus, utcnow
from server.headset.conversation import Answered
from server.services.answers import AnswerJudged, record_answers
from server.services.floor_events import (
    LastHeard,
    PickerState,
    Whereabouts,
    announce_picker,
    publish_picker,
    whereabouts_of,
)

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0


class HeardAnswers:
    """Keeps the answers the headsets of one process heard, each with where its picker is
    now: an answer waits for the transaction under way, if any, then goes in the next with
    every other that arrived meanwhile (a group commit). Idle, an answer is written at
    once; busy, in a few transactions a second, whatever the number of headsets."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[str, AnswerJudged, asyncio.Future[Whereabouts]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def keep(self, picker: str, answer: AnswerJudged) -> Whereabouts:
        """Once `answer` is committed: where `picker` is (their assignment in progress)."""
        kept: asyncio.Future[Whereabouts] = asyncio.get_running_loop().create_future()
        self._waiting.append((picker, answer, kept))
        if self._writer is None or self._writer.done():
            self._writer = spawn(self._write(), "heard answers")
        return await kept

    async def close(self) -> None:
        """Let the answers already waiting be written, then stop."""
        if self._writer is not None:
            await asyncio.wait({self._writer})

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                where = await self.db.write(_keep, [(picker, said) for picker, said, _ in batch])
            except Exception as exc:
                for _, _, kept in batch:
                    if not kept.done():
                        kept.set_exception(exc)
            else:
                for picker, _, kept in batch:
                    if not kept.done():
                        kept.set_result(where[picker])


def _keep(session: Session, answers: list[tuple[str, AnswerJudged]]) -> dict[str, Whereabouts]:
    record_answers(session, answers)
    return whereabouts_of(session, [picker for picker, _ in answers])


class FloorReport:
    def __init__(self, db: Database, bus: EventBus, answers: HeardAnswers, picker: str) -> None:
        self.db = db
        self.bus = bus
        self.answers = answers
        self.picker = picker
        self._pending: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def status(self, status: PickerState) -> None:
        """`connected` or `offline` (the rest the dialog's own writes announce)."""
        at = utcnow()
        self._later(lambda: announce_picker(self.db, self.bus, self.picker, status, at=at))

    def answered(self, answered: Answered) -> None:
        at = utcnow()
        heard = answered.heard
        judged = AnswerJudged(
            dialog_state=answered.state,
            source=heard.source,
            text=heard.text,
            confidence=heard.confidence,
            accepted=heard.accepted,
            reprompts=answered.reprompts,
        )

        async def report() -> None:
            where = await self.answers.keep(self.picker, judged)  # kept, and where it goes
            if answered.ended:  # the sign-off: its `signed_off` is the last word
                return
            publish_picker(
                self.bus,
                self.picker,
                "heard",
                where,
                at=at,
                heard=LastHeard(
                    text=heard.text, confidence=heard.confidence, accepted=heard.accepted
                ),
                reprompts=answered.next_reprompts,
                dialog_state=answered.next_state,
            )

        self._later(report)

    async def close(self) -> None:
        """Let what is pending be reported (a few seconds at most), then stop."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._pending.join(), CLOSE_WAIT_S)
        await stopped(self._worker)

    def _later(self, report: Callable[[], Awaitable[None]]) -> None:
        self._pending.put_nowait(report)
        if self._worker is None:
            self._worker = asyncio.create_task(self._report())

    async def _report(self) -> None:
        while True:
            report = await self._pending.get()
            try:
                await report()
            except Exception:
                log.exception("headset %s: could not report to the floor", self.picker)
            finally:
                self._pending.task_done()
