"""Transfers between warehouses: shipped into the sender's IN-TRANSIT location, received at
the destination, and any difference between shipped and received recorded and written off."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import schemas
from server.problems import Conflict, Invalid, NotFound
from server.services import catalog, ledger
from server.services.ledger import Change
from server.tables import LocationKind, MovementKind, Transfer, TransferLine, TransferStatus, utcnow


def ship(session: Session, body: schemas.TransferCreate, *, actor: str) -> Transfer:
    if body.from_warehouse == body.to_warehouse:
        raise Invalid("a transfer goes to another warehouse; use a move", code="same_warehouse")
    source = catalog.get_warehouse(session, body.from_warehouse)
    destination = catalog.get_warehouse(session, body.to_warehouse)
    transit = catalog.system_location(session, source, LocationKind.transit)
    transfer = Transfer(
        from_warehouse_id=source.id,
        to_warehouse_id=destination.id,
        reference=body.reference,
        shipped_by=actor,
        status=TransferStatus.in_transit,
    )
    session.add(transfer)
    session.flush()
    changes = []
    for line in body.lines:
        sku = catalog.get_sku(session, line.sku)
        from_location = catalog.get_location(session, source, line.from_location)
        session.add(
            TransferLine(
                transfer_id=transfer.id,
                sku_id=sku.id,
                lot=line.lot or "",
                from_location_id=from_location.id,
                quantity_shipped=line.quantity,
            )
        )
        changes.append(
            Change(
                sku=sku,
                quantity=line.quantity,
                from_location=from_location,
                to_location=transit,
                kind=MovementKind.transfer,
                reason="transfer_shipped",
                lot=line.lot or "",
                serials=line.serials,
                reference=f"transfer:{transfer.id}",
            )
        )
    ledger.record_all(session, changes, actor=actor)
    session.refresh(transfer)
    return transfer


def receive(
    session: Session, transfer_id: int, body: schemas.TransferReceive, *, actor: str
) -> Transfer:
    """Receive every line of a transfer in one go. Units not received are written off from
    transit as a recorded discrepancy; damaged ones go to the destination's DAMAGED."""
    transfer = get(session, transfer_id, for_update=True)
    if transfer.status != TransferStatus.in_transit:
        raise Conflict(f"transfer {transfer.id} was already received", code="already_received")
    if any(line.sku.serialized for line in transfer.lines):
        raise Invalid(
            "serialised transfers are received by serial; not supported yet",
            code="serialised_transfer_receipt",
        )
    source, destination = transfer.from_warehouse, transfer.to_warehouse
    transit = catalog.system_location(session, source, LocationKind.transit)
    damaged_location = catalog.system_location(session, destination, LocationKind.damaged)
    by_number = {number: line for number, line in enumerate(transfer.lines, start=1)}
    if sorted(r.line for r in body.lines) != sorted(by_number):
        raise Invalid(
            f"give each of the {len(by_number)} transfer lines exactly once", code="lines_mismatch"
        )
    changes = []
    discrepancy = False
    reference = f"transfer:{transfer.id}"
    for received in body.lines:
        line = by_number[received.line]
        arrived = received.quantity + received.damaged
        if arrived > line.quantity_shipped:
            raise Invalid(
                f"line {received.line}: {arrived} received but {line.quantity_shipped} shipped",
                code="over_received",
            )
        to_location = catalog.get_location(session, destination, received.to_location)
        line.to_location_id = to_location.id
        line.quantity_received = received.quantity
        line.quantity_damaged = received.damaged
        missing = line.quantity_shipped - arrived
        discrepancy = discrepancy or missing > 0 or received.damaged > 0
        for quantity, target, reason in (
            (received.quantity, to_location, "transfer_received"),
            (received.damaged, damaged_location, "transfer_received_damaged"),
            (missing, None, "transfer_shortage"),
        ):
            if quantity:
                changes.append(
                    Change(
                        sku=line.sku,
                        quantity=quantity,
                        from_location=transit,
                        to_location=target,
                        kind=MovementKind.transfer,
                        reason=reason,
                        lot=line.lot,
                        reference=reference,
                    )
                )
    ledger.record_all(session, changes, actor=actor)
    transfer.status = (
        TransferStatus.received_with_discrepancy if discrepancy else TransferStatus.received
    )
    transfer.received_by = actor
    transfer.received_at = utcnow()
    session.flush()
    return transfer


def get(session: Session, transfer_id: int, *, for_update: bool = False) -> Transfer:
    query = select(Transfer).where(Transfer.id == transfer_id)
    if for_update:
        query = query.with_for_update()
    transfer = session.scalar(query)
    if transfer is None:
        raise NotFound(f"no transfer {transfer_id}", code="transfer_not_found")
    return transfer
