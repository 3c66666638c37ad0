"""Waves: releasing allocated orders of one warehouse as assignments to pick.

A wave takes the orders chosen by carrier cut-off, carrier, zone and priority and batches
their unreleased pick lines into assignments of a bounded number of lines, each in walking
order (the locations' pick sequence) and delivered to a staging location of the warehouse.
Lines claimed by a wave released at the same moment stay with that wave.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.problems import Conflict, Invalid, NotFound
from server.services import catalog
from server.tables import (
    Assignment,
    AssignmentStatus,
    Location,
    LocationKind,
    Order,
    OrderStatus,
    PickLine,
    PickLineStatus,
    Warehouse,
    Wave,
    WaveStatus,
    Zone,
    utcnow,
)

RELEASABLE = (
    OrderStatus.allocated,
    OrderStatus.partially_allocated,
    OrderStatus.released,
    OrderStatus.picking,
)


@dataclass(frozen=True)
class WaveCriteria:
    """Which allocated orders a wave releases, and how big its assignments are."""

    cutoff: dt.datetime | None = None  # orders that must ship by then (carrier cut-off)
    carrier: str | None = None
    zone: str | None = None  # only pick lines in this zone
    max_priority: int | None = None  # only orders at least this urgent (1 = most urgent)
    max_orders: int | None = None
    lines_per_assignment: int = 20

    def as_json(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "carrier": self.carrier,
            "zone": self.zone,
            "max_priority": self.max_priority,
            "max_orders": self.max_orders,
            "lines_per_assignment": self.lines_per_assignment,
        }


def release_wave(
    session: Session, warehouse_code: str, criteria: WaveCriteria, *, actor: str
) -> Wave:
    """Release the matching orders' unreleased pick lines as one wave of assignments.
    409 `nothing_to_release` when no line matches."""
    if criteria.lines_per_assignment < 1:
        raise Invalid("an assignment holds at least one line", code="invalid_assignment_size")
    warehouse = catalog.get_warehouse(session, warehouse_code)
    staging = session.scalars(
        select(Location)
        .where(
            Location.warehouse_id == warehouse.id,
            Location.kind == LocationKind.staging,
            Location.active.is_(True),
        )
        .order_by(Location.pick_sequence, Location.code)
    ).all()
    if not staging:
        raise Conflict(
            f"warehouse {warehouse.code} has no staging location to deliver to",
            code="no_staging_location",
        )
    query = (
        select(PickLine.id, PickLine.order_id)
        .join(Order, Order.id == PickLine.order_id)
        .join(Location, Location.id == PickLine.location_id)
        .join(Zone, Zone.id == Location.zone_id)
        .where(
            PickLine.warehouse_id == warehouse.id,
            PickLine.wave_id.is_(None),
            PickLine.status == PickLineStatus.open,
            Order.status.in_(RELEASABLE),
        )
        .order_by(Order.priority, Order.ship_by.is_(None), Order.ship_by, Order.id, PickLine.id)
    )
    if criteria.cutoff is not None:
        query = query.where(Order.ship_by <= criteria.cutoff)
    if criteria.carrier is not None:
        query = query.where(Order.carrier == criteria.carrier)
    if criteria.zone is not None:
        query = query.where(Zone.code == criteria.zone)
    if criteria.max_priority is not None:
        query = query.where(Order.priority <= criteria.max_priority)
    candidates: dict[int, list[int]] = {}  # order id -> pick line ids, urgent orders first
    for line_id, order_id in session.execute(query):
        full = criteria.max_orders is not None and len(candidates) >= criteria.max_orders
        if full and order_id not in candidates:
            continue
        candidates.setdefault(order_id, []).append(line_id)
    if not candidates:
        raise Conflict("no allocated pick lines match this wave", code="nothing_to_release")

    wave = Wave(
        warehouse_id=warehouse.id,
        status=WaveStatus.released,
        criteria=criteria.as_json(),
        released_by=actor,
        released_at=utcnow(),
    )
    session.add(wave)
    session.flush()
    # claim the lines: one released concurrently by another wave stays with that wave
    wanted = [line_id for ids in candidates.values() for line_id in ids]
    session.execute(
        update(PickLine)
        .where(PickLine.id.in_(wanted), PickLine.wave_id.is_(None))
        .values(wave_id=wave.id),
        execution_options={"synchronize_session": False},
    )
    lines = session.scalars(
        select(PickLine)
        .where(PickLine.wave_id == wave.id)
        .execution_options(populate_existing=True)
    ).all()
    if not lines:
        raise Conflict("another wave released these lines first", code="nothing_to_release")
    by_order: dict[int, list[PickLine]] = defaultdict(list)
    for line in lines:
        by_order[line.order_id].append(line)
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(by_order)))}
    batches = _batch(
        [by_order[order_id] for order_id in candidates if order_id in by_order],
        criteria.lines_per_assignment,
    )
    for number, batch in enumerate(batches):
        assignment = Assignment(
            wave_id=wave.id,
            warehouse_id=warehouse.id,
            status=AssignmentStatus.ready,
            priority=min(orders[line.order_id].priority for line in batch),
            staging_location_id=staging[number % len(staging)].id,
            created_at=utcnow(),
        )
        session.add(assignment)
        session.flush()
        walk = sorted(batch, key=walk_key)
        for sequence, line in enumerate(walk, start=1):
            line.assignment_id = assignment.id
            line.sequence = sequence
    for order in orders.values():
        unreleased = session.scalar(
            select(func.count(PickLine.id)).where(
                PickLine.order_id == order.id, PickLine.wave_id.is_(None)
            )
        )
        if order.status == OrderStatus.allocated and not unreleased:
            order.status = OrderStatus.released
    session.flush()
    session.refresh(wave)
    return wave


def walk_key(line: PickLine) -> tuple[int, str, int]:
    """Where a line's slot comes in the walk through the warehouse."""
    return (line.location.pick_sequence, line.location.code, line.id)


