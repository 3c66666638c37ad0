"""How the API shows what the services hand back: domain rows shaped into the response
models (check digits only for those who may see them). Each view runs inside the
request's transaction, so what it reads through relationships is already in the session."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import schemas
from server.masterdata import LocationRef, SkuRef
from server.services import waves
from server.services.floor import PickerOnShift
from server.services.inventory import Recorded
from server.services.ledger import Reconciliation
from server.tables import (
    Allocation,
    Assignment,
    Location,
    Movement,
    Order,
    OrderLine,
    PickException,
    PickLine,
    Receipt,
    Recording,
    Role,
    Room,
    Serial,
    ShippingRate,
    Sku,
    Stock,
    Transfer,
    TransferLine,
    User,
    Warehouse,
    Wave,
)


def shows_check_digits(user: User) -> bool:
    """Everyone but pickers sees check digits: a picker must read them off the slot."""
    return user.role != Role.picker


def assignment_view(
    session: Session, assignment: Assignment, *, show_check_digits: bool
) -> schemas.AssignmentOut:
    rows = session.execute(
        select(PickLine, Order.number, Location, Sku)
        .join(Order, Order.id == PickLine.order_id)
        .join(Location, Location.id == PickLine.location_id)
        .join(Sku, Sku.id == PickLine.sku_id)
        .where(PickLine.assignment_id == assignment.id)
        .order_by(PickLine.sequence)
    ).all()
    return schemas.AssignmentOut(
        number=assignment.id,
        wave=assignment.wave_id,
        warehouse=assignment.warehouse.code,
        status=assignment.status,
        priority=assignment.priority,
        picker=assignment.picker,
        staging_location=assignment.staging_location.code,
        created_at=assignment.created_at,
        started_at=assignment.started_at,
        completed_at=assignment.completed_at,
        lines=[
            pick_line_view(line, number, location, sku, show_check_digits=show_check_digits)
            for line, number, location, sku in rows
        ],
    )


def pick_line_view(
    line: PickLine,
    order: str,
    location: Location | LocationRef,
    sku: Sku | SkuRef,
    *,
    show_check_digits: bool,
) -> schemas.PickLineOut:
    """One line of an assignment, with its order's number, its slot and its SKU (rows
    loaded with it by the caller, one query for a whole assignment, or a closed line's
    cached snapshots)."""
    return schemas.PickLineOut(
        id=line.id,
        sequence=line.sequence,
        order=order,
        location=location.code,
        aisle=location.aisle,
        slot=location.slot,
        check_digits=location.check_digits if show_check_digits else None,
        sku=sku.code,
        description=sku.description,
        lot=line.lot or None,
        quantity=line.quantity,
        quantity_picked=line.quantity_picked,
        status=line.status,
    )


def assignment_seen_by(
    session: Session, assignment: Assignment, user: User
) -> schemas.AssignmentOut:
    return assignment_view(session, assignment, show_check_digits=shows_check_digits(user))


def wave_view(session: Session, wave: Wave) -> schemas.WaveOut:
    return schemas.WaveOut(
        number=wave.id,
        warehouse=wave.warehouse.code,
        status=wave.status,
        criteria=wave.criteria,
        released_by=wave.released_by,
        released_at=wave.released_at,
        orders=waves.order_count(session, wave),
        assignments=[assignment_view(session, a, show_check_digits=True) for a in wave.assignments],
    )


def wave_summary(progress: waves.WaveProgress) -> schemas.WaveSummary:
    wave = progress.wave
    return schemas.WaveSummary(
        number=wave.id,
        warehouse=wave.warehouse.code,
        status=wave.status,
        released_by=wave.released_by,
        released_at=wave.released_at,
        priority=progress.priority,
        assignments=progress.assignments,
        lines=progress.lines,
        lines_closed=progress.lines_closed,
    )


def exception_view(exception: PickException) -> schemas.ExceptionOut:
    line = exception.pick_line
    return schemas.ExceptionOut(
        id=exception.id,
        kind=exception.kind,
        status=exception.status,
        warehouse=exception.warehouse.code,
        assignment=exception.assignment_id,
        pick_line=exception.pick_line_id,
        quantity=exception.quantity,
        reported_by=exception.reported_by,
        note=exception.note,
        created_at=exception.created_at,
        sku=line.sku.code if line else None,
        location=line.location.code if line else None,
        resolved_by=exception.resolved_by,
        resolved_at=exception.resolved_at,
        resolution=exception.resolution,
        outcome=exception.outcome,
        room=exception.room_id,
        movement=exception.movement_id,
    )


def floor_picker_view(picker: PickerOnShift) -> schemas.FloorPickerOut:
    return schemas.FloorPickerOut(
        picker=picker.picker,
        assignment=picker.assignment,
        warehouse=picker.warehouse,
        lines=picker.lines,
        lines_done=picker.lines_done,
        started_at=picker.started_at,
        last_pick_at=picker.last_pick_at,
        picks_last_hour=picker.picks_last_hour,
    )


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


def movement_view(movement: Movement) -> schemas.MovementOut:
    return _movement_out(movement, movement.sku.code, movement.from_location, movement.to_location)


def recorded_view(recorded: Recorded) -> schemas.MovementOut:
    """A movement just written, shaped from the master data the write already knew."""
    movement = recorded.movement
    return _movement_out(movement, recorded.sku.code, recorded.from_location, recorded.to_location)


def _movement_out(
    movement: Movement,
    sku: str,
    source: Location | LocationRef | None,
    target: Location | LocationRef | None,
) -> schemas.MovementOut:
    from_warehouse = source.warehouse.code if source else None
    to_warehouse = target.warehouse.code if target else None
    return schemas.MovementOut(
        id=movement.id,
        created_at=movement.created_at,
        actor=movement.actor,
        kind=movement.kind,
        reason=movement.reason,
        reference=movement.reference,
        sku=sku,
        lot=movement.lot or None,
        serials=list(movement.serials or []),
        warehouse=from_warehouse or to_warehouse or "",
        from_location=source.code if source else None,
        to_location=target.code if target else None,
        to_warehouse=to_warehouse,
        quantity=movement.quantity,
    )


def stock_view(stock: Stock, expiry: dt.date | None) -> schemas.StockOut:
    return schemas.StockOut(
        warehouse=stock.location.warehouse.code,
        location=stock.location.code,
        sku=stock.sku.code,
        lot=stock.lot or None,
        expiry=expiry,
        quantity=stock.quantity,
        reserved=stock.reserved,
        available=stock.quantity - stock.reserved,
    )


def reconciliation_view(session: Session, result: Reconciliation) -> schemas.ReconcileOut:
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


def location_view(location: Location) -> schemas.LocationOut:
    return schemas.LocationOut(
        code=location.code,
        warehouse=location.warehouse.code,
        zone=location.zone.code,
        kind=location.kind,
        aisle=location.aisle,
        slot=location.slot,
        level=location.level,
        pick_sequence=location.pick_sequence,
        check_digits=location.check_digits,
    )


def sku_view(sku: Sku) -> schemas.SkuOut:
    return schemas.SkuOut(
        sku=sku.code,
        description=sku.description,
        barcode=sku.barcode,
        unit=sku.unit,
        lot_controlled=sku.lot_controlled,
        serialized=sku.serialized,
        length_mm=sku.length_mm,
        width_mm=sku.width_mm,
        height_mm=sku.height_mm,
        weight_g=sku.weight_g,
    )


def order_view(session: Session, order: Order) -> schemas.OrderOut:
    allocations = session.execute(
        select(OrderLine.line_no, Sku.code, Warehouse.code, Allocation.quantity)
        .join(OrderLine, OrderLine.id == Allocation.order_line_id)
        .join(Sku, Sku.id == OrderLine.sku_id)
        .join(Warehouse, Warehouse.id == Allocation.warehouse_id)
        .where(OrderLine.order_id == order.id)
        .order_by(OrderLine.line_no, Allocation.id)
    ).all()
    return schemas.OrderOut(
        number=order.number,
        channel=order.channel,
        country=order.country,
        region=order.region,
        postcode=order.postcode,
        latitude=order.latitude,
        longitude=order.longitude,
        priority=order.priority,
        ship_by=order.ship_by,
        carrier=order.carrier,
        value_cents=order.value_cents,
        currency=order.currency,
        status=order.status,
        created_by=order.created_by,
        created_at=order.created_at,
        allocated_at=order.allocated_at,
        lines=[
            schemas.OrderLineOut(
                line=line.line_no,
                sku=line.sku.code,
                quantity=line.quantity,
                quantity_allocated=line.quantity_allocated,
                quantity_short=line.quantity_short,
                lot=line.lot,
                min_expiry=line.min_expiry,
            )
            for line in order.lines
        ],
        allocations=[
            schemas.AllocationOut(line=n, sku=sku, warehouse=wh, quantity=q)
            for n, sku, wh, q in allocations
        ],
        allocation_explanation=order.allocation_explanation,
    )


def transfer_view(transfer: Transfer) -> schemas.TransferOut:
    def discrepancy(line: TransferLine) -> int | None:
        if line.quantity_received is None:
            return None
        return line.quantity_shipped - line.quantity_received - line.quantity_damaged

    return schemas.TransferOut(
        id=transfer.id,
        from_warehouse=transfer.from_warehouse.code,
        to_warehouse=transfer.to_warehouse.code,
        status=transfer.status,
        reference=transfer.reference,
        shipped_by=transfer.shipped_by,
        shipped_at=transfer.shipped_at,
        received_by=transfer.received_by,
        received_at=transfer.received_at,
        lines=[
            schemas.TransferLineOut(
                line=number,
                sku=line.sku.code,
                lot=line.lot or None,
                from_location=line.from_location.code,
                quantity_shipped=line.quantity_shipped,
                to_location=line.to_location.code if line.to_location else None,
                quantity_received=line.quantity_received,
                quantity_damaged=line.quantity_damaged,
                discrepancy=discrepancy(line),
            )
            for number, line in enumerate(transfer.lines, start=1)
        ],
    )


def serial_view(serial: Serial) -> schemas.SerialOut:
    location = serial.location
    return schemas.SerialOut(
        serial=serial.serial,
        sku=serial.sku.code,
        lot=serial.lot or None,
        warehouse=location.warehouse.code if location else "",
        location=location.code if location else "",
    )


def shipping_rate_view(rate: ShippingRate) -> schemas.ShippingRateOut:
    return schemas.ShippingRateOut(
        warehouse=rate.warehouse.code,
        destination=rate.destination,
        max_weight_g=rate.max_weight_g,
        cost_cents=rate.cost_cents,
        currency=rate.currency,
    )


def room_view(room: Room) -> schemas.RoomOut:
    return schemas.RoomOut(
        id=room.id,
        warehouse=room.warehouse.code,
        exception_id=room.exception_id,
        opened_by=room.opened_by,
        opened_at=room.opened_at,
        closed_by=room.closed_by,
        closed_at=room.closed_at,
        socket=f"/ws/rooms/{room.id}",
    )


def recording_view(recording: Recording) -> schemas.RecordingOut:
    return schemas.RecordingOut(
        id=recording.id,
        room=recording.room_id,
        warehouse=recording.room.warehouse.code,
        participant=recording.participant,
        kind=recording.kind,
        media_type=recording.media_type,
        bytes=recording.bytes,
        started_at=recording.started_at,
        ended_at=recording.ended_at,
        file=f"/api/v1/recordings/{recording.id}/file",
    )
