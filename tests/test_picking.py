"""Waves, assignments and the picker's calls (what the headset dialog drives)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from server.db import transaction
from server.problems import Conflict, Forbidden, Invalid, Problem
from server.services import allocation, catalog, ledger, picking, waves
from server.services.allocation import Policy, Rule
from server.services.waves import WaveCriteria
from server.tables import (
    Assignment,
    AssignmentStatus,
    ExceptionKind,
    Location,
    Movement,
    MovementKind,
    Order,
    OrderStatus,
    PickException,
    PickLine,
    PickLineStatus,
    Serial,
    Sku,
    Stock,
    Wave,
    WaveStatus,
)
from tests import factories as f
from tests.factories import LOS_ANGELES

TODAY = dt.date(2026, 11, 26)
SHIP_BY = dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.UTC)


@pytest.fixture
def floor(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """LAX with six slots in zone A (walk order A-01-01 .. A-01-06), one in zone B and a
    staging location; three SKUs stocked; five allocated orders."""
    with transaction(sessions) as session:
        lax = f.warehouse(session, "LAX", country="US", at=LOS_ANGELES)
        catalog.create_location(
            session, lax, catalog.LocationSpec(code="B-01-01", zone="B", pick_sequence=500)
        )
        for code in ("CASE", "CABLE", "LAMP"):
            f.sku(session, code)
        f.stock(session, "LAX", "A-01-05", "CASE", 20)
        f.stock(session, "LAX", "A-01-02", "CABLE", 20)
        f.stock(session, "LAX", "B-01-01", "LAMP", 20)
        f.order(session, "O-1", [("CASE", 2), ("CABLE", 1)], priority=5, ship_by=SHIP_BY)
        f.order(session, "O-2", [("CABLE", 3)], priority=1, carrier="UPS", ship_by=SHIP_BY)
        f.order(session, "O-3", [("LAMP", 1), ("CASE", 1)], priority=3)
        f.order(session, "O-4", [("CASE", 1)], priority=5, ship_by=SHIP_BY + dt.timedelta(1))
        f.order(session, "O-5", [("CABLE", 1)], priority=9)
    with transaction(sessions) as session:
        for number in ("O-1", "O-2", "O-3", "O-4", "O-5"):
            allocation.allocate_order(
                session, number, policy=Policy(rules=(Rule.nearest,)), today=TODAY
            )
    return sessions


def release(floor: sessionmaker[Session], **criteria: object) -> int:
    with transaction(floor) as session:
        return waves.release_wave(session, "LAX", WaveCriteria(**criteria), actor="sup").id  # type: ignore[arg-type]


def walk(floor: sessionmaker[Session], wave_id: int) -> list[list[tuple[str, str]]]:
    """Each assignment of the wave as (order, location) in the order it is walked."""
    with transaction(floor) as session:
        wave = session.get_one(Wave, wave_id)
        return [
            [(line.order.number, line.location.code) for line in a.lines] for a in wave.assignments
        ]


def test_a_wave_batches_lines_into_bounded_assignments_in_walking_order(
    floor: sessionmaker[Session],
) -> None:
    wave = release(floor, lines_per_assignment=3)
    # urgent orders first (O-2, then O-3, O-1 ...), an order's lines stay together, and
    # each assignment is walked by pick sequence (A-01-02 before A-01-05 before B-01-01)
    assert walk(floor, wave) == [
        [("O-2", "A-01-02"), ("O-3", "A-01-05"), ("O-3", "B-01-01")],
        [("O-1", "A-01-02"), ("O-1", "A-01-05"), ("O-4", "A-01-05")],
        [("O-5", "A-01-02")],
    ]
    with transaction(floor) as session:
        wave_row = session.get_one(Wave, wave)
        assert [a.priority for a in wave_row.assignments] == [1, 5, 9]
        assert {a.staging_location.code for a in wave_row.assignments} == {"STAGE-1"}
        assert {o.status for o in session.scalars(select(Order))} == {OrderStatus.released}
    with pytest.raises(Conflict) as nothing:
        release(floor)
    assert nothing.value.code == "nothing_to_release"


def test_waves_by_cutoff_carrier_zone_and_priority(floor: sessionmaker[Session]) -> None:
    assert walk(floor, release(floor, carrier="UPS")) == [[("O-2", "A-01-02")]]
    assert walk(floor, release(floor, cutoff=SHIP_BY)) == [[("O-1", "A-01-02"), ("O-1", "A-01-05")]]
    assert walk(floor, release(floor, zone="B")) == [[("O-3", "B-01-01")]]
    with transaction(floor) as session:  # O-3 is only partly released so far
        o3 = session.scalar(select(Order).where(Order.number == "O-3"))
        assert o3 is not None and o3.status == OrderStatus.allocated
    assert walk(floor, release(floor, max_priority=5)) == [[("O-3", "A-01-05"), ("O-4", "A-01-05")]]
    assert walk(floor, release(floor, max_orders=1)) == [[("O-5", "A-01-02")]]


def test_picking_an_assignment_end_to_end(floor: sessionmaker[Session]) -> None:
    release(floor, lines_per_assignment=10)
    with transaction(floor) as session:
        assignment = picking.sign_on(session, "picker1", "LAX")
        assert assignment is not None and assignment.status == AssignmentStatus.in_progress
        number = assignment.id
        assert picking.sign_on(session, "picker1") is assignment  # resumes, not a new one
    with transaction(floor) as session:
        assert picking.sign_on(session, "picker2") is None  # one assignment, already taken

    picked = 0
    while True:
        with transaction(floor) as session:
            line = picking.next_open_line(session, number)
            if line is None:
                break
            result = picking.confirm_pick(
                session, line.id, line.quantity, "picker1", idempotency_token=f"t-{line.id}"
            )
            picked += line.quantity
            assert not result.replayed
    with transaction(floor) as session:
        staging = picking.complete_assignment(session, number, "picker1")
        assert staging.code == "STAGE-1"
        assert {o.status for o in session.scalars(select(Order))} == {OrderStatus.picked}
        assert session.get_one(Assignment, number).wave.status == WaveStatus.completed
        assert picking.complete_assignment(session, number, "picker1").code == "STAGE-1"
        at_staging = session.scalar(
            select(func.sum(Stock.quantity)).join(Stock.location).where(Location.code == "STAGE-1")
        )
        assert at_staging == picked == 10
        assert session.scalar(select(func.sum(Stock.reserved))) == 0
        moves = session.scalars(select(Movement).where(Movement.kind == MovementKind.pick)).all()
        assert sum(m.quantity for m in moves) == 10
        assert ledger.reconcile(session).consistent


def test_the_same_confirmation_twice_moves_stock_once(floor: sessionmaker[Session]) -> None:
    release(floor, lines_per_assignment=10)
    with transaction(floor) as session:
        number = picking.sign_on(session, "picker1").id  # type: ignore[union-attr]
        line_id = picking.next_open_line(session, number).id  # type: ignore[union-attr]

    def pick_count() -> int:
        with transaction(floor) as session:
            return (
                session.scalar(
                    select(func.count(Movement.id)).where(Movement.kind == MovementKind.pick)
                )
                or 0
            )

    # the headset sends its answer twice at the same moment (a retry racing a reconnect)
    barrier = threading.Barrier(2)
    results: list[picking.PickResult] = []
    errors: list[BaseException] = []

    def answer() -> None:
        try:
            barrier.wait()
            with transaction(floor) as session:
                line = session.get_one(PickLine, line_id)
                results.append(
                    picking.confirm_pick(
                        session, line_id, line.quantity, "picker1", idempotency_token="answer-1"
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=answer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(r.replayed for r in results) == [False, True]
    assert pick_count() == 1

    with transaction(floor) as session:  # and once more, later
        line = session.get_one(PickLine, line_id)
        again = picking.confirm_pick(
            session, line_id, line.quantity, "picker1", idempotency_token="answer-1"
        )
        assert again.replayed and again.line.status == PickLineStatus.picked
    with transaction(floor) as session, pytest.raises(Conflict) as other:
        picking.confirm_pick(session, line_id, 1, "picker1", idempotency_token="answer-2")
    assert other.value.code == "line_closed"
    assert pick_count() == 1


def test_wrong_quantity_other_picker_and_unfinished_assignment_are_refused(
    floor: sessionmaker[Session],
) -> None:
    release(floor, lines_per_assignment=3)  # the first assignment starts with O-2
    with transaction(floor) as session:
        number = picking.sign_on(session, "picker1").id  # type: ignore[union-attr]
        line = picking.next_open_line(session, number)
        assert line is not None and line.quantity == 3  # O-2's three cables come first
        with pytest.raises(Invalid) as wrong:
            picking.confirm_pick(session, line.id, 2, "picker1", idempotency_token="x")
        assert wrong.value.code == "quantity_mismatch"
        with pytest.raises(Forbidden):
            picking.confirm_pick(session, line.id, 3, "picker2", idempotency_token="y")
        with pytest.raises(Conflict) as unfinished:
            picking.complete_assignment(session, number, "picker1")
        assert unfinished.value.code == "lines_remaining"


def test_a_short_picks_what_is_there_and_opens_an_exception(
    floor: sessionmaker[Session],
) -> None:
    release(floor, lines_per_assignment=3)  # the first assignment starts with O-2
    with transaction(floor) as session:
        number = picking.sign_on(session, "picker1").id  # type: ignore[union-attr]
        line = picking.next_open_line(session, number)
        assert line is not None and line.quantity == 3
        result = picking.report_short(
            session, line.id, 1, "picker1", idempotency_token="s-1", note="only one left"
        )
        assert result.line.status == PickLineStatus.short and result.line.quantity_picked == 1
        assert result.exception is not None and result.exception.kind == ExceptionKind.short
        assert result.exception.quantity == 2
        replay = picking.report_short(session, line.id, 1, "picker1", idempotency_token="s-1")
        assert replay.replayed and replay.exception is None
    with transaction(floor) as session:
        assert session.scalar(select(func.count(PickException.id))) == 1
        cables = session.scalar(select(Stock).join(Stock.sku).where(Sku.code == "CABLE"))
        assert cables is not None
        # 20 received, 1 picked to staging; 5 reserved before, 3 for this line: 2 remain
        assert (cables.quantity, cables.reserved) == (19, 2)
        assert ledger.reconcile(session).consistent


def test_skipped_lines_come_back_after_the_open_ones(floor: sessionmaker[Session]) -> None:
    release(floor, lines_per_assignment=10)
    with transaction(floor) as session:
        number = picking.sign_on(session, "picker1").id  # type: ignore[union-attr]
        first = picking.next_open_line(session, number)
        assert first is not None
        picking.skip_line(session, first.id, "picker1")
        seen = []
        while (line := picking.next_open_line(session, number)) is not None:
            seen.append(line.id)
            picking.confirm_pick(
                session, line.id, line.quantity, "picker1", idempotency_token=str(line.id)
            )
        assert seen[-1] == first.id and seen.count(first.id) == 1
        damage = picking.report_exception(
            session, ExceptionKind.damage, "picker1", assignment_id=number, note="wet box"
        )
        assert damage.assignment_id == number
        assert picking.complete_assignment(session, number, "picker1").code == "STAGE-1"


def test_pickers_signing_on_at_once_never_share_an_assignment(
    floor: sessionmaker[Session],
) -> None:
    release(floor, lines_per_assignment=1)  # 7 lines: 7 assignments
    barrier = threading.Barrier(12)
    got: dict[str, int | None] = {}
    errors: list[BaseException] = []

    def sign_on(picker: str) -> None:
        try:
            barrier.wait()
            with transaction(floor) as session:
                assignment = picking.sign_on(session, picker, "LAX")
                got[picker] = assignment.id if assignment else None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sign_on, args=(f"p{n}",)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    numbers = [n for n in got.values() if n is not None]
    assert len(numbers) == 7 and len(set(numbers)) == 7
    assert list(got.values()).count(None) == 5


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: no row locks
def test_a_sign_on_passes_by_an_assignment_another_sign_on_is_claiming(
    floor: sessionmaker[Session],
) -> None:
    release(floor, lines_per_assignment=1)
    with transaction(floor) as claiming:  # another picker's sign-on, not committed yet
        most_urgent = claiming.scalars(
            select(Assignment.id)
            .where(Assignment.status == AssignmentStatus.ready)
            .order_by(Assignment.priority, Assignment.id)
            .limit(1)
            .with_for_update()
        ).one()
        with transaction(floor) as session:
            session.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail
            assignment = picking.sign_on(session, "p2", "LAX")
            assert assignment is not None and assignment.id != most_urgent


def test_an_order_on_the_floor_cannot_be_cancelled(floor: sessionmaker[Session]) -> None:
    release(floor, carrier="UPS")
    with transaction(floor) as session, pytest.raises(Conflict) as refused:
        allocation.cancel_order(session, "O-2")
    assert refused.value.code == "order_released"
    release(floor, zone="B")  # O-3 partly released: its lamp line is on the floor
    with transaction(floor) as session, pytest.raises(Conflict) as partly:
        allocation.cancel_order(session, "O-3")
    assert partly.value.code == "order_released"
    with transaction(floor) as session:
        assert allocation.cancel_order(session, "O-4").status == OrderStatus.cancelled


def test_what_the_dialog_announces_and_signing_off(floor: sessionmaker[Session]) -> None:
    release(floor, lines_per_assignment=3)
    with transaction(floor) as session:
        assignment = picking.sign_on(session, "picker1", "LAX")
        assert assignment is not None
        summary = picking.brief(session, assignment)
        assert (summary.lines, summary.units, summary.remaining) == (3, 5, 3)
        assert summary.staging_location == "STAGE-1"
        task = picking.next_task(session, assignment.id)
        assert task is not None
        assert (task.location, task.aisle, task.slot, task.quantity, task.sku) == (
            "A-01-02",
            "01",
            "02",
            3,
            "CABLE",
        )
        assert len(task.check_digits) in (2, 3) and task.remaining == 3
        # nothing picked yet: signing off gives the assignment back to the pool
        returned = picking.sign_off(session, "picker1")
        assert returned is not None and returned.status == AssignmentStatus.ready
        assert returned.picker is None
    with transaction(floor) as session:
        again = picking.sign_on(session, "picker2", "LAX")
        assert again is not None and again.id == assignment.id
        task = picking.next_task(session, again.id)
        assert task is not None
        picking.confirm_pick(session, task.line_id, task.quantity, "picker2", idempotency_token="a")
        # started: it stays with the picker, who resumes it at the next sign-on
        kept = picking.sign_off(session, "picker2")
        assert kept is not None and kept.picker == "picker2"
        resumed = picking.sign_on(session, "picker2")
        assert resumed is not None and resumed.id == assignment.id
        assert picking.brief(session, resumed).remaining == 2


def test_two_waves_released_at_once_never_share_a_line(floor: sessionmaker[Session]) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def release_all() -> None:
        barrier.wait()
        try:
            with transaction(floor) as session:
                wave = waves.release_wave(session, "LAX", WaveCriteria(), actor="sup")
                outcomes.append(wave.id)
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=release_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # the first takes every line; the second finds none left (even if it read them before)
    assert len(outcomes) == 2 and outcomes.count("nothing_to_release") == 1
    with transaction(floor) as session:
        lines = session.scalars(select(PickLine)).all()
        assert len(lines) == 7
        assert all(line.assignment_id is not None for line in lines)
        assert len({line.wave_id for line in lines}) == 1


PHONES = ("SN-0001-0012", "SN-0002-0012", "SN-0003-0013")


@pytest.fixture
def phone_floor(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """LAX with three serialised phones at A-01-03 (two end in 0012), one more at A-01-04,
    and an assignment for picker1: 2 phones from A-01-03, then 1 case."""
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=LOS_ANGELES)
        f.sku(session, "PHONE", serials=True)
        f.sku(session, "CASE")
        f.stock(session, "LAX", "A-01-03", "PHONE", 3, serials=PHONES)
        f.stock(session, "LAX", "A-01-04", "PHONE", 1, serials=("SN-0004-0014",))
        f.stock(session, "LAX", "A-01-05", "CASE", 5)
        f.order(session, "P-1", [("PHONE", 2), ("CASE", 1)])
    with transaction(sessions) as session:
        allocation.allocate_order(session, "P-1")
    release(sessions)
    with transaction(sessions) as session:
        assert picking.sign_on(session, "picker1", "LAX") is not None
    return sessions


def test_a_serial_is_named_by_the_last_digits_of_one_at_the_lines_slot(
    phone_floor: sessionmaker[Session],
) -> None:
    with transaction(phone_floor) as session:
        assignment = picking.current_assignment(session, "picker1")
        assert assignment is not None
        task = picking.next_task(session, assignment.id)
        assert task is not None and task.serialized and task.location == "A-01-03"
        line = task.line_id
        assert picking.match_serial(session, line, "0013", "picker1") == "SN-0003-0013"
        assert picking.match_serial(session, line, "00020012", "picker1") == "SN-0002-0012"
        for digits, code in [
            ("0014", "serial_unknown"),  # a phone, but at another slot
            ("9999", "serial_unknown"),
            ("0012", "serial_ambiguous"),
        ]:
            with pytest.raises(Problem) as refused:
                picking.match_serial(session, line, digits, "picker1")
            assert refused.value.code == code
            assert "SN-" not in refused.value.detail  # the refusal names no serial
        with pytest.raises(Forbidden):
            picking.match_serial(session, line, "0013", "picker2")

        serials = ["SN-0003-0013", "SN-0002-0012"]
        token = "headset:phones"
        picking.confirm_pick(session, line, 2, "picker1", idempotency_token=token, serials=serials)
        replay = picking.confirm_pick(
            session, line, 2, "picker1", idempotency_token=token, serials=serials
        )
        assert replay.replayed
    with transaction(phone_floor) as session:
        where = dict(
            session.execute(
                select(Serial.serial, Location.code).join(
                    Location, Location.id == Serial.location_id
                )
            ).all()
        )
        assert where == {
            "SN-0001-0012": "A-01-03",
            "SN-0002-0012": "STAGE-1",
            "SN-0003-0013": "STAGE-1",
            "SN-0004-0014": "A-01-04",
        }
        picks = session.scalars(select(Movement).where(Movement.kind == MovementKind.pick)).all()
        assert [(m.quantity, m.serials) for m in picks] == [(2, serials)]
        with pytest.raises(Conflict) as closed:
            picking.match_serial(session, line, "0012", "picker1")
        assert closed.value.code == "line_closed"
        case = picking.next_task(session, assignment.id)
        assert case is not None and not case.serialized
        with pytest.raises(Invalid) as plain:
            picking.match_serial(session, case.line_id, "0012", "picker1")
        assert plain.value.code == "serials_not_allowed"


def test_a_headset_gets_the_next_line_with_its_change_in_one_transaction(
    database_url: str,
) -> None:
    """Confirm, short and skip answer with the line after theirs, read in their own
    transaction: what `next_task` then reads, with one round of the database saved."""
    from sqlalchemy import event

    from server.db import Database, make_engine, make_session_factory
    from server.headset.work import DatabasePickWork

    lines = f.pick_floor(database_url)
    engine = make_engine(database_url)
    work = DatabasePickWork(Database(make_session_factory(engine)), "picker", token_version=0)
    transactions: list[object] = []
    event.listen(engine, "begin", transactions.append)
    try:
        assert work.current_assignment() is not None
        first = work.next_task()
        assert first is not None and first.check_digits == lines[0].check_digits

        transactions.clear()
        second = work.confirm_pick(first.line_id, first.quantity)
        assert len(transactions) == 1
        assert second == work.next_task()
        assert second is not None and second.check_digits == lines[1].check_digits
        assert second.picks_remaining == 2

        transactions.clear()
        third = work.skip(second.line_id)
        assert len(transactions) == 1
        assert third == work.next_task()
        assert third is not None and third.check_digits == lines[2].check_digits

        # the first answer again (a retry): applied once, and the same line comes next
        assert work.confirm_pick(first.line_id, first.quantity) == third

        transactions.clear()
        after_short = work.report_short(third.line_id, 1)
        assert len(transactions) == 1
        assert after_short == work.next_task()
        assert after_short is not None and after_short.line_id == second.line_id  # skipped
        assert work.confirm_pick(second.line_id, second.quantity) is None  # all done
        with transaction(make_session_factory(engine)) as session:
            picked = session.scalar(
                select(func.sum(Movement.quantity)).where(Movement.kind == MovementKind.pick)
            )
            assert picked == first.quantity + 1 + second.quantity
            assert ledger.reconcile(session).consistent
    finally:
        engine.dispose()