def _batch(orders: Sequence[Sequence[PickLine]], size: int) -> list[list[PickLine]]:
    """Fill assignments order by order (urgent first) up to `size` lines, keeping each
    order's lines together unless the order alone is bigger than an assignment."""
    batches: list[list[PickLine]] = []
    current: list[PickLine] = []
    for lines in orders:
        if current and len(current) + len(lines) > size:
            batches.append(current)
            current = []
        for line in lines:
            if len(current) == size:
                batches.append(current)
                current = []
            current.append(line)
    if current:
        batches.append(current)
    return batches


def get_wave(session: Session, number: int) -> Wave:
    wave = session.get(Wave, number)
    if wave is None:
        raise NotFound(f"no wave {number}", code="wave_not_found")
    return wave


def order_count(session: Session, wave: Wave) -> int:
    """How many orders have lines in the wave."""
    orders = session.scalar(
        select(func.count(func.distinct(PickLine.order_id))).where(PickLine.wave_id == wave.id)
    )
    return orders or 0


@dataclass(frozen=True)
class WaveProgress:
    """A wave and how far its picking has come."""

    wave: Wave
    priority: int
    assignments: int
    lines: int
    lines_closed: int


def list_waves(
    session: Session,
    *,
    warehouse: str | None,
    status: str | None,
    limit: int,
    offset: int,
    within: Collection[int] | None = None,
) -> tuple[list[WaveProgress], int]:
    """A page of waves, newest first, each with its progress; and how many match in all."""
    query = select(Wave).join(Warehouse, Warehouse.id == Wave.warehouse_id)
    if within is not None:
        query = query.where(Wave.warehouse_id.in_(within))
    if warehouse:
        query = query.where(Warehouse.code == warehouse)
    if status:
        query = query.where(Wave.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    found = session.scalars(query.order_by(Wave.id.desc()).limit(limit).offset(offset)).all()
    return [progress(session, wave) for wave in found], total


def progress(session: Session, wave: Wave) -> WaveProgress:
    assignments, priority = session.execute(
        select(func.count(Assignment.id), func.min(Assignment.priority)).where(
            Assignment.wave_id == wave.id
        )
    ).one()
    lines, closed = session.execute(
        select(
            func.count(PickLine.id),
            func.count(PickLine.id).filter(
                PickLine.status.in_((PickLineStatus.picked, PickLineStatus.short))
            ),
        ).where(PickLine.wave_id == wave.id)
    ).one()
    return WaveProgress(
        wave=wave,
        priority=priority or 0,
        assignments=assignments,
        lines=lines,
        lines_closed=closed,
    )


def reprioritise(session: Session, number: int, priority: int) -> Wave:
    """Give every assignment of the wave not yet completed this priority: pickers signing
    on get the most urgent ready assignment first (1 is the most urgent)."""
    wave = get_wave(session, number)
    if wave.status == WaveStatus.completed:
        raise Conflict(f"wave {number} is completed", code="wave_completed")
    session.execute(
        update(Assignment)
        .where(Assignment.wave_id == wave.id, Assignment.status != AssignmentStatus.completed)
        .values(priority=priority),
        execution_options={"synchronize_session": False},
    )
    session.expire_all()
    return wave
