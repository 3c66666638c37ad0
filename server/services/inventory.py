"""Receipts with inspection, moves, adjustments, and the stock and ledger views."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from server import schemas
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


def receive(session: Session, body: schemas.ReceiptCreate, *, actor: str) -> schemas.ReceiptOut:
    """Book an inbound receipt. Each line's inspection splits the counted units: good ones
    to the given location, damaged ones to DAMAGED, quarantined ones to QUARANTINE."""
    warehouse = catalog.get_warehouse(session, body.warehouse)
    damaged_location = catalog.system_location(session, warehouse, LocationKind.damaged)
    quarantine = catalog.system_location(session, warehouse, LocationKind.quarantine)
    receipt = Receipt(warehouse_id=warehouse.id, reference=body.reference, received_by=actor)
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
        session.add(
            ReceiptLine(
                receipt_id=receipt.id,
                sku_id=sku.id,
                lot=lot,
                location_id=location.id,
                quantity=line.quantity,
                damaged=line.damaged,
                quarantined=line.quarantined,
            )
        )
    ledger.record_all(session, changes, actor=actor)
    session.flush()
    session.refresh(receipt)
    return receipt_view(receipt)


def move(session: Session, body: schemas.MoveCreate, *, actor: str) -> schemas.MovementOut:
    warehouse = catalog.get_warehouse(session, body.warehouse)
    sku = catalog.get_sku(session, body.sku)
    change = Change(
        sku=sku,
        quantity=body.quantity,
        from_location=catalog.get_location(session, warehouse, body.from_location),
        to_location=catalog.get_location(session, warehouse, body.to_location),
        kind=MovementKind.move,
        reason=body.reason,
        lot=body.lot or "",
        serials=body.serials,
        reference=body.reference,
    )
    return movement_view(session, ledger.record(session, change, actor=actor).id)


def adjust(session: Session, body: schemas.AdjustmentCreate, *, actor: str) -> schemas.MovementOut:
    """A counted correction: stock found (+) enters the books, stock lost (−) leaves them."""
    warehouse = catalog.get_warehouse(session, body.warehouse)
    sku = catalog.get_sku(session, body.sku)
    location = catalog.get_location(session, warehouse, body.location)
    lot = ensure_lot(session, sku, body.lot) if body.quantity > 0 else (body.lot or "")
    change = Change(
        sku=sku,
        quantity=abs(body.quantity),
        from_location=None if body.quantity > 0 else location,
        to_location=location if body.quantity > 0 else None,
        kind=MovementKind.adjustment,
        reason=body.reason,
        lot=lot,
        serials=body.serials,
        reference=body.reference,
    )
    return movement_view(session, ledger.record(session, change, actor=actor).id)


def receipt_view(receipt: Receipt) -> schemas.ReceiptOut:
    return schemas.ReceiptOut(
        id=receipt.id,
        warehouse=receipt.warehouse.code,
        reference=receipt.reference,
        received_by=receipt.received_by,
        created_at=receipt.created_at,
        lines=[
            schemas.ReceiptLineOut(
                sku=line.sku.code,
                location=line.location.code,
                lot=line.lot or None,
                quantity=line.quantity,
                damaged=line.damaged,
                quarantined=line.quarantined,
                counted=line.quantity + line.damaged + line.quarantined,
            )
            for line in receipt.lines
        ],
    )


# Named, not anonymous, aliases: the statement renders the same in every thread.
FromLocation = aliased(Location, name="from_location")
ToLocation = aliased(Location, name="to_location")
FromWarehouse = aliased(Warehouse, name="from_warehouse")
ToWarehouse = aliased(Warehouse, name="to_warehouse")


def _movement_query() -> Select[Movement, str, str | None, str | None, str | None, str | None]:
    return (
        select(
            Movement,
            Sku.code,
            FromLocation.code,
            FromWarehouse.code,
            ToLocation.code,
            ToWarehouse.code,
        )
        .join(Sku, Sku.id == Movement.sku_id)
        .outerjoin(FromLocation, FromLocation.id == Movement.from_location_id)
        .outerjoin(FromWarehouse, FromWarehouse.id == FromLocation.warehouse_id)
        .outerjoin(ToLocation, ToLocation.id == Movement.to_location_id)
        .outerjoin(ToWarehouse, ToWarehouse.id == ToLocation.warehouse_id)
    )


def movement_view(session: Session, movement_id: int) -> schemas.MovementOut:
    return _movement_out(session.execute(_movement_query().where(Movement.id == movement_id)).one())


def _movement_out(
    row: Row[Movement, str, str | None, str | None, str | None, str | None],
) -> schemas.MovementOut:
    m, sku, from_location, from_warehouse, to_location, to_warehouse = row
    return schemas.MovementOut(
        id=m.id,
        created_at=m.created_at,
        actor=m.actor,
        kind=m.kind,
        reason=m.reason,
        reference=m.reference,
        sku=sku,
        lot=m.lot or None,
        serials=list(m.serials or []),
        warehouse=from_warehouse or to_warehouse or "",
        from_location=from_location,
        to_location=to_location,
        to_warehouse=to_warehouse,
        quantity=m.quantity,
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
) -> schemas.Page[schemas.MovementOut]:
    """The ledger, newest first. A warehouse filter matches either side of a movement, and
    so does `within` (warehouse ids; None: every warehouse)."""
    query = _movement_query()
    if within is not None:
        query = query.where(or_(FromWarehouse.id.in_(within), ToWarehouse.id.in_(within)))
    if warehouse:
        query = query.where(or_(FromWarehouse.code == warehouse, ToWarehouse.code == warehouse))
    if sku:
        query = query.where(Sku.code == sku)
    if location:
        query = query.where(or_(FromLocation.code == location, ToLocation.code == location))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Movement.id.desc()).limit(limit).offset(offset)).all()
    return schemas.Page(
        items=[_movement_out(row) for row in rows], total=total, limit=limit, offset=offset
    )


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
) -> schemas.Page[schemas.StockOut]:
    query = (
        select(Stock, Warehouse.code, Location.code, Sku.code, Lot.expiry)
        .join(Location, Location.id == Stock.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .join(Sku, Sku.id == Stock.sku_id)
        .outerjoin(Lot, (Lot.sku_id == Stock.sku_id) & (Lot.number == Stock.lot))
    )
    if within is not None:
        query = query.where(Warehouse.id.in_(within))
    if warehouse:
        query = query.where(Warehouse.code == warehouse)
    if sku:
        query = query.where(Sku.code == sku)
    if location:
        query = query.where(Location.code == location)
    if not include_empty:
        query = query.where(Stock.quantity > 0)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Warehouse.code, Location.pick_sequence, Location.code, Sku.code, Stock.lot)
        .limit(limit)
        .offset(offset)
    ).all()
    items = [
        schemas.StockOut(
            warehouse=wh,
            location=loc,
            sku=code,
            lot=stock.lot or None,
            expiry=expiry,
            quantity=stock.quantity,
            reserved=stock.reserved,
            available=stock.quantity - stock.reserved,
        )
        for stock, wh, loc, code, expiry in rows
    ]
    return schemas.Page(items=items, total=total, limit=limit, offset=offset)


def reconcile_view(
    session: Session, warehouse: str | None, *, within: Collection[int] | None = None
) -> schemas.ReconcileOut:
    """Stock against the ledger in one warehouse, in those of `within`, or everywhere."""
    warehouse_ids = [catalog.get_warehouse(session, warehouse).id] if warehouse else within
    result = ledger.reconcile(session, warehouse_ids=warehouse_ids)
    discrepancies = []
    for mismatch in result.discrepancies:
        location = session.get_one(Location, mismatch.location_id)
        discrepancies.append(
            schemas.Discrepancy(
                warehouse=location.warehouse.code,
                location=location.code,
                sku=session.get_one(Sku, mismatch.sku_id).code,
                lot=mismatch.lot or None,
                ledger=mismatch.ledger,
                stock=mismatch.stock,
            )
        )
    return schemas.ReconcileOut(
        consistent=result.consistent,
        rows_checked=result.rows_checked,
        discrepancies=discrepancies,
    )
