"""The ledger as a library: stock never negative, reconciliation catches tampering, and the
database itself refuses to change a recorded movement."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

import server.db
from server import schemas
from server.db import Database, make_engine, make_session_factory, transaction
from server.problems import InsufficientStock
from server.services import catalog, inventory, ledger
from server.tables import Movement, MovementKind, Stock
from tests.conftest import PG_ADMIN


@pytest.fixture
def db(database_url: str) -> Database:
    return _stocked(database_url)


@pytest.fixture
def pg_db(pg_url: str) -> Database:
    return _stocked(pg_url)


def _stocked(database_url: str) -> Database:
    """Five TEA at A-1 of FRA, nothing at A-2."""
    engine = make_engine(database_url)
    database = Database(make_session_factory(engine))
    with transaction(database.sessions) as session:
        warehouse = catalog.create_warehouse(
            session, code="FRA", name="Frankfurt", country="DE", timezone="Europe/Berlin"
        )
        for code in ("A-1", "A-2"):
            catalog.create_location(session, warehouse, catalog.LocationSpec(code=code))
        catalog.create_sku(session, code="TEA", description="Green tea")
        inventory.receive(
            session,
            schemas.ReceiptCreate(
                warehouse="FRA",
                lines=[schemas.ReceiptLineIn(sku="TEA", location="A-1", quantity=5)],
            ),
            actor="test",
        )
    return database


def _move(quantity: int) -> schemas.MoveCreate:
    return schemas.MoveCreate(
        warehouse="FRA", sku="TEA", from_location="A-1", to_location="A-2", quantity=quantity
    )


def test_a_take_larger_than_the_stock_fails_and_leaves_no_trace(db: Database) -> None:
    with pytest.raises(InsufficientStock):
        db.run(inventory.move, _move(6), actor="test")
    assert db.run(ledger.reconcile).consistent
    assert db.run(lambda s: s.query(Movement).count()) == 1


def test_reserved_units_cannot_be_moved_away(db: Database) -> None:
    db.run(lambda s: s.execute(update(Stock).values(reserved=4)))
    with pytest.raises(InsufficientStock):
        db.run(inventory.move, _move(2), actor="test")
    db.run(inventory.move, _move(1), actor="test")


def test_reconcile_finds_stock_changed_behind_the_ledgers_back(db: Database) -> None:
    db.run(lambda s: s.execute(update(Stock).values(quantity=Stock.quantity + 1)))
    result = db.run(ledger.reconcile)
    assert not result.consistent
    [mismatch] = result.discrepancies
    assert (mismatch.ledger, mismatch.stock) == (5, 6)


@pytest.mark.parametrize(
    "statement", ["UPDATE movements SET quantity = 99", "DELETE FROM movements"]
)
def test_the_database_refuses_to_rewrite_history(db: Database, statement: str) -> None:
    with pytest.raises(DBAPIError, match="immutable"):
        db.run(lambda s: s.execute(text(statement)))
    assert db.run(lambda s: s.query(Movement.quantity).scalar()) == 5


def test_the_trace_of_a_unit_or_a_lot_is_every_movement_that_touched_it(db: Database) -> None:
    def receive_watches(session: Session) -> None:
        catalog.create_sku(session, code="WATCH", description="Watch", serialized=True)
        lines = [
            schemas.ReceiptLineIn(sku="WATCH", location="A-1", quantity=2, serials=["W-1", "W-10"])
        ]
        inventory.receive(session, schemas.ReceiptCreate(warehouse="FRA", lines=lines), actor="r")

    db.run(receive_watches)
    move = schemas.MoveCreate(
        warehouse="FRA",
        sku="WATCH",
        from_location="A-1",
        to_location="A-2",
        quantity=1,
        serials=["W-10"],
        reason="reslot",
    )
    db.run(inventory.move, move, actor="m")

    def trace(session: Session, **unit: str) -> list[tuple[str, str]]:
        found, _total = inventory.list_movements(
            session, warehouse=None, sku="WATCH", location=None, limit=10, offset=0, **unit
        )
        return [(m.actor, m.reason) for m in found]

    # W-1 is not a prefix match for W-10: the serial is matched whole
    assert db.run(trace, serial="W-1") == [("r", "received")]
    assert db.run(trace, serial="W-10") == [("m", "reslot"), ("r", "received")]
    assert db.run(trace, serial="W-") == []


def _close_every_connection_of(database: Database) -> None:
    """What a PostgreSQL restart does to the server's pooled connections."""
    name = database.run(lambda session: session.connection().engine.url.database)
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )


def _moves(database: Database) -> int:
    return database.run(lambda s: s.query(Movement).filter_by(kind=MovementKind.move).count())


def test_a_move_on_a_connection_closed_moments_ago_is_done_once_on_a_fresh_one(
    pg_db: Database,
) -> None:
    """Pooled connections are pinged only after sitting idle (`IDLE_BEFORE_PING_S`): one
    closed moments ago fails its first statement, before any commit, and the unit of work
    runs again, once, on a new connection."""
    pg_db.run(inventory.move, _move(1), actor="test")
    _close_every_connection_of(pg_db)
    pg_db.run(inventory.move, _move(1), actor="test")
    assert _moves(pg_db) == 2
    assert pg_db.run(ledger.reconcile).consistent


