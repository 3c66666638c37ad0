"""KPIs read off real picking: who picked how fast and how well, by the hour, how long
orders took, and what does not move."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from server.config import Settings
from server.db import transaction
from server.services import kpis, picking
from server.services.answers import AnswerJudged, record_answer
from server.tables import (
    ExceptionKind,
    ExceptionOutcome,
    ExceptionStatus,
    Order,
    PickException,
    PickLine,
    Warehouse,
)
from tests import factories as f

MORNING = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
PLAN = (
    ("A-01-01", "57", "CASE", 3),
    ("A-01-02", "31", "CABLE", 2),
    ("A-01-03", "84", "LAMP", 4),
    ("A-01-04", "62", "MUG", 1),
)


def picked_morning(database_url: str, sessions: sessionmaker[Session]) -> None:
    """LAX, order HS-1 (CASE 3, CABLE 2) arrived at 08:00; the picker picked CASE in full
    at 09:10 and found 1 of 2 CABLE at 10:20. HS-2 (LAMP, MUG) is never picked."""
    f.pick_floor(database_url, PLAN, orders=2)
    with transaction(sessions) as session:
        assignment = picking.sign_on(session, "picker", "LAX")
        assert assignment is not None
        first, second = sorted(assignment.lines, key=lambda line: line.sequence)
        picking.confirm_pick(session, first.id, 3, "picker", idempotency_token="t1")
        picking.report_short(session, second.id, 1, "picker", idempotency_token="t2")
        picking.complete_assignment(session, assignment.id, "picker")
        for line, moment in ((first, "09:10"), (second, "10:20")):
            hour, minute = map(int, moment.split(":"))
            at = MORNING.replace(hour=hour, minute=minute)
            session.execute(update(PickLine).where(PickLine.id == line.id).values(picked_at=at))
        session.execute(update(Order).where(Order.number == "HS-1").values(created_at=MORNING))


def test_a_pickers_rate_counts_the_hours_they_worked_and_shorts_lower_accuracy(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    picked_morning(database_url, sessions)
    day = kpis.Window(since=MORNING, until=MORNING + dt.timedelta(hours=12))
    with transaction(sessions) as session:
        (rate,) = kpis.picker_rates(session, day)
        hourly = kpis.lines_by_hour(session, day)
        (cycle,) = kpis.cycle_times(session, day)
        movers = kpis.slow_movers(session, day)
    assert (rate.warehouse, rate.picker) == ("LAX", "picker")
    assert (rate.lines, rate.units, rate.confirmed, rate.short) == (2, 4, 1, 1)
    assert rate.hours_worked == 2
    assert rate.lines_per_hour == 1.0
    assert rate.accuracy == 0.5
    assert [(h.hour.hour, h.lines) for h in hourly] == [(9, 1), (10, 1)]
    assert (cycle.warehouse, cycle.orders) == ("LAX", 1)
    assert cycle.p50_hours == cycle.p90_hours == round(140 / 60, 2)  # 08:00 to 10:20
    # never-picked SKUs come first; CASE (3 of 10 picked) turned over faster than CABLE
    # (1 of 10, and a short's missing unit stays on the books at the slot)
    assert [m.sku for m in movers[:2]] == ["LAMP", "MUG"]
    assert movers[0].units_picked == 0
    assert [m.sku for m in movers[2:]] == ["CABLE", "CASE"]


def test_kpis_count_only_the_window_and_the_warehouses_asked_for(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    picked_morning(database_url, sessions)
    with transaction(sessions) as session:
        lax = session.query(Warehouse).filter_by(code="LAX").one().id
        nine_to_ten = kpis.Window(
            since=MORNING.replace(hour=9), until=MORNING.replace(hour=10), warehouse_ids={lax}
        )
        (rate,) = kpis.picker_rates(session, nine_to_ten)
        assert (rate.lines, rate.confirmed, rate.short) == (1, 1, 0)
        assert kpis.cycle_times(session, nine_to_ten) == []  # HS-1 ended at 10:20
        elsewhere = kpis.Window(since=MORNING, until=MORNING.replace(hour=20), warehouse_ids={-1})
        assert kpis.picker_rates(session, elsewhere) == []
        assert kpis.slow_movers(session, elsewhere) == []


def test_recognition_counts_spoken_answers_taken_first_time_and_the_re_prompts(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    """Answers as the headset reports them: at the first slot the picker's check digits
    were refused once, then taken; the quantity was taken at once; a keypad entry says
    nothing of recognition. Recounts: one slot matched the books, one was corrected."""
    f.pick_floor(database_url, PLAN, orders=1)

    def spoken(state: str, accepted: bool, reprompts: int, source: str = "speech") -> AnswerJudged:
        return AnswerJudged(state, source, "five seven", 0.8, accepted, reprompts)

    with transaction(sessions) as session:
        assert picking.sign_on(session, "picker", "LAX") is not None
        for answer in (
            spoken("location", False, 0),
            spoken("location", True, 1),
            spoken("quantity", True, 0),
            spoken("location", True, 0, source="text"),
        ):
            record_answer(session, "picker", answer)
        lax = session.query(Warehouse).filter_by(code="LAX").one().id
        for outcome in (ExceptionOutcome.noted, ExceptionOutcome.adjusted):
            session.add(
                PickException(
                    kind=ExceptionKind.recount,
                    status=ExceptionStatus.resolved,
                    warehouse_id=lax,
                    reported_by="manager",
                    resolved_by="picker",
                    resolved_at=dt.datetime.now(dt.UTC),
                    outcome=outcome,
                )
            )
    now = dt.datetime.now(dt.UTC)
    window = kpis.Window(since=now - dt.timedelta(hours=1), until=now + dt.timedelta(minutes=1))
    with transaction(sessions) as session:
        (rate,) = kpis.recognition_rates(session, window)
        (accuracy,) = kpis.inventory_accuracy(session, window)
        later = kpis.Window(since=window.until, until=window.until + dt.timedelta(hours=1))
        assert kpis.recognition_rates(session, later) == []
    assert (rate.warehouse, rate.picker, rate.answers, rate.refused) == ("LAX", "picker", 3, 1)
    assert (rate.first_answers, rate.right_first_time) == (2, 1)
    assert (rate.right_first_time_rate, rate.reprompt_rate) == (0.5, 0.3333)
    assert (accuracy.recounts, accuracy.matched, accuracy.corrected) == (2, 1, 1)
    assert accuracy.accuracy == 0.5


def test_a_warehouses_rate_is_per_hour_it_picked(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    picked_morning(database_url, sessions)
    day = kpis.Window(since=MORNING, until=MORNING + dt.timedelta(hours=12))
    with transaction(sessions) as session:
        (lax,) = kpis.warehouse_rates(session, day)
    assert (lax.warehouse, lax.lines, lax.units, lax.hours_worked) == ("LAX", 2, 4, 2)
    assert lax.lines_per_hour == 1.0


def test_the_console_reads_kpis_as_json_and_csv_and_a_picker_may_not(
    client: TestClient, settings: Settings
) -> None:
    picked_morning(settings.database_url, client.app.state.sessions)  # type: ignore[attr-defined]
    window = {"since": "2026-12-01T00:00:00", "until": "2026-12-02T00:00:00"}
    supervisor = f.auth(client, "supervisor")

    body = client.get("/api/v1/kpis", params=window, headers=supervisor).json()
    assert [(p["picker"], p["lines"], p["accuracy"]) for p in body["pickers"]] == [
        ("picker", 2, 0.5)
    ]
    assert body["cycle_times"][0]["orders"] == 1
    assert [(w["warehouse"], w["lines"]) for w in body["warehouses"]] == [("LAX", 2)]
    assert body["recognition"] == body["inventory_accuracy"] == []  # none in that window

    csv = client.get(
        "/api/v1/kpis/export", params={**window, "table": "pickers"}, headers=supervisor
    )
    assert csv.headers["content-type"].startswith("text/csv")
    header, row = csv.text.strip().splitlines()
    assert header.split(",")[:3] == ["warehouse", "picker", "lines"]
    assert row.startswith("LAX,picker,2,")

    backwards = client.get(
        "/api/v1/kpis",
        params={"since": window["until"], "until": window["since"]},
        headers=supervisor,
    )
    assert backwards.status_code == 422
    assert backwards.json()["code"] == "invalid_window"
    assert client.get("/api/v1/kpis", headers=f.auth(client, "picker")).status_code == 403


def test_waves_are_listed_with_their_progress_and_can_be_made_more_urgent(
    client: TestClient, settings: Settings
) -> None:
    picked_morning(settings.database_url, client.app.state.sessions)  # type: ignore[attr-defined]
    f.release_next_order(settings.database_url)
    supervisor = f.auth(client, "supervisor")

    waves = client.get("/api/v1/waves", headers=supervisor).json()
    assert waves["total"] == 2
    newest, first = waves["items"]
    assert (first["status"], first["lines"], first["lines_closed"]) == ("completed", 2, 2)
    assert (newest["status"], newest["lines"], newest["lines_closed"]) == ("released", 2, 0)

    urgent = client.patch(
        f"/api/v1/waves/{newest['number']}", json={"priority": 1}, headers=supervisor
    )
    assert urgent.status_code == 200
    assert {a["priority"] for a in urgent.json()["assignments"]} == {1}
    done = client.patch(
        f"/api/v1/waves/{first['number']}", json={"priority": 1}, headers=supervisor
    )
    assert done.status_code == 409
    assert done.json()["code"] == "wave_completed"
    assert client.get("/api/v1/waves", headers=f.auth(client, "picker")).status_code == 403
