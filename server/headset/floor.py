"""What a headset session tells the floor: the picker's live status on the supervisors'
boards (`connected`, each answer `heard`, `offline`) and every judged answer kept for the
recognition figures. Reported in the background, in order, so the picker never waits for
a board or the database; `close` lets what is pending finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.orm import Session

from rtc.tasks import stopped
from server.db import Database
from server.events import EventBus
from server.headset.conversation import Answered
from server.services.answers import AnswerJudged, record_answer
from server.services.floor_events import (
    Heard,
    PickerState,
    Whereabouts,
    announce_picker,
    publish_picker,
    whereabouts,
)

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0


class FloorReport:
    def __init__(self, db: Database, bus: EventBus, picker: str) -> None:
        self.db = db
        self.bus = bus
        self.picker = picker
        self._pending: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def status(self, status: PickerState) -> None:
        """`connected` or `offline` (the rest the dialog's own writes announce)."""
        self._later(lambda: announce_picker(self.db, self.bus, self.picker, status))

    def answered(self, answered: Answered) -> None:
        heard = answered.heard
        judged = AnswerJudged(
            dialog_state=answered.state,
            source=heard.source,
            text=heard.text,
            confidence=heard.confidence,
            accepted=heard.accepted,
            reprompts=answered.reprompts,
        )

        def keep(session: Session) -> Whereabouts:
            record_answer(session, self.picker, judged)
            return whereabouts(session, self.picker)

        async def report() -> None:
            where = await self.db.write(keep)  # one transaction: kept, and where it goes
            if answered.ended:  # the sign-off: its `signed_off` is the last word
                return
            publish_picker(
                self.bus,
                self.picker,
                "heard",
                where,
                heard=Heard(text=heard.text, confidence=heard.confidence, accepted=heard.accepted),
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