def test_a_connection_closed_while_idle_is_replaced_before_any_work_uses_it(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_db.run(inventory.move, _move(1), actor="test")
    monkeypatch.setattr(server.db, "IDLE_BEFORE_PING_S", 0.0)
    _close_every_connection_of(pg_db)
    failed: list[BaseException | None] = []
    engine = pg_db.run(lambda session: session.get_bind())
    event.listen(engine, "handle_error", lambda context: failed.append(context.original_exception))
    pg_db.run(inventory.move, _move(1), actor="test")
    assert failed == []  # no statement met the closed connection: the ping found it first
    assert _moves(pg_db) == 2


def test_moves_either_way_between_two_locations_at_once_never_deadlock(pg_db: Database) -> None:
    """On PostgreSQL a move is one statement (`ledger._record_in_one_statement`), whose
    parts PostgreSQL may run in any order: it locks both stock rows in location order
    first, so a move A-1 → A-2 and one A-2 → A-1 at the same moment cannot each hold the
    row the other waits for. A deadlock would be retried unseen: the engine's errors are
    watched instead."""
    pg_db.run(inventory.move, _move(2), actor="test")  # both rows exist: A-1 3, A-2 2
    errors: list[str] = []
    engine = pg_db.run(lambda session: session.get_bind())
    event.listen(
        engine,
        "handle_error",
        lambda context: errors.append(getattr(context.original_exception, "sqlstate", "?")),
    )

    def back_and_forth(first: str, second: str) -> None:
        for _ in range(150):
            for source, target in ((first, second), (second, first)):
                body = _move(1).model_copy(update={"from_location": source, "to_location": target})
                pg_db.run(inventory.move, body, actor="test")

    with ThreadPoolExecutor(4) as pool:
        ways = [pool.submit(back_and_forth, *pair) for pair in [("A-1", "A-2"), ("A-2", "A-1")] * 2]
        for way in ways:
            way.result()
    assert errors == []
    assert _moves(pg_db) == 1 + 4 * 300
    assert pg_db.run(ledger.reconcile).consistent


def test_a_move_refused_in_one_statement_leaves_no_trace(pg_db: Database) -> None:
    """The take matched nothing, so the put and the movement, which select from it, did
    nothing either: the stock rows and the ledger are as they were."""
    with pytest.raises(InsufficientStock, match="6 requested but 5 available"):
        pg_db.run(inventory.move, _move(6), actor="test")
    rows = pg_db.run(lambda s: {(r.location_id, r.quantity) for r in s.scalars(select(Stock))})
    assert sorted(quantity for _, quantity in rows) == [5]
    assert _moves(pg_db) == 0


# ---- the same units of work on the event loop (`Database.write_brief`, PostgreSQL) ----


_WAYS = [("A-1", "A-2"), ("A-2", "A-1")]


@pytest.fixture
async def loop_db(pg_db: Database) -> AsyncIterator[Database]:
    await pg_db.start()
    yield pg_db
    await pg_db.stop()


async def test_moves_on_the_event_loop_at_once_never_deadlock_nor_go_negative(
    loop_db: Database,
) -> None:
    """Sixteen movers on one event loop, moving both ways between the two locations and
    asking for more than there is: each move is applied whole or refused, nothing is
    retried behind a deadlock, and the stock still equals the ledger."""
    errors: list[str] = []

    def watch(context: ExceptionContext) -> None:
        errors.append(getattr(context.original_exception, "sqlstate", "?"))

    event.listen(Engine, "handle_error", watch)  # the loop's engine is the Database's own
    done: Counter[str] = Counter()

    async def mover(source: str, target: str, quantity: int) -> None:
        for _ in range(40):
            body = _move(quantity).model_copy(
                update={"from_location": source, "to_location": target}
            )
            try:
                await loop_db.write_brief(inventory.move, body, actor="test")
                done["moved"] += 1
            except InsufficientStock:
                done["refused"] += 1

    try:
        await asyncio.gather(*(mover(*way, 1 + n % 3) for n, way in enumerate(_WAYS * 8)))
    finally:
        event.remove(Engine, "handle_error", watch)
    assert errors == []
    assert done["moved"] + done["refused"] == 16 * 40
    assert done["moved"] == _moves(loop_db) > 0
    assert done["refused"] > 0
    assert loop_db.run(ledger.reconcile).consistent
    assert sum(loop_db.run(lambda s: list(s.scalars(select(Stock.quantity))))) == 5


async def test_work_on_the_event_loop_commits_once_and_publishes_only_what_commits(
    loop_db: Database,
) -> None:
    """The loop's sessions are the app's sessions: their listeners (the events published
    on commit) hear a commit once, a rollback not at all, and a unit of work retried after
    a serialization failure once, for the attempt that committed."""
    committed: list[int] = []
    event.listen(loop_db.sessions, "after_commit", lambda _session: committed.append(1))
    attempts: list[int] = []

    def refused(session: Session) -> None:
        inventory.move(session, _move(1), actor="test")
        raise InsufficientStock("changed my mind")

    def retried(session: Session) -> int:
        attempts.append(1)
        recorded = inventory.move(session, _move(1), actor="test")
        if len(attempts) == 1:
            raise OperationalError("COMMIT", {}, psycopg.errors.SerializationFailure())
        return recorded.movement.quantity

    with pytest.raises(InsufficientStock):
        await loop_db.write_brief(refused)
    assert committed == []
    assert await loop_db.write_brief(retried) == 1
    assert attempts == [1, 1]
    assert committed == [1]
    assert _moves(loop_db) == 1  # the refused move left nothing, the retried one is once


async def test_a_move_on_the_event_loop_after_a_database_restart_is_done_once(
    loop_db: Database,
) -> None:
    await loop_db.write_brief(inventory.move, _move(1), actor="test")
    _close_every_connection_of(loop_db)
    await loop_db.write_brief(inventory.move, _move(1), actor="test")
    assert _moves(loop_db) == 2
    assert loop_db.run(ledger.reconcile).consistent
