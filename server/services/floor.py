"""The floor right now: every picker with an assignment in progress, how far they are
through it and how fast they pick. A live floor board loads this when its events socket
(re)subscribes, then follows the events (`floor_events`) from there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from server.tables import (
    Assignment,
    AssignmentStatus,
    PickLine,
    PickLineStatus,
    Warehouse,
    utcnow,
)

CLOSED = (PickLineStatus.picked, PickLineStatus.short)
RATE_WINDOW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class PickerOnShift:
    """A picker working an assignment: `lines_done` of its `lines` closed (picked or
    short), their last close in it, and the lines they closed in the warehouse in the hour
    before the moment asked about."""

    picker: str
    assignment: int
    warehouse: str
    lines: int
    lines_done: int
    started_at: dt.datetime | None
    last_pick_at: dt.datetime | None
    picks_last_hour: int


def pickers_on_shift(
    session: Session,
    *,
    warehouse: str | None = None,
    within: Collection[int] | None = None,
    limit: int = 500,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[list[PickerOnShift], int]:
    """A page of the pickers with an assignment in progress (in `warehouse`, and in the
    warehouses `within` when given; None: every one), by picker name, and how many there
    are in all."""
    query = (
        select(Assignment.id, Assignment.picker, Assignment.started_at, Warehouse.code)
        .join(Warehouse, Warehouse.id == Assignment.warehouse_id)
        .where(Assignment.status == AssignmentStatus.in_progress, Assignment.picker.is_not(None))
    )
    if within is not None:
        query = query.where(Assignment.warehouse_id.in_(within))
    if warehouse:
        query = query.where(Warehouse.code == warehouse)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Assignment.picker, Assignment.id).limit(limit).offset(offset)
    ).all()
    if not rows:
        return [], total
    progress = _progress(session, [row.id for row in rows])
    rates = _recent_picks(session, {row.picker for row in rows}, (now or utcnow()) - RATE_WINDOW)
    found = []
    for row in rows:
        lines, done, last = progress.get(row.id, (0, 0, None))
        found.append(
            PickerOnShift(
                picker=row.picker,
                assignment=row.id,
                warehouse=row.code,
                lines=lines,
                lines_done=done,
                started_at=row.started_at,
                last_pick_at=last,
                picks_last_hour=rates.get((row.picker, row.code), 0),
            )
        )
    return found, total


def _progress(
    session: Session, assignment_ids: list[int]
) -> dict[int, tuple[int, int, dt.datetime | None]]:
    """Lines, lines closed and the last close, per assignment."""
    closed = case((PickLine.status.in_(CLOSED), 1), else_=0)
    rows = session.execute(
        select(
            PickLine.assignment_id,
            func.count(PickLine.id),
            func.coalesce(func.sum(closed), 0),
            func.max(case((PickLine.status.in_(CLOSED), PickLine.picked_at))),
        )
        .where(PickLine.assignment_id.in_(assignment_ids))
        .group_by(PickLine.assignment_id)
    ).all()
    return {
        assignment_id: (int(lines), int(done), _aware(last))
        for assignment_id, lines, done, last in rows
    }


def _recent_picks(
    session: Session, pickers: Collection[str], since: dt.datetime
) -> dict[tuple[str, str], int]:
    """Lines closed since `since`, per (picker, warehouse code)."""
    rows = session.execute(
        select(PickLine.picked_by, Warehouse.code, func.count(PickLine.id))
        .join(Warehouse, Warehouse.id == PickLine.warehouse_id)
        .where(
            PickLine.picked_by.in_(pickers),
            PickLine.status.in_(CLOSED),
            PickLine.picked_at >= since,
        )
        .group_by(PickLine.picked_by, Warehouse.code)
    ).all()
    return {(picker or "", code): int(count) for picker, code, count in rows}


def _aware(moment: dt.datetime | str | None) -> dt.datetime | None:
    """An aggregate of a UTC column comes back without the column's type: naive (or, on
    SQLite, a string); make it an aware UTC datetime."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
