"""A manager settles an exception, in its call: what they decide is written to the ledger
and to the exception together, with who, when and the room, or not at all."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.config import Settings
from server.db import transaction
from server.problems import Conflict, InsufficientStock, Invalid
from server.services import exceptions, ledger, picking, rooms
from server.services.exceptions import Decision
from server.tables import (
    ExceptionKind,
    ExceptionOutcome,
    ExceptionStatus,
    Movement,
    PickException,
    Stock,
)
from tests import factories as f

PLAN = (("A-01-01", "57", "CASE", 3), ("A-01-02", "31", "CABLE", 2))


def short_in_a_call(database_url: str, sessions: sessionmaker[Session]) -> tuple[int, int]:
    """The picker found 1 of 3 CASE at A-01-01 (which the books say holds 10) and the
    supervisor opened a call about it: (exception id, room id)."""
    f.pick_floor(database_url, PLAN)
    with transaction(sessions) as session:
        assignment = picking.sign_on(session, "picker", "LAX")
        assert assignment is not None
        line = picking.next_open_line(session, assignment.id)
        assert line is not None
        result = picking.report_short(session, line.id, 1, "picker", idempotency_token="s1")
        assert result.exception is not None and result.exception.quantity == 2
        room = rooms.open_room_for_exception(session, result.exception.id, "supervisor")
        return result.exception.id, room.id


def on_hand(session: Session, location: str = "A-01-01") -> int:
    return sum(
        stock.quantity
        for stock in session.scalars(select(Stock))
        if stock.location.code == location and stock.sku.code == "CASE"
    )


def test_accepting_a_short_writes_the_missing_units_off_once(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    exception_id, room_id = short_in_a_call(database_url, sessions)
    accept = Decision("not on the shelf, checked on video", ExceptionOutcome.short_accepted)
    with transaction(sessions) as session:
        before = on_hand(session)
        settled = exceptions.resolve_exception(session, exception_id, "manager", accept)
        assert (settled.status, settled.resolved_by) == (ExceptionStatus.resolved, "manager")
        assert (settled.outcome, settled.room_id) == (ExceptionOutcome.short_accepted, room_id)
        movement = session.get_one(Movement, settled.movement_id)
        assert (movement.quantity, movement.from_location.code, movement.to_location) == (
            *(2, "A-01-01", None),
        )
        assert movement.reference == f"exception:{exception_id}"
        assert on_hand(session) == before - 2
    with pytest.raises(Conflict) as again, transaction(sessions) as session:
        exceptions.resolve_exception(session, exception_id, "supervisor", accept)
    assert again.value.code == "already_resolved"
    with transaction(sessions) as session:
        assert session.scalar(select(func.count(Movement.id)).where(Movement.reason == "lost")) == 1
        assert ledger.reconcile(session).consistent


def test_a_decision_the_ledger_refuses_leaves_the_exception_open(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    exception_id, _room = short_in_a_call(database_url, sessions)
    too_much = Decision("write off the lot", ExceptionOutcome.adjusted, quantity=-1000)
    with pytest.raises(InsufficientStock), transaction(sessions) as session:
        exceptions.resolve_exception(session, exception_id, "manager", too_much)
    with transaction(sessions) as session:
        exception = session.get_one(PickException, exception_id)
        assert (exception.status, exception.outcome) == (ExceptionStatus.open, None)
        assert ledger.reconcile(session).consistent
        found = Decision("found two behind the carton", ExceptionOutcome.adjusted, quantity=2)
        settled = exceptions.resolve_exception(session, exception_id, "manager", found)
        assert session.get_one(Movement, settled.movement_id).to_location.code == "A-01-01"


def test_a_recount_is_sent_as_an_exception_for_the_slot(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    exception_id, _room = short_in_a_call(database_url, sessions)
    with transaction(sessions) as session:
        recount = Decision("count A-01-01 tonight", ExceptionOutcome.recount)
        short = exceptions.resolve_exception(session, exception_id, "manager", recount)
        opened = session.scalars(
            select(PickException).where(PickException.kind == ExceptionKind.recount)
        ).one()
        assert opened.status == ExceptionStatus.open
        assert opened.pick_line_id == short.pick_line_id
        assert opened.note.startswith("recount A-01-01 (CASE)")
        assert short.movement_id is None


def test_a_call_for_help_is_settled_in_words_only(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    f.pick_floor(database_url, PLAN)
    with transaction(sessions) as session:
        assignment = picking.sign_on(session, "picker", "LAX")
        assert assignment is not None
        help_call = picking.report_exception(
            session, ExceptionKind.help, "picker", assignment_id=assignment.id
        )
    adjust = Decision("moved stock", ExceptionOutcome.adjusted, quantity=1)
    with pytest.raises(Invalid) as refused, transaction(sessions) as session:
        exceptions.resolve_exception(session, help_call.id, "manager", adjust)
    assert refused.value.code == "decision_needs_a_line"
    with transaction(sessions) as session:
        noted = Decision("talked the picker through the aisle")
        settled = exceptions.resolve_exception(session, help_call.id, "manager", noted)
        assert (settled.outcome, settled.room_id) == (ExceptionOutcome.noted, None)


def test_the_api_settles_with_an_outcome_and_shows_the_room_and_the_ledger_entry(
    client: TestClient, settings: Settings
) -> None:
    exception_id, room_id = short_in_a_call(settings.database_url, client.app.state.sessions)  # type: ignore[attr-defined]
    manager = f.auth(client, "manager")
    url = f"/api/v1/exceptions/{exception_id}/resolve"
    wrong = client.post(url, json={"resolution": "x", "outcome": "shrug"}, headers=manager)
    assert wrong.status_code == 422
    done = client.post(
        url, json={"resolution": "not there", "outcome": "short_accepted"}, headers=manager
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["outcome"], body["room"], body["resolved_by"]) == (
        *("short_accepted", room_id, "manager"),
    )
    ledger_entry = client.get(
        "/api/v1/movements", params={"sku": "CASE", "location": "A-01-01"}, headers=manager
    ).json()["items"][0]
    assert (ledger_entry["id"], ledger_entry["reason"], ledger_entry["quantity"]) == (
        *(body["movement"], "lost", 2),
    )


def test_a_picker_who_cannot_go_on_hands_the_rest_of_the_assignment_over(
    client: TestClient, settings: Settings
) -> None:
    """In the call the manager gives what is left to picker2: the line picked short stays
    closed, picker2 resumes at the next line, and the first picker writes nothing more."""
    exception_id, room_id = short_in_a_call(settings.database_url, client.app.state.sessions)  # type: ignore[attr-defined]
    manager = f.auth(client, "manager")
    f.user(client, "picker2", "picker", "LAX")
    url = f"/api/v1/exceptions/{exception_id}/resolve"
    reassign = {"resolution": "hurt his wrist; picker2 takes over", "outcome": "reassigned"}

    nobody = client.post(url, json=reassign, headers=manager)
    assert (nobody.status_code, nobody.json()["code"]) == (422, "picker_required")
    supervisor = client.post(url, json={**reassign, "picker": "supervisor"}, headers=manager)
    assert (supervisor.status_code, supervisor.json()["code"]) == (422, "not_a_picker")

    done = client.post(url, json={**reassign, "picker": "picker2"}, headers=manager)
    assert done.status_code == 200, done.text
    assert (done.json()["outcome"], done.json()["room"]) == ("reassigned", room_id)

    picker2 = f.auth(client, "picker2")
    resumed = client.post("/api/v1/assignments/sign-on", json={"warehouse": "LAX"}, headers=picker2)
    assert resumed.status_code == 200, resumed.text
    work = resumed.json()
    assert (work["picker"], work["status"]) == ("picker2", "in_progress")
    first, second = sorted(work["lines"], key=lambda line: line["sequence"])
    assert (first["status"], second["status"]) == ("short", "open")

    before = f.auth(client, "picker")
    stale = client.post(
        f"/api/v1/pick-lines/{second['id']}/confirm",
        json={"quantity": 2, "token": "old-picker"},
        headers=before,
    )
    assert (stale.status_code, stale.json()["code"]) == (403, "not_your_assignment")
    confirmed = client.post(
        f"/api/v1/pick-lines/{second['id']}/confirm",
        json={"quantity": 2, "token": "new-picker"},
        headers=picker2,
    )
    assert confirmed.status_code == 200, confirmed.text
