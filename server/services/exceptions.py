"""Exceptions from the floor: shorts, damage, wrong items and calls for help, opened by
the picking that meets them and settled by a supervisor or manager of the warehouse; each
opening and settling is an event (`exception_opened`, `exception_resolved`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, contains_eager, selectinload

from server import schemas
from server.problems import Conflict, Invalid, NotFound
from server.services import assignments, floor_events, inventory, ledger
from server.tables import (
    Assignment,
    ExceptionKind,
    ExceptionOutcome,
    ExceptionStatus,
    Movement,
    PickException,
    PickLine,
    Room,
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
        .options(
            contains_eager(PickException.warehouse),
            selectinload(PickException.pick_line).options(
                selectinload(PickLine.sku), selectinload(PickLine.location)
            ),
        )
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


@dataclass(frozen=True)
class Decision:
    """How a manager settles an exception. `outcome` says what it changes:

    - `noted`: nothing but the exception (the words in `resolution`);
    - `short_accepted`: a short's missing units really are not at the slot: they are
      written off there (an adjustment of at most what the books still hold);
    - `adjusted`: stock of the exception's SKU and lot is corrected by `quantity` (signed)
      at `location` (default: the line's slot), for `reason`;
    - `recount`: the slot is to be counted again: a `recount` exception is opened for it;
    - `reassigned`: the rest of the exception's assignment is handed to `picker`.
    """

    resolution: str
    outcome: ExceptionOutcome = ExceptionOutcome.noted
    location: str | None = None
    quantity: int | None = None
    reason: schemas.AdjustmentReason = "count_correction"
    picker: str | None = None


def resolve_exception(
    session: Session, exception_id: int, actor: str, decision: Decision
) -> PickException:
    """Close an exception with what was decided, in the room it was discussed in (its
    latest), and write what the decision changes to the ledger in the same transaction:
    if that fails, the exception stays open. 409 `already_resolved` the second time."""
    exception = get_exception(session, exception_id)
    resolved = session.execute(
        update(PickException)
        .where(PickException.id == exception_id, PickException.status == ExceptionStatus.open)
        .values(
            status=ExceptionStatus.resolved,
            resolved_by=actor,
            resolved_at=utcnow(),
            resolution=decision.resolution,
            outcome=decision.outcome,
            room_id=_latest_room(session, exception_id),
        ),
        execution_options={"synchronize_session": False},
    )
    if resolved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"exception {exception_id} is already resolved", code="already_resolved")
    session.refresh(exception)
    movement = _carry_out(session, exception, decision, actor)
    if movement is not None:
        exception.movement_id = movement.id
        session.flush()
    floor_events.exception_resolved(session, exception)
    return exception


def _hand_over(session: Session, exception: PickException, picker: str | None) -> None:
    line = exception.pick_line
    assignment_id = exception.assignment_id or (line.assignment_id if line else None)
    if assignment_id is None:
        raise Invalid(
            f"exception {exception.id} names no assignment to reassign", code="no_assignment"
        )
    if picker is None:
        raise Invalid("say who takes the work over (`picker`)", code="picker_required")
    assignments.hand_over(session, assignment_id, picker)


def _carry_out(
    session: Session, exception: PickException, decision: Decision, actor: str
) -> Movement | None:
    if decision.outcome == ExceptionOutcome.noted:
        return None
    if decision.outcome == ExceptionOutcome.reassigned:
        _hand_over(session, exception, decision.picker)
        return None
    line = exception.pick_line
    if line is None:
        raise Invalid(
            f"exception {exception.id} names no pick line: only a note settles it",
            code="decision_needs_a_line",
        )
    if decision.outcome == ExceptionOutcome.recount:
        open_exception(
            session,
            ExceptionKind.recount,
            actor,
            line=line,
            note=f"recount {line.location.code} ({line.sku.code}): {decision.resolution}",
        )
        return None
    if line.sku.serialized:
        raise Invalid(
            f"SKU {line.sku.code} is serialised: adjust it by serial (POST /adjustments)",
            code="serials_required",
        )
    if decision.outcome == ExceptionOutcome.short_accepted:
        if exception.kind != ExceptionKind.short or not exception.quantity:
            raise Invalid("only a short's missing units are accepted", code="not_a_short")
        on_books = ledger.unreserved(session, line.location_id, line.sku_id, line.lot)
        missing = min(exception.quantity, on_books)
        if not missing:
            return None  # someone has already corrected the slot
        return _adjust(session, exception, line.location.code, -missing, "lost", actor)
    if not decision.quantity:
        raise Invalid("an adjustment changes stock: give a quantity", code="invalid_quantity")
    location = decision.location or line.location.code
    return _adjust(session, exception, location, decision.quantity, decision.reason, actor)


def _adjust(
    session: Session,
    exception: PickException,
    location: str,
    quantity: int,
    reason: schemas.AdjustmentReason,
    actor: str,
) -> Movement:
    line = exception.pick_line
    assert line is not None
    body = schemas.AdjustmentCreate(
        warehouse=exception.warehouse.code,
        sku=line.sku.code,
        location=location,
        quantity=quantity,
        reason=reason,
        lot=line.lot or None,
        reference=f"exception:{exception.id}",
    )
    return inventory.adjust(session, body, actor=actor).movement


def _latest_room(session: Session, exception_id: int) -> int | None:
    return session.scalar(
        select(Room.id).where(Room.exception_id == exception_id).order_by(Room.id.desc()).limit(1)
    )


def get_exception(session: Session, exception_id: int) -> PickException:
    exception = session.get(PickException, exception_id)
    if exception is None:
        raise NotFound(f"no exception {exception_id}", code="exception_not_found")
    return exception
