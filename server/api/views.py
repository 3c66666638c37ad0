"""How the API shows assignments, waves and exceptions: the services hand back rows, these
shape them into the response models (check digits only for those who may see them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import schemas
from server.services import waves
from server.tables import (
    Assignment,
    Location,
    Order,
    PickException,
    PickLine,
    Role,
    Sku,
    User,
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
            schemas.PickLineOut(
                id=line.id,
                sequence=line.sequence,
                order=number,
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
            for line, number, location, sku in rows
        ],
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


def exception_view(exception: PickException) -> schemas.ExceptionOut:
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
        resolved_by=exception.resolved_by,
        resolved_at=exception.resolved_at,
        resolution=exception.resolution,
    )
