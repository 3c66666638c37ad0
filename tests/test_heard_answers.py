"""The answers the headsets of one process heard are kept together: those that arrive while
one transaction runs go in the next, each with where its picker is now; the board hears
of each with the moment it was heard. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db import Database, transaction
from server.events import EventBus
from server.headset.conversation import Answered, Heard
from server.headset.floor import FloorReport, HeardAnswers
from server.services import picking
from server.services.answers import AnswerJudged
from server.services.floor_events import PickerStatus, Whereabouts
from server.tables import HeardAnswer
from tests import factories as f

PLAN = (("A-01-01", "57", "CASE", 3), ("A-01-02", "31", "CABLE", 2))


class CountedDatabase(Database):
    """A real database that counts its write transactions."""

    writes = 0

    async def write(self, work: Any, *args: Any, **kwargs: Any) -> Any:
        self.writes += 1
        return await super().write(work, *args, **kwargs)


class SlowDatabase(Database):
    """A real database whose writes start late, as on a busy server."""

    async def write(self, work: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await super().write(work, *args, **kwargs)


def said(text: str, accepted: bool = True) -> AnswerJudged:
    return AnswerJudged("location", "speech", text, 0.9, accepted, 0)


def test_answers_heard_together_are_kept_in_one_transaction_each_with_its_pickers_place(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    f.pick_floor(database_url, PLAN)
    with transaction(sessions) as session:
        assignment = picking.sign_on(session, "picker", "LAX")
        assert assignment is not None
        working = assignment.id
    db = CountedDatabase(sessions)
    answers = HeardAnswers(db)

    async def headsets() -> list[Whereabouts]:
        first = asyncio.ensure_future(answers.keep("picker", said("five seven")))
        await asyncio.sleep(0)  # its transaction is under way: the rest wait for the next
        rest = [
            answers.keep(picker, said(f"answer {n}"))
            for n in range(6)
            for picker in ("picker", "manager")
        ]
        found = await asyncio.gather(first, *rest)
        await answers.close()
        return found

    found = asyncio.run(headsets())

    assert db.writes == 2
    assert found[0] == Whereabouts(working, 2, 0, ("LAX",))
    assert found[1::2] == [Whereabouts(working, 2, 0, ("LAX",))] * 6
    manager = found[2]
    assert manager.assignment is None and "LAX" in manager.warehouses
    with transaction(sessions) as session:
        rows = session.scalars(select(HeardAnswer).order_by(HeardAnswer.id)).all()
    assert [(row.picker, row.text) for row in rows] == [("picker", "five seven")] + [
        (picker, f"answer {n}") for n in range(6) for picker in ("picker", "manager")
    ]
    assert {row.assignment_id for row in rows if row.picker == "picker"} == {working}
    assert {row.assignment_id for row in rows if row.picker == "manager"} == {None}


def test_a_failed_transaction_fails_the_answers_it_held_and_the_next_are_kept(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    f.pick_floor(database_url, PLAN)
    answers = HeardAnswers(Database(sessions))
    unjudged = AnswerJudged("location", "speech", "one", 0.5, None, 0)  # type: ignore[arg-type]

    async def headsets() -> tuple[BaseException | Whereabouts, Whereabouts]:
        failed = await asyncio.gather(answers.keep("picker", unjudged), return_exceptions=True)
        kept = await answers.keep("picker", said("three one"))
        await answers.close()
        return failed[0], kept

    failed, kept = asyncio.run(headsets())
    assert isinstance(failed, Exception)
    assert kept.assignment is None  # not signed on
    with transaction(sessions) as session:
        assert session.scalars(select(HeardAnswer.text)).all() == ["three one"]


def test_an_answer_reaches_the_board_stamped_when_it_was_heard_not_when_it_was_kept(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    """The answer "sign off" is kept in the background while the picker's "yes" signs them
    off, announced at once by the dialog's own write: the `heard` frame comes second, and
    its `at` says it came first, so the board does not bring the card back."""
    f.pick_floor(database_url, PLAN)
    db = SlowDatabase(sessions)
    bus = EventBus()
    sign_off = Answered(Heard("sign off", 1.0, True, "text"), "location", 0, "sign_off", 0)

    async def headset() -> list[dict[str, Any]]:
        await bus.start()
        report = FloorReport(db, bus, HeardAnswers(db), "picker")
        with bus.subscribe(None, limit=16) as frames:
            report.answered(sign_off)
            await asyncio.sleep(0.05)  # "yes": the dialog's write announces the sign-off
            bus.publish(PickerStatus(warehouse="LAX", picker="picker", status="signed_off"))
            await report.close()
            seen = [json.loads(await frames.next()) for _ in range(2)]
        await bus.stop()
        return seen

    signed_off, heard = asyncio.run(headset())
    assert (signed_off["status"], heard["status"]) == ("signed_off", "heard")
    assert heard["heard"]["text"] == "sign off" and heard["dialog_state"] == "sign_off"
    assert at(heard) < at(signed_off)


def at(frame: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(frame["at"])
