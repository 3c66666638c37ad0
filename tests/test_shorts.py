"""What happens after a short pick: the missing units are found at other slots of the
warehouse (by the order line's lot and expiry rules) and picked in the same walk, or the
order line goes short; the books stay balanced, under concurrency and replays too — on
SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server import schemas
from server.api import views
from server.app import create_app
from server.db import Database, transaction
from server.problems import Conflict
from server.services import allocation, ledger, orders, picking, waves
from server.services.allocation import Policy, Rule
from server.services.picking import PENDING
from server.services.waves import WaveCriteria
from server.tables import (
    Allocation,
    ExceptionKind,
    Location,
    Lot,
    OrderLine,
    OrderStatus,
    PickException,
    PickLine,
    PickLineStatus,
    Stock,
    utcnow,
)
from tests import factories as f
from tests.conftest import make_settings
from tests.factories import LOS_ANGELES

NEAREST = Policy(rules=(Rule.nearest,))
TODAY = utcnow().date()  # a short re-allocates against today's date
DAY = dt.timedelta(days=1)


@pytest.fixture
def lax(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """LAX: slots A-01-01 .. A-01-06 walked in that order, STAGE-1; plain CABLE and LAMP,
    lot-controlled SERUM. Each test stocks what it needs."""
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=LOS_ANGELES)
        f.sku(session, "CABLE")
        f.sku(session, "LAMP")
        f.sku(session, "SERUM", lots=True)
    return sessions


def stock(sessions: sessionmaker[Session], *rows: tuple[str, str, int]) -> None:
    """(slot, SKU, quantity) received in this order: FIFO takes the first received."""
    for location, sku, quantity in rows:
        with transaction(sessions) as session:
            f.stock(session, "LAX", location, sku, quantity)


def floor(sessions: sessionmaker[Session], *numbers: str, per_assignment: int = 20) -> None:
    """Allocate the orders and release them as one wave."""
    with transaction(sessions) as session:
        for number in numbers:
            allocation.allocate_order(session, number, policy=NEAREST, today=TODAY)
    with transaction(sessions) as session:
        criteria = WaveCriteria(lines_per_assignment=per_assignment)
        waves.release_wave(session, "LAX", criteria, actor="sup")


def sign_on(sessions: sessionmaker[Session], picker: str = "picker1") -> int:
    with transaction(sessions) as session:
        assignment = picking.sign_on(session, picker, "LAX")
        assert assignment is not None
        return assignment.id


def picking_one_order(sessions: sessionmaker[Session], sku: str, quantity: int) -> tuple[int, int]:
    """Order O-1 for `quantity` of `sku` on the floor, signed on by picker1: (assignment,
    its first line)."""
    with transaction(sessions) as session:
        f.order(session, "O-1", [(sku, quantity)])
    floor(sessions, "O-1")
    assignment = sign_on(sessions)
    with transaction(sessions) as session:
        return assignment, next_line(session, assignment)[0]


def next_line(session: Session, assignment: int) -> tuple[int, str, str, int]:
    """(line id, slot, SKU, quantity) the dialog asks for next."""
    task = picking.next_task(session, assignment)
    assert task is not None
    return task.line_id, task.location, task.sku, task.quantity


def short(
    sessions: sessionmaker[Session], line_id: int, picked: int, picker: str = "picker1"
) -> picking.PickResult:
    with transaction(sessions) as session:
        return picking.report_short(
            session, line_id, picked, picker, idempotency_token=f"short-{line_id}"
        )


def pick_the_rest(sessions: sessionmaker[Session], assignment: int) -> list[tuple[str, str, int]]:
    """Confirm every line left, in the order the dialog offers them; complete."""
    walked = []
    with transaction(sessions) as session:
        while picking.next_task(session, assignment) is not None:
            line_id, location, sku, quantity = next_line(session, assignment)
            walked.append((location, sku, quantity))
            picking.confirm_pick(
                session, line_id, quantity, "picker1", idempotency_token=f"pick-{line_id}"
            )
        picking.complete_assignment(session, assignment, "picker1")
    return walked


def order_out(sessions: sessionmaker[Session], number: str) -> schemas.OrderOut:
    with transaction(sessions, write=False) as session:
        return views.order_view(session, orders.get_order(session, number))


def at(session: Session, location: str, sku: str, lot: str = "") -> tuple[int, int]:
    """(on hand, reserved) at one slot."""
    row = session.execute(
        select(Stock.quantity, Stock.reserved)
        .join(Location, Location.id == Stock.location_id)
        .join(Stock.sku)
        .where(Location.code == location, f.catalog.Sku.code == sku, Stock.lot == lot)
    ).one_or_none()
    return (row[0], row[1]) if row else (0, 0)


def assert_books_balance(session: Session) -> None:
    """Stock equals the ledger; every reserved unit is held by exactly one pending pick
    line; an allocation is what its lines picked plus what they still hold; an order line
    is allocated what its allocations say, and allocated plus short never exceed it."""
    assert ledger.reconcile(session).consistent
    held: dict[tuple[int, int, str], int] = defaultdict(int)
    by_allocation: dict[int, int] = defaultdict(int)
    for line in session.scalars(select(PickLine)):
        pending = line.status in PENDING
        if pending:
            held[(line.location_id, line.sku_id, line.lot)] += line.quantity
        by_allocation[line.allocation_id] += line.quantity if pending else line.quantity_picked
    reserved = {
        (row.location_id, row.sku_id, row.lot): row.reserved
        for row in session.scalars(select(Stock).where(Stock.reserved > 0))
    }
    assert reserved == dict(held)
    allocated: dict[int, int] = defaultdict(int)
    for row in session.scalars(select(Allocation)):
        assert row.quantity == by_allocation[row.id]
        allocated[row.order_line_id] += row.quantity
    for order_line in session.scalars(select(OrderLine)):
        assert order_line.quantity_allocated == allocated[order_line.id]
        assert order_line.quantity_allocated + order_line.quantity_short <= order_line.quantity


def test_a_short_is_made_up_at_other_slots_in_the_walk(lax: sessionmaker[Session]) -> None:
    # CABLE was received at A-01-02, then A-01-05, then A-01-01 (FIFO order)
    stock(lax, ("A-01-02", "CABLE", 10), ("A-01-05", "CABLE", 2), ("A-01-01", "CABLE", 10))
    stock(lax, ("A-01-03", "LAMP", 5))
    with transaction(lax) as session:
        f.order(session, "O-1", [("CABLE", 4), ("LAMP", 1)])
    floor(lax, "O-1")
    assignment = sign_on(lax)
    with transaction(lax) as session:
        first = next_line(session, assignment)
        assert first[1:] == ("A-01-02", "CABLE", 4)

    result = short(lax, first[0], 1)  # one cable in the slot: three missing

    # FIFO: two from A-01-05 (further along the walk), one from A-01-01 (behind the
    # picker); never from A-01-02, which came up short
    found = sorted((line.location.code, line.quantity) for line in result.substitutes)
    assert found == [("A-01-01", 1), ("A-01-05", 2)]
    assert result.remaining == 3
    assert result.exception is not None and result.exception.quantity == 3
    assert "2 re-allocated to A-01-05" in result.exception.note
    assert "1 re-allocated to A-01-01" in result.exception.note
    assert "books still show 9 CABLE at A-01-02" in result.exception.note
    with transaction(lax) as session:
        assert at(session, "A-01-05", "CABLE") == (2, 2)
        assert at(session, "A-01-01", "CABLE") == (10, 1)
        assert at(session, "A-01-02", "CABLE") == (9, 0)
        assert_books_balance(session)

    # the walk goes on forward (the lamp, then A-01-05) and comes back for A-01-01 last
    assert pick_the_rest(lax, assignment) == [
        ("A-01-03", "LAMP", 1),
        ("A-01-05", "CABLE", 2),
        ("A-01-01", "CABLE", 1),
    ]
    out = order_out(lax, "O-1")
    assert out.status == OrderStatus.picked
    assert [(x.quantity_allocated, x.quantity_short) for x in out.lines] == [(4, 0), (1, 0)]
    with transaction(lax) as session:
        assert at(session, "STAGE-1", "CABLE") == (4, 0)
        assert_books_balance(session)


def test_units_found_nowhere_make_the_order_short(lax: sessionmaker[Session]) -> None:
    stock(lax, ("A-01-02", "CABLE", 4), ("A-01-04", "CABLE", 3), ("A-01-05", "LAMP", 2))
    with transaction(lax) as session:
        f.order(session, "O-1", [("CABLE", 4), ("LAMP", 2)])
        f.order(session, "O-2", [("CABLE", 2)])  # takes two of A-01-04's three
    floor(lax, "O-1", "O-2", per_assignment=2)
    assignment = sign_on(lax)  # O-1's two lines
    with transaction(lax) as session:
        cable = next_line(session, assignment)
        assert cable[1:] == ("A-01-02", "CABLE", 4)

    # nothing picked; A-01-04 has one unit to spare, three are found nowhere
    result = short(lax, cable[0], 0)
    assert [(x.location.code, x.quantity) for x in result.substitutes] == [("A-01-04", 1)]
    assert result.exception is not None
    assert "3 found at no other slot: order O-1 is short 3 CABLE" in result.exception.note
    out = order_out(lax, "O-1")
    assert out.status == OrderStatus.released  # still on the floor
    assert [(x.quantity_allocated, x.quantity_short) for x in out.lines] == [(1, 3), (2, 0)]
    assert [(a.line, a.quantity) for a in out.allocations] == [(1, 1), (2, 2)]
    with transaction(lax) as session:
        assert_books_balance(session)

    # the lamp slot is empty too: its whole allocation goes, down to 0
    with transaction(lax) as session:
        lamp = next_line(session, assignment)
        assert lamp[1:] == ("A-01-04", "CABLE", 1)  # the substitute comes first in the walk
        picking.confirm_pick(session, lamp[0], 1, "picker1", idempotency_token="t")
        lamp = next_line(session, assignment)
        assert lamp[1:] == ("A-01-05", "LAMP", 2)
    short(lax, lamp[0], 0)
    assert pick_the_rest(lax, assignment) == []
    out = order_out(lax, "O-1")
    assert out.status == OrderStatus.short
    assert [(x.quantity_allocated, x.quantity_short) for x in out.lines] == [(1, 3), (0, 2)]
    assert [(a.line, a.quantity) for a in out.allocations] == [(1, 1), (2, 0)]
    with transaction(lax) as session:
        assert session.scalar(select(func.count(PickException.id))) == 2
        assert_books_balance(session)
        shorts, _total = orders.list_orders(session, status=OrderStatus.short, limit=10, offset=0)
        assert [o.number for o in shorts] == ["O-1"]


def test_reallocation_keeps_the_order_lines_lot_and_expiry(lax: sessionmaker[Session]) -> None:
    with transaction(lax) as session:
        for location, lot, expiry, quantity in (
            ("A-01-01", "A", TODAY + 100 * DAY, 5),
            ("A-01-02", "GONE", TODAY - DAY, 10),  # expired
            ("A-01-03", "SOON", TODAY + 5 * DAY, 10),  # too soon for FRESH
            ("A-01-04", "LATE", TODAY + 60 * DAY, 3),
            ("A-01-05", "B", TODAY + 200 * DAY, 2),
            ("A-01-06", "B", TODAY + 200 * DAY, 5),
        ):
            f.stock(session, "LAX", location, "SERUM", quantity, lot=lot, expiry=expiry)
        f.order(
            session,
            "FRESH",
            [schemas.OrderLineIn(sku="SERUM", quantity=3, min_expiry=TODAY + 30 * DAY)],
        )
        f.order(session, "NAMED", [schemas.OrderLineIn(sku="SERUM", quantity=2, lot="B")])
    floor(lax, "FRESH", "NAMED")
    assignment = sign_on(lax)
    with transaction(lax) as session:
        fresh = next_line(session, assignment)
        assert fresh[1:] == ("A-01-04", "SERUM", 3)  # FEFO: LATE is the first fresh enough

    # neither the expired lot nor the one expiring too soon: lot A, behind the picker
    result = short(lax, fresh[0], 0)
    assert [(x.location.code, x.lot, x.quantity) for x in result.substitutes] == [
        ("A-01-01", "A", 3)
    ]
    with transaction(lax) as session:
        named = next_line(session, assignment)
        assert named[1:] == ("A-01-05", "SERUM", 2)
    # the named lot only, though lot A expires first
    result = short(lax, named[0], 1)
    assert [(x.location.code, x.lot, x.quantity) for x in result.substitutes] == [
        ("A-01-06", "B", 1)
    ]
    assert pick_the_rest(lax, assignment) == [
        ("A-01-06", "SERUM", 1),
        ("A-01-01", "SERUM", 3),
    ]
    with transaction(lax) as session:
        assert at(session, "A-01-02", "SERUM", "GONE") == (10, 0)
        assert at(session, "A-01-03", "SERUM", "SOON") == (10, 0)
        lots = {lot: expiry for lot, expiry in session.execute(select(Lot.number, Lot.expiry))}
        staged = session.execute(
            select(Stock.lot, Stock.quantity)
            .join(Location, Location.id == Stock.location_id)
            .where(Location.code == "STAGE-1")
            .order_by(Stock.lot)
        ).all()
        assert [tuple(row) for row in staged] == [("A", 3), ("B", 2)]
        assert all(lots[lot] >= TODAY + 30 * DAY for lot, _ in staged)
        assert_books_balance(session)
    assert order_out(lax, "FRESH").status == order_out(lax, "NAMED").status == OrderStatus.picked


def test_a_slot_that_came_up_short_is_not_tried_again(lax: sessionmaker[Session]) -> None:
    stock(lax, ("A-01-02", "CABLE", 5), ("A-01-03", "CABLE", 5))
    assignment, line_id = picking_one_order(lax, "CABLE", 4)
    first = short(lax, line_id, 0)
    assert [(x.location.code, x.quantity) for x in first.substitutes] == [("A-01-03", 4)]
    # A-01-02 still shows five on the books, but that is where the first short was
    second = short(lax, first.substitutes[0].id, 1)
    assert second.substitutes == ()
    assert pick_the_rest(lax, assignment) == []
    out = order_out(lax, "O-1")
    assert (out.status, out.lines[0].quantity_allocated, out.lines[0].quantity_short) == (
        OrderStatus.short,
        1,
        3,
    )
    with transaction(lax) as session:
        assert_books_balance(session)


def test_concurrent_shorts_and_orders_never_over_reserve(lax: sessionmaker[Session]) -> None:
    """Eight pickers short their lines (nothing found at their slots) while eight new
    orders are allocated, all at once, each in its own transaction (retried on a
    deadlock as the server does). Every unit stays reserved at most once."""
    slots = ("A-01-01", "A-01-02", "A-01-03", "A-01-04", "A-01-05", "A-01-06")
    stock(lax, *((slot, "CABLE", 5) for slot in slots))  # 30 units
    with transaction(lax) as session:
        for n in range(10):
            f.order(session, f"ON-{n}", [("CABLE", 2)])  # 20 reserved, on the floor
        for n in range(8):
            f.order(session, f"NEW-{n}", [("CABLE", 3)])  # race for what is left
    floor(lax, *(f"ON-{n}" for n in range(10)), per_assignment=1)
    pickers = [f"p{n}" for n in range(8)]
    lines = {}
    for picker in pickers:
        assignment = sign_on(lax, picker)
        with transaction(lax) as session:
            lines[picker] = next_line(session, assignment)[0]

    db = Database(lax)
    shorts = [
        partial(db.run, picking.report_short, lines[p], 0, p, idempotency_token=p) for p in pickers
    ]
    allocations = [
        partial(db.run, allocation.allocate_order, f"NEW-{n}", policy=NEAREST, today=TODAY)
        for n in range(8)
    ]
    _results, failures = f.at_once(*shorts, *allocations)
    assert failures == []

    with transaction(lax) as session:
        assert_books_balance(session)
        on_hand, reserved = f.reserved(session, "CABLE")
        assert on_hand == 30 and reserved <= 30
        shorted = session.scalars(select(PickLine).where(PickLine.id.in_(lines.values()))).all()
        assert {line.status for line in shorted} == {PickLineStatus.short}
        for line in shorted:  # a substitute is never at the slot that came up short
            others = session.scalars(
                select(PickLine).where(
                    PickLine.assignment_id == line.assignment_id, PickLine.id != line.id
                )
            ).all()
            assert all(other.location_id != line.location_id for other in others)
        assert session.scalar(select(func.count(PickException.id))) == 8


def test_a_replayed_short_is_applied_once(lax: sessionmaker[Session]) -> None:
    stock(lax, ("A-01-02", "CABLE", 3), ("A-01-04", "CABLE", 10))
    _assignment, line_id = picking_one_order(lax, "CABLE", 3)

    def answer() -> picking.PickResult:  # the headset's retry racing its first answer
        with transaction(lax) as session:
            return picking.report_short(session, line_id, 1, "picker1", idempotency_token="s")

    results, errors = f.at_once(answer, answer)
    assert errors == []
    assert sorted(r.replayed for r in results) == [False, True]
    assert sorted(len(r.substitutes) for r in results) == [0, 1]

    with transaction(lax) as session:  # and once more, later
        again = picking.report_short(session, line_id, 1, "picker1", idempotency_token="s")
        assert again.replayed and again.exception is None and again.substitutes == ()
    with transaction(lax) as session, pytest.raises(Conflict) as other:
        picking.report_short(session, line_id, 0, "picker1", idempotency_token="other")
    assert other.value.code == "line_closed"
    with transaction(lax) as session:
        assert session.scalar(select(func.count(PickException.id))) == 1
        assert session.scalar(select(func.count(PickLine.id))) == 2
        assert at(session, "A-01-04", "CABLE") == (10, 2)
        assert at(session, "STAGE-1", "CABLE") == (1, 0)
        assert_books_balance(session)


def test_damage_leaves_the_line_open_and_a_short_finds_sound_units(
    lax: sessionmaker[Session],
) -> None:
    stock(lax, ("A-01-02", "CABLE", 3), ("A-01-06", "CABLE", 3))
    assignment, line_id = picking_one_order(lax, "CABLE", 3)
    with transaction(lax) as session:
        damage = picking.report_exception(
            session, ExceptionKind.damage, "picker1", line_id=line_id, note="two crushed"
        )
        assert damage.pick_line_id == line_id
        assert session.get_one(PickLine, line_id).status == PickLineStatus.open
        assert next_line(session, assignment)[0] == line_id  # still the line to pick
    short(lax, line_id, 1)  # the sound one; the two crushed stay on the books here
    assert pick_the_rest(lax, assignment) == [("A-01-06", "CABLE", 2)]
    assert order_out(lax, "O-1").status == OrderStatus.picked
    with transaction(lax) as session:
        assert at(session, "A-01-02", "CABLE") == (2, 0)
        assert_books_balance(session)


@pytest.fixture
def api(lax: sessionmaker[Session], database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on the same database as `lax`, with one user per role."""
    app = create_app(make_settings(database_url, tmp_path))
    f.seed_users(app.state.sessions)
    with TestClient(app) as client:
        yield client


def test_the_short_route_returns_the_substitute_lines(
    lax: sessionmaker[Session], api: TestClient
) -> None:
    stock(lax, ("A-01-02", "CABLE", 5), ("A-01-03", "CABLE", 2))
    with transaction(lax) as session:
        f.order(session, "O-1", [("CABLE", 4)])
    floor(lax, "O-1")
    picker = f.auth(api, "picker")
    signed = api.post("/api/v1/assignments/sign-on", json={"warehouse": "LAX"}, headers=picker)
    assert signed.status_code == 200, signed.text
    line = signed.json()["lines"][0]
    answer = {"picked": 0, "token": "api-short"}
    response = api.post(f"/api/v1/pick-lines/{line['id']}/short", json=answer, headers=picker)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(x["location"], x["quantity"], x["status"]) for x in body["substitutes"]] == [
        ("A-01-03", 2, "open")
    ]
    assert body["remaining"] == 1
    order = api.get("/api/v1/orders/O-1", headers=f.auth(api, "supervisor")).json()
    assert [(x["quantity_allocated"], x["quantity_short"]) for x in order["lines"]] == [(2, 2)]
