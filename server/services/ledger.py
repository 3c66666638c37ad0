"""The stock ledger: every change of stock is one immutable `Movement`, applied together
with its effect on the `stock` rows in the same transaction.

Stock can never go negative: a take is a single conditional UPDATE that only matches while
enough unreserved units are on hand, so two pickers confirming the last unit at once get
exactly one success. Rows are touched in location order so concurrent movements cannot
deadlock each other.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from sqlalchemy import TextClause, bindparam, func, insert, select, text, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.problems import Conflict, InsufficientStock, Invalid
from server.tables import Location, Movement, MovementKind, Serial, Stock, utcnow


class SkuLike(Protocol):
    """What the ledger needs of a SKU: a `Sku` row or a cached `SkuRef`."""

    @property
    def id(self) -> int: ...
    @property
    def code(self) -> str: ...
    @property
    def lot_controlled(self) -> bool: ...
    @property
    def serialized(self) -> bool: ...


class LocationLike(Protocol):
    """What the ledger needs of a location: a `Location` row or a cached `LocationRef`."""

    @property
    def id(self) -> int: ...


@dataclass(frozen=True)
class Change:
    """One movement to record: `quantity` of `sku`/`lot` from one location to another.
    The SKU and the locations may be rows or the cached snapshots of `server.masterdata`
    (the ledger uses their ids and the SKU's lot and serial rules only)."""

    sku: SkuLike
    quantity: int
    from_location: LocationLike | None
    to_location: LocationLike | None
    kind: MovementKind
    reason: str
    lot: str = ""
    serials: Sequence[str] = ()
    reference: str | None = None
    from_reserved: bool = False  # a pick consumes units reserved for it


def record(session: Session, change: Change, *, actor: str) -> Movement:
    """Apply one change to stock and append it to the ledger."""
    return record_all(session, [change], actor=actor)[0]


def record_all(session: Session, changes: Sequence[Change], *, actor: str) -> list[Movement]:
    """Apply several changes atomically (all or none), stock rows in a fixed order."""
    for change in changes:
        _validate(change)
    session.flush()  # what the caller added goes first (a no-op when there is nothing)
    if len(changes) == 1 and _in_one_statement(session, changes[0]):
        return [_record_in_one_statement(session, changes[0], actor=actor)]
    steps: list[tuple[int, int, str, int, bool]] = []  # (location, sku, lot, delta, reserved)
    for change in changes:
        if change.from_location is not None:
            steps.append(
                (
                    change.from_location.id,
                    change.sku.id,
                    change.lot,
                    -change.quantity,
                    change.from_reserved,
                )
            )
        if change.to_location is not None:
            steps.append((change.to_location.id, change.sku.id, change.lot, change.quantity, False))
    for location_id, sku_id, lot, delta, reserved in sorted(steps):
        if delta < 0:
            _take(session, location_id, sku_id, lot, -delta, from_reserved=reserved)
        else:
            _put(session, location_id, sku_id, lot, delta)
    for change in changes:
        if change.sku.serialized:
            _move_serials(session, change)
    session.flush()  # the serials' rows, so a conflict among them surfaces here
    return _append(session, changes, actor=actor)


# Through the table, not the unit of work: a movement is written once and never changed,
# so the ORM's change tracking would only cost (a tenth of a stock move's CPU).
_APPEND = insert(Movement).returning(Movement.id, sort_by_parameter_order=True)


def _append(session: Session, changes: Sequence[Change], *, actor: str) -> list[Movement]:
    """The changes' movements, inserted in order; returned as (transient) rows with ids."""
    now = utcnow()
    rows = [_movement_row(change, actor, now) for change in changes]
    ids = session.connection().execute(_APPEND, rows).scalars().all()
    return [Movement(id=id_, **row) for id_, row in zip(ids, rows, strict=True)]


def _movement_row(change: Change, actor: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "created_at": now,
        "actor": actor,
        "kind": change.kind,
        "reason": change.reason,
        "reference": change.reference,
        "sku_id": change.sku.id,
        "lot": change.lot,
        "serials": list(change.serials),
        "from_location_id": change.from_location.id if change.from_location else None,
        "to_location_id": change.to_location.id if change.to_location else None,
        "quantity": change.quantity,
    }


def _in_one_statement(session: Session, change: Change) -> bool:
    """A change that takes units from a location, of a SKU without serials, on PostgreSQL:
    a move, a pick confirmation, a loss. Serials, receipts, several changes at once and
    SQLite go statement by statement."""
    return (
        change.from_location is not None
        and not change.sku.serialized
        and session.connection().dialect.name == "postgresql"
    )


def _record_in_one_statement(session: Session, change: Change, *, actor: str) -> Movement:
    """The take, the put and the movement's insert as one statement, on PostgreSQL: a
    third of the statements, so less of the server's and the database's CPU for each
    move. The guarantees are those of the statements one by one:

    - `locked` locks the SKU's rows at both locations in location order first, as the
      statements one by one do (so two moves between the same two locations, either way
      round, cannot deadlock);
    - `take` is the same conditional UPDATE, on the latest row (READ COMMITTED re-checks
      its condition after the lock): it matches only while enough units are on hand;
    - the put and the movement select from `take`: when it matched nothing, nothing is
      put and nothing is recorded, and the statement returns no row."""
    assert change.from_location is not None
    now = utcnow()
    row = _movement_row(change, actor, now)
    statement = _ONE_STATEMENT[(change.from_reserved, change.to_location is not None)]
    movement_id = session.connection().execute(statement, row).scalar()
    if movement_id is None:
        _refuse_take(session, change.from_location.id, change.sku.id, change.lot, change.quantity)
    return Movement(id=movement_id, **row)


def _one_statement(*, from_reserved: bool, put: bool) -> TextClause:
    take_set = "quantity = stock.quantity - :quantity, updated_at = :created_at"
    enough = "stock.quantity - stock.reserved >= :quantity"
    if from_reserved:
        take_set += ", reserved = stock.reserved - :quantity"
        enough = "stock.reserved >= :quantity"
    put_cte = """,
    put AS (
        INSERT INTO stock (location_id, sku_id, lot, quantity, reserved, updated_at)
        SELECT :to_location_id, :sku_id, :lot, :quantity, 0, :created_at FROM take
        ON CONFLICT (location_id, sku_id, lot) DO UPDATE
        SET quantity = stock.quantity + excluded.quantity, updated_at = excluded.updated_at
    )"""
    statement = text(
        f"""
        WITH locked AS (
            SELECT location_id FROM stock
            WHERE sku_id = :sku_id AND lot = :lot
              AND location_id IN (:from_location_id, :to_location_id)
            ORDER BY location_id
            FOR UPDATE
        ),
        take AS (
            UPDATE stock SET {take_set}
            FROM locked
            WHERE locked.location_id = :from_location_id
              AND stock.location_id = :from_location_id AND stock.sku_id = :sku_id
              AND stock.lot = :lot AND {enough}
            RETURNING stock.id
        ){put_cte if put else ""}
        INSERT INTO movements (created_at, actor, kind, reason, reference, sku_id, lot,
                               serials, from_location_id, to_location_id, quantity)
        SELECT :created_at, :actor, :kind, :reason, CAST(:reference AS VARCHAR), :sku_id,
               :lot, CAST(:serials AS JSON), :from_location_id,
               CAST(:to_location_id AS BIGINT), :quantity
        FROM take
        RETURNING id
        """
    )
    columns = Movement.__table__.c
    return statement.bindparams(
        bindparam("created_at", type_=columns.created_at.type),
        bindparam("serials", type_=columns.serials.type),
    )


_ONE_STATEMENT = {
    (reserved, put): _one_statement(from_reserved=reserved, put=put)
    for reserved in (False, True)
    for put in (False, True)
}


def _validate(change: Change) -> None:
    if change.quantity <= 0:
        raise Invalid("quantity must be positive", code="invalid_quantity")
    if change.from_location is None and change.to_location is None:
        raise Invalid("a movement needs a source or a destination")
    source, target = change.from_location, change.to_location
    if source is not None and target is not None and source.id == target.id:
        raise Invalid("source and destination are the same location", code="same_location")
    if change.sku.lot_controlled and not change.lot:
        raise Invalid(f"SKU {change.sku.code} is lot-controlled: give a lot", code="lot_required")
    if not change.sku.lot_controlled and change.lot:
        raise Invalid(f"SKU {change.sku.code} has no lots", code="lot_not_allowed")
    if change.sku.serialized:
        if len(change.serials) != change.quantity or len(set(change.serials)) != change.quantity:
            raise Invalid(
                f"SKU {change.sku.code} is serialised: give {change.quantity} distinct serials",
                code="serials_required",
            )
    elif change.serials:
        raise Invalid(f"SKU {change.sku.code} is not serialised", code="serials_not_allowed")


# The ledger's stock statements are built once, with bound parameters: SQLAlchemy keeps
# their compiled form, so a movement pays neither for building them nor for their cache key.
_AT_ROW = (
    Stock.location_id == bindparam("b_location"),
    Stock.sku_id == bindparam("b_sku"),
    Stock.lot == bindparam("b_lot"),
)
_NOW = bindparam("b_now", type_=Stock.__table__.c.updated_at.type)
_TAKE_UNRESERVED = (
    update(Stock)
    .where(*_AT_ROW, Stock.quantity - Stock.reserved >= bindparam("b_quantity"))
    .values(quantity=Stock.quantity - bindparam("b_quantity"), updated_at=_NOW)
)
_TAKE_RESERVED = (
    update(Stock)
    .where(*_AT_ROW, Stock.reserved >= bindparam("b_quantity"))
    .values(
        quantity=Stock.quantity - bindparam("b_quantity"),
        reserved=Stock.reserved - bindparam("b_quantity"),
        updated_at=_NOW,
    )
)


def _take(
    session: Session, location_id: int, sku_id: int, lot: str, quantity: int, *, from_reserved: bool
) -> None:
    """The conditional UPDATE: it matches only while enough (reserved, for a pick) units
    are on hand, so stock never goes negative however many take at once."""
    # Core statements on the session's connection: stock rows are never ORM objects here,
    # so the ORM's bulk-update bookkeeping would be pure cost on every movement.
    result = session.connection().execute(
        _TAKE_RESERVED if from_reserved else _TAKE_UNRESERVED,
        {
            "b_location": location_id,
            "b_sku": sku_id,
            "b_lot": lot,
            "b_quantity": quantity,
            "b_now": utcnow(),
        },
    )
    if result.rowcount != 1:
        _refuse_take(session, location_id, sku_id, lot, quantity)


def _refuse_take(
    session: Session, location_id: int, sku_id: int, lot: str, quantity: int
) -> NoReturn:
    available = session.scalar(
        select(Stock.quantity - Stock.reserved).where(
            Stock.location_id == location_id, Stock.sku_id == sku_id, Stock.lot == lot
        )
    )
    raise InsufficientStock(
        f"{quantity} requested but {available or 0} available at the source location"
    )


def unreserved(session: Session, location_id: int, sku_id: int, lot: str) -> int:
    """Units of `sku`/`lot` at a location that no order holds: what may be taken."""
    row = session.execute(
        select(Stock.quantity, Stock.reserved).where(
            Stock.location_id == location_id, Stock.sku_id == sku_id, Stock.lot == lot
        )
    ).one_or_none()
    return 0 if row is None else max(0, row.quantity - row.reserved)


def lock_sku(session: Session, sku_id: int, warehouse_id: int) -> None:
    """Lock every stock row of a SKU in a warehouse, in the ledger's row order, for work
    that touches several of them in an order it cannot know up front (a short: its slot,
    staging, then whichever slots the re-allocation finds). Taking them all first keeps
    one lock order, so two such transactions cannot deadlock each other."""
    session.execute(
        select(Stock.id)
        .join(Location, Location.id == Stock.location_id)
        .where(Stock.sku_id == sku_id, Location.warehouse_id == warehouse_id)
        .order_by(Stock.location_id, Stock.sku_id, Stock.lot)
        .with_for_update(of=Stock)
    ).all()


def release_reserved(
    session: Session, location_id: int, sku_id: int, lot: str, quantity: int
) -> bool:
    """Give `quantity` reserved units back to available stock; False when fewer are
    reserved (the reservation is gone)."""
    result = session.execute(
        update(Stock)
        .where(
            Stock.location_id == location_id,
            Stock.sku_id == sku_id,
            Stock.lot == lot,
            Stock.reserved >= quantity,
        )
        .values(reserved=Stock.reserved - quantity, updated_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _upsert(insert: Any) -> Any:
    statement = insert(Stock)
    return statement.on_conflict_do_update(
        index_elements=[Stock.location_id, Stock.sku_id, Stock.lot],
        set_={
            "quantity": Stock.quantity + statement.excluded.quantity,
            "updated_at": statement.excluded.updated_at,
        },
    )


_PUT = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


def _put(session: Session, location_id: int, sku_id: int, lot: str, quantity: int) -> None:
    """Add units to a stock row, creating it on first use."""
    connection = session.connection()
    connection.execute(
        _PUT[connection.dialect.name],
        {
            "location_id": location_id,
            "sku_id": sku_id,
            "lot": lot,
            "quantity": quantity,
            "reserved": 0,
            "updated_at": utcnow(),
        },
    )


def _move_serials(session: Session, change: Change) -> None:
    rows = {
        s.serial: s
        for s in session.scalars(
            select(Serial).where(Serial.sku_id == change.sku.id, Serial.serial.in_(change.serials))
        )
    }
    source_id = change.from_location.id if change.from_location else None
    target_id = change.to_location.id if change.to_location else None
    for serial in change.serials:
        row = rows.get(serial)
        if row is None:
            if source_id is not None:
                raise Conflict(f"serial {serial} is not known", code="serial_not_found")
            row = Serial(sku_id=change.sku.id, serial=serial, lot=change.lot)
            session.add(row)
        elif row.location_id != source_id:
            raise Conflict(
                f"serial {serial} is not at the source location", code="serial_elsewhere"
            )
        row.location_id = target_id


@dataclass(frozen=True)
class Mismatch:
    location_id: int
    sku_id: int
    lot: str
    ledger: int
    stock: int


@dataclass
class Reconciliation:
    """Stock rows compared with what the ledger says they must hold."""

    rows_checked: int = 0
    discrepancies: list[Mismatch] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.discrepancies


def reconcile(session: Session, *, warehouse_ids: Collection[int] | None = None) -> Reconciliation:
    """Sum the ledger per (location, SKU, lot) and compare with the stock table, in the
    given warehouses (None: everywhere)."""
    ins = select(
        Movement.to_location_id.label("location_id"),
        Movement.sku_id,
        Movement.lot,
        Movement.quantity.label("delta"),
    ).where(Movement.to_location_id.is_not(None))
    outs = select(
        Movement.from_location_id.label("location_id"),
        Movement.sku_id,
        Movement.lot,
        (-Movement.quantity).label("delta"),
    ).where(Movement.from_location_id.is_not(None))
    deltas = union_all(ins, outs).subquery()
    ledger_query = select(
        deltas.c.location_id, deltas.c.sku_id, deltas.c.lot, func.sum(deltas.c.delta)
    ).group_by(deltas.c.location_id, deltas.c.sku_id, deltas.c.lot)
    stock_query = select(Stock.location_id, Stock.sku_id, Stock.lot, Stock.quantity)
    if warehouse_ids is not None:
        in_warehouse = select(Location.id).where(Location.warehouse_id.in_(warehouse_ids))
        ledger_query = ledger_query.where(deltas.c.location_id.in_(in_warehouse))
        stock_query = stock_query.where(Stock.location_id.in_(in_warehouse))

    expected: dict[tuple[int, int, str], int] = defaultdict(int)
    for location_id, sku_id, lot, total in session.execute(ledger_query):
        expected[(location_id, sku_id, lot)] = int(total)
    actual = {(loc, sku, lot): qty for loc, sku, lot, qty in session.execute(stock_query)}
    result = Reconciliation()
    for key in expected.keys() | actual.keys():
        result.rows_checked += 1
        want, have = expected.get(key, 0), actual.get(key, 0)
        if want != have:
            result.discrepancies.append(Mismatch(*key, ledger=want, stock=have))
    return result
