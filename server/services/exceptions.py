"""Exceptions from the floor: shorts, damage, wrong items and calls for help, opened by
the picking that meets them and settled by a supervisor or manager of the warehouse; each
opening and settling is an event (`exception_opened`, `exception_resolved`)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, contains_eager

from server.problems import Conflict, NotFound
from server.services import floor_events
from server.tables import (
    Assignment,
    ExceptionKind,
    ExceptionStatus,
    PickException,
    PickLine,
    Warehouse,
    utcnow,
)


def open_exception(
    session: Session,
    kind: ExceptionKind,
    actor: str,
    *,
    line: PickLine | None = None,
    assignment: Assignment | None = None,
    quantity: int | None = None,
    note: str = "",
) -> PickException:
    if line is not None:
        assignment = line.assignment
    assert assignment is not None
    exception = PickException(
        kind=kind,
        warehouse_id=assignment.warehouse_id,
        assignment_id=assignment.id,
        pick_line_id=line.id if line else None,
        quantity=quantity,
        reported_by=actor,
        note=note,
        created_at=utcnow(),
    )
    session.add(exception)
    session.flush()
    floor_events.exception_opened(session, exception)
    return exception


def list_exceptions(
    session: Session,
    *,
    warehouse: str | None,
    status: str | None,
    limit: int,
    offset: int,
    within: Collection[int] | None = None,
) -> tuple[list[PickException], int]:
    """A page of exceptions, oldest first, and how many match in all."""
    query = (
        select(PickException)
        .join(Warehouse, Warehouse.id == PickException.warehouse_id)
        .options(contains_eager(PickException.warehouse))
    )
    if within is not None:
        query = query.where(PickException.warehouse_id.in_(within))
    if warehouse:
        query = query.where(Warehouse.code == warehouse)
    if status:
        query = query.where(PickException.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    found = session.scalars(query.order_by(PickException.id).limit(limit).offset(offset)).all()
    return list(found), total


def resolve_exception(
    session: Session, exception_id: int, actor: str, resolution: str
) -> PickException:
    """Close an exception with what was done about it (409 `already_resolved`)."""
    exception = get_exception(session, exception_id)
    resolved = session.execute(
        update(PickException)
        .where(PickException.id == exception_id, PickException.status == ExceptionStatus.open)
        .values(
            status=ExceptionStatus.resolved,
            resolved_by=actor,
            resolved_at=utcnow(),
            resolution=resolution,
        ),
        execution_options={"synchronize_session": False},
    )
    if resolved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"exception {exception_id} is already resolved", code="already_resolved")
    session.refresh(exception)
    floor_events.exception_resolved(session, exception)
    return exception


def get_exception(session: Session, exception_id: int) -> PickException:
    exception = session.get(PickException, exception_id)
    if exception is None:
        raise NotFound(f"no exception {exception_id}", code="exception_not_found")
    return exception
