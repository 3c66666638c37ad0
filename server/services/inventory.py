"""Receipts with inspection, moves, adjustments, and looking up stock and the ledger.

A write builds its movements from the master data it has already read (the SKU, the
locations and their warehouses stay in the session), so the answer is shaped without
reading the new rows back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Row, Select, String, cast, func, or_, select
from sqlalchemy.orm import Session, aliased, contains_eager

from server import schemas
from server.masterdata import LocationRef, SkuRef
from server.problems import Conflict, Invalid
from server.services import catalog, ledger
from server.services.ledger import Change
from server.tables import (
    Location,
    LocationKind,
    Lot,
    Movement,
    MovementKind,
    Receipt,
    ReceiptLine,
    Sku,
    Stock,
    Warehouse,
)


def ensure_lot(session: Session, sku: Sku, number: str | None, expiry: object = None) -> str:
    """The lot string to store for `sku`; registers a new lot (with its expiry) on first use."""
    if not sku.lot_controlled:
        if number:
            raise Invalid(f"SKU {sku.code} has no lots", code="lot_not_allowed")
        return ""
    if not number:
        raise Invalid(f"SKU {sku.code} is lot-controlled: give a lot", code="lot_required")
    lot = session.scalar(select(Lot).where(Lot.sku_id == sku.id, Lot.number == number))
    if lot is None:
        session.add(Lot(sku_id=sku.id, number=number, expiry=expiry))
        session.flush()
    elif expiry is not None and lot.expiry != expiry:
        raise Conflict(
            f"lot {number} of {sku.code} already has expiry {lot.expiry}",
            code="lot_expiry_mismatch",
        )
    return number


def receive(session: Session, body: schemas.ReceiptCreate, *, actor: str) -> Receipt:
    """Book an inbound receipt. Each line's inspection splits the counted units: good ones
    to the given location, damaged ones to DAMAGED, quarantined ones to QUARANTINE."""
    warehouse = catalog.get_warehouse(session, body.warehouse)
    damaged_location = catalog.system_location(session, warehouse, LocationKind.damaged)
    quarantine = catalog.system_location(session, warehouse, LocationKind.quarantine)
    receipt = Receipt(warehouse=warehouse, reference=body.reference, received_by=actor, lines=[])
    session.add(receipt)
    session.flush()
    changes: list[Change] = []
    for line in body.lines:
        sku = catalog.get_sku(session, line.sku)
        location = catalog.get_location(session, warehouse, line.location)
        lot = ensure_lot(session, sku, line.lot, line.expiry)
        counted = line.quantity + line.damaged + line.quarantined
        if counted == 0:
            raise Invalid(f"receipt line for {sku.code} counts no units", code="invalid_quantity")
        if sku.serialized and len(line.serials) != counted:
            raise Invalid(
                f"SKU {sku.code} is serialised: give one serial per counted unit "
                f"({counted}), good units first, then damaged, then quarantined",
                code="serials_required",
            )
        serials = list(line.serials)
        reference = body.reference or f"receipt:{receipt.id}"
        for quantity, target, reason in (
            (line.quantity, location, "received"),
            (line.damaged, damaged_location, "received_damaged"),
            (line.quarantined, quarantine, "received_quarantined"),
        ):
            if quantity:
                taken, serials = serials[:quantity], serials[quantity:]
                changes.append(
                    Change(
                        sku=sku,
                        quantity=quantity,
                        from_location=None,
                        to_location=target,
                        kind=MovementKind.receipt,
                        reason=reason,
                        lot=lot,
                        serials=taken if sku.serialized else (),
                        reference=reference,
                    )
                )
        receipt.lines.append(
            ReceiptLine(
                sku=sku,
                lot=lot,
                location=location,
                quantity=line.quantity,
                damaged=line.damaged,
                quarantined=line.quarantined,
            )
        )
    ledger.record_all(session, changes, actor=actor)  # flushes the lines with the ledger
    return receipt  # its lines hold their SKUs and locations: the answer reads nothing more


@dataclass(frozen=True)
class Recorded:
    """A movement just written, with the master data it names: its answer is shaped from
    these, not read back from the database."""

    movement: Movement
    sku: Sku | SkuRef
    from_location: Location | LocationRef | None
    to_location: Location | LocationRef | None


def move(session: Session, body: schemas.MoveCreate, *, actor: str) -> Recorded:
    """Move units between two locations of a warehouse: with the master data cached, the
    whole transaction is the take, the put and the movement's insert."""
    warehouse = catalog.warehouse_ref(session, body.warehouse)
    sku = catalog.sku_ref(session, body.sku)
    source = catalog.location_ref(session, warehouse, body.from_location)
    target = catalog.location_ref(session, warehouse, body.to_location)
    change = Change(
        sku=sku,
        quantity=body.quantity,
        from_location=source,
        to_location=target,
        kind=MovementKind.move,
        reason=body.reason,
        lot=body.lot or "",
        serials=body.serials,
        reference=body.reference,
    )
    return Recorded(ledger.record(session, change, actor=actor), sku, source, target)


def adjust(session: Session, body: schemas.AdjustmentCreate, *, actor: str) -> Recorded:
    """A counted correction: stock found (+) enters the books, stock lost (−) leaves them."""
    warehouse = catalog.get_warehouse(session, body.warehouse)
    sku = catalog.get_sku(session, body.sku)
    location = catalog.get_location(session, warehouse, body.location)
    found = body.quantity > 0
    lot = ensure_lot(session, sku, body.lot) if found else (body.lot or "")
    source, target = (None, location) if found else (location, None)
    change = Change(
        sku=sku,
        quantity=abs(body.quantity),
        from_location=source,
        to_location=target,
        kind=MovementKind.adjustment,
        reason=body.reason,
        lot=lot,
        serials=body.serials,
        reference=body.reference,
    )
    return Recorded(ledger.record(session, change, actor=actor), sku, source, target)


# Named, not anonymous, aliases: the statement renders the same in every thread.
FromLocation = aliased(Location, name="from_location")
ToLocation = aliased(Location, name="to_location")
FromWarehouse = aliased(Warehouse, name="from_warehouse")
ToWarehouse = aliased(Warehouse, name="to_warehouse")


def _movement_query() -> Select[Movement]:
    """Movements with their SKU, locations and warehouses loaded in the same query."""
    return (
        select(Movement)
        .join(Sku, Sku.id == Movement.sku_id)
        .outerjoin(FromLocation, FromLocation.id == Movement.from_location_id)
        .outerjoin(FromWarehouse, FromWarehouse.id == FromLocation.warehouse_id)
        .outerjoin(ToLocation, ToLocation.id == Movement.to_location_id)
        .outerjoin(ToWarehouse, ToWarehouse.id == ToLocation.warehouse_id)
        .options(
            contains_eager(Movement.sku),
            contains_eager(Movement.from_location.of_type(FromLocation)).contains_eager(
                FromLocation.warehouse.of_type(FromWarehouse)
            ),
            contains_eager(Movement.to_location.of_type(ToLocation)).contains_eager(
                ToLocation.warehouse.of_type(ToWarehouse)
            ),
        )
    )


def list_movements(
    session: Session,
    *,
    warehouse: str | None,
    sku: str | None,
    location: str | None,
    limit: int,
    offset: int,
    within: Collection[int] | None = None,
    lot: str | None = None,
    serial: str | None = None,
) -> tuple[list[Movement], int]:
    """A page of the ledger, newest first, and how many movements match in all. A
    warehouse filter matches either side of a movement, and so does `within` (warehouse
    ids; None: every warehouse). With `lot` or `serial` (and `sku`) it is the trace of that
    lot or unit: every receipt, move, pick and adjustment that touched it."""
    query = _movement_query()
    if lot:
        query = query.where(Movement.lot == lot)
    if serial:
        quoted = f'"{serial}"'  # as the unit's serial appears in the JSON list
        query = query.where(cast(Movement.serials, String).contains(quoted, autoescape=True))
    if within is not None:
        query = query.where(or_(FromWarehouse.id.in_(within), ToWarehouse.id.in_(within)))
    if warehouse:
        query = query.where(or_(FromWarehouse.code == warehouse, ToWarehouse.code == warehouse))
    if sku:
        query = query.where(Sku.code == sku)
    if location:
        query = query.where(or_(FromLocation.code == location, ToLocation.code == location))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    found = session.scalars(query.order_by(Movement.id.desc()).limit(limit).offset(offset)).all()
    return list(found), total


def list_stock(
    session: Session,
    *,
    warehouse: str | None,
    sku: str | None,
    location: str | None,
    include_empty: bool,
    limit: int,
    offset: int,
    within: Collection[int] | None = None,
    lot: str | None = None,
) -> tuple[list[Row[Stock, dt.date | None]], int]:
    """A page of stock rows (each with its location, warehouse and SKU loaded, and its
    lot's expiry) in walking order, and how many match in all."""
    query = (
        select(Stock, Lot.expiry)
        .join(Location, Location.id == Stock.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .join(Sku, Sku.id == Stock.sku_id)
        .outerjoin(Lot, (Lot.sku_id == Stock.sku_id) & (Lot.number == Stock.lot))
        .options(
            contains_eager(Stock.location).contains_eager(Location.warehouse),
            contains_eager(Stock.sku),
        )
    )
    if within is not None:
        query = query.where(Warehouse.id.in_(within))
    if warehouse:
        query = query.where(Warehouse.code == warehouse)
    if sku:
        query = query.where(Sku.code == sku)
    if location:
        query = query.where(Location.code == location)
    if lot:
        query = query.where(Stock.lot == lot)
    if not include_empty:
        query = query.where(Stock.quantity > 0)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Warehouse.code, Location.pick_sequence, Location.code, Sku.code, Stock.lot)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def reconcile(
    session: Session, warehouse: str | None, *, within: Collection[int] | None = None
) -> ledger.Reconciliation:
    """Stock against the ledger in one warehouse, in those of `within`, or everywhere."""
    warehouse_ids = [catalog.get_warehouse(session, warehouse).id] if warehouse else within
    return ledger.reconcile(session, warehouse_ids=warehouse_ids)
