"""Allocation of orders across warehouses.

Allocation ranks the warehouses by the configured rules, evaluated in order (the first rule
decides, later ones break its ties), then reserves stock:

- `nearest`: great-circle distance from the warehouse to the destination (the order's
  coordinates, else the destination country's centroid);
- `stock_first`: warehouses that can ship the whole order first, then by units on hand;
- `cost_first`: the cheapest shipping rate for the order's weight to the destination.

The split policy decides whether an order may ship from several warehouses: `allowed`,
`never`, or `above_value` (only orders worth at least `split_min_value_cents`). Without a
split the order ships whole from the best-ranked warehouse that can ship it all, or waits
(backordered, nothing reserved); with a split each line takes what it can from the
warehouses in rank order. The result, and why, is kept on the order as its explanation.

Within a warehouse the removal strategy is FEFO for lot-controlled SKUs (earliest expiry
first; lots that expired, or expire before the line's `min_expiry`, are never allocated)
and FIFO otherwise. FIFO uses the stock row's creation order: a row is created by the
first receipt into that slot, whereas `updated_at` changes on every movement and
reservation, so it says nothing about age.

Reservation never reads-then-writes: each stock row is reserved by one conditional UPDATE
(`reserved + q <= quantity`), rows in the ledger's (location, SKU, lot) order so that
concurrent allocations and picks cannot deadlock. If a row was taken meanwhile the whole
attempt is rolled back to a savepoint and planned again from fresh numbers, so two orders
can never reserve the same unit and an order never keeps half of a failed plan.

A short at a slot (`picking.report_short`) looks for the missing units again within the
line's warehouse, by the same rules and with the same reservation, never at the slot that
came up short. What no slot has is taken off the allocation and counted short on the order
line, so allocations always equal the units picked plus the units still reserved.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server import schemas
from server.problems import Conflict
from server.services import ledger, shipping
from server.services.orders import get_order
from server.tables import (
    Allocation,
    AllocationPolicy,
    Location,
    LocationKind,
    Lot,
    Order,
    OrderLine,
    OrderStatus,
    PickLine,
    PickLineStatus,
    ShippingRate,
    Stock,
    Warehouse,
    utcnow,
)


class Rule(StrEnum):
    nearest = "nearest"
    stock_first = "stock_first"
    cost_first = "cost_first"


class Split(StrEnum):
    allowed = "allowed"
    never = "never"
    above_value = "above_value"


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = (Rule.stock_first, Rule.nearest, Rule.cost_first)
    split: Split = Split.allowed
    split_min_value_cents: int = 0

    def allows_split(self, order: Order) -> bool:
        if self.split is Split.above_value:
            return order.value_cents >= self.split_min_value_cents
        return self.split is Split.allowed

    @classmethod
    def from_schema(cls, body: schemas.AllocationPolicyIn) -> Policy:
        return cls(
            rules=tuple(Rule(r) for r in body.rules),
            split=Split(body.split),
            split_min_value_cents=body.split_min_value_cents,
        )


DEFAULT_POLICY_NAME = "default"
ALLOCATABLE = (OrderStatus.open, OrderStatus.backordered, OrderStatus.partially_allocated)
# A failed attempt means another transaction took units from the planned rows meanwhile,
# so retries run out with the stock; the bound only guards against a pathological churn.
MAX_ATTEMPTS = 100


# --- Policy -----------------------------------------------------------


def get_policy(session: Session) -> Policy:
    row = session.scalar(
        select(AllocationPolicy).where(AllocationPolicy.name == DEFAULT_POLICY_NAME)
    )
    if row is None:
        return Policy()
    return Policy(
        rules=tuple(Rule(r) for r in row.rules),
        split=Split(row.split),
        split_min_value_cents=row.split_min_value_cents,
    )


def set_policy(session: Session, policy: Policy, *, actor: str) -> Policy:
    row = session.scalar(
        select(AllocationPolicy).where(AllocationPolicy.name == DEFAULT_POLICY_NAME)
    )
    if row is None:
        row = AllocationPolicy(name=DEFAULT_POLICY_NAME)
        session.add(row)
    row.rules = [str(r) for r in policy.rules]
    row.split = policy.split
    row.split_min_value_cents = policy.split_min_value_cents
    row.updated_by = actor
    session.flush()
    return policy


# --- Allocation --------------------------------------------------------------------------


@dataclass(frozen=True)
class StockSlot:
    """An eligible stock row, in removal order."""

    stock_id: int
    location_id: int
    sku_id: int
    lot: str
    available: int
    expiry: dt.date | None


@dataclass
class WarehouseCandidate:
    warehouse: Warehouse
    slots: dict[int, list[StockSlot]]  # order line id -> eligible rows, removal order
    needed: dict[int, int]  # order line id -> units still to allocate
    distance_km: float | None = None
    cost_cents: int | None = None
    rate_destination: str | None = None

    def fill(self, remaining: dict[int, int]) -> list[tuple[int, StockSlot, int]]:
        """Greedy (line id, row, units) takes in removal order for the `remaining` units of
        each line, which it decreases. Two lines of one SKU share the rows' units: a row's
        units are never promised twice."""
        used: dict[int, int] = defaultdict(int)
        takes = []
        for line_id in remaining:
            for slot in self.slots.get(line_id, ()):
                free = slot.available - used[slot.stock_id]
                if remaining[line_id] == 0:
                    break
                if free <= 0:
                    continue
                quantity = min(free, remaining[line_id])
                takes.append((line_id, slot, quantity))
                used[slot.stock_id] += quantity
                remaining[line_id] -= quantity
        return takes

    @cached_property
    def units(self) -> int:
        """Units of the order this warehouse could ship."""
        return sum(quantity for _, _, quantity in self.fill(dict(self.needed)))

    @property
    def ships_all(self) -> bool:
        return self.units == sum(self.needed.values())

    def rank_key(self, rules: Sequence[Rule]) -> tuple[Any, ...]:
        keys: list[Any] = []
        for rule in rules:
            if rule is Rule.stock_first:
                keys += [0 if self.ships_all else 1, -self.units]
            elif rule is Rule.nearest:
                keys.append(math.inf if self.distance_km is None else self.distance_km)
            elif rule is Rule.cost_first:
                keys.append(math.inf if self.cost_cents is None else self.cost_cents)
        return (*keys, self.warehouse.code)

    def describe(self, rank: int) -> dict[str, Any]:
        return {
            "rank": rank,
            "warehouse": self.warehouse.code,
            "can_ship_all": self.ships_all,
            "units_available": self.units,
            "distance_km": None if self.distance_km is None else round(self.distance_km, 1),
            "shipping_cost_cents": self.cost_cents,
            "rate_destination": self.rate_destination,
        }


@dataclass
class AllocationResult:
    order: Order
    status: OrderStatus
    allocated: int
    requested: int
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Take:
    line: OrderLine
    warehouse: Warehouse
    slot: StockSlot
    quantity: int


def allocate_order(
    session: Session,
    number: str,
    *,
    policy: Policy | None = None,
    today: dt.date | None = None,
) -> AllocationResult:
    """Allocate what an order still needs, reserving stock, and explain the choice.

    Allocates open, backordered and partially allocated orders; anything else is a
    409 `order_not_allocatable`."""
    order = get_order(session, number, for_update=True)
    if order.status not in ALLOCATABLE:
        raise Conflict(
            f"order {number} is {order.status}; only open, backordered or partially "
            "allocated orders are allocated",
            code="order_not_allocatable",
        )
    policy = policy or get_policy(session)
    today = today or utcnow().date()
    lines = [line for line in order.lines if line.unallocated]
    requested = sum(line.unallocated for line in lines)
    weight = _weight(lines)

    def plan() -> _Plan:
        candidates = _candidates(session, order, lines, today)
        ranked = sorted(candidates, key=lambda c: c.rank_key(policy.rules))
        return _Plan(*_plan(order, lines, ranked, policy), ranked=ranked)

    planned = _reserve_planned(session, plan, what=f"order {number}")
    takes, ranked, decision = planned.takes, planned.ranked, planned.decision
    _record(session, order, takes, rule=policy.rules[0])
    allocated = sum(t.quantity for t in takes)
    if all(not line.unallocated for line in order.lines):
        order.status = OrderStatus.allocated
    elif any(line.quantity_allocated for line in order.lines):
        order.status = OrderStatus.partially_allocated
    else:
        order.status = OrderStatus.backordered
    shipments: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for take in takes:
        shipments[take.warehouse.code].append(
            {
                "line": take.line.line_no,
                "sku": take.line.sku.code,
                "lot": take.slot.lot or None,
                "expiry": take.slot.expiry.isoformat() if take.slot.expiry else None,
                "quantity": take.quantity,
            }
        )
    order.allocation_explanation = {
        "rules": [str(r) for r in policy.rules],
        "split": str(policy.split),
        "split_allowed": policy.allows_split(order),
        "destination": _destination_note(order),
        "weight_g": weight,
        "ranking": [c.describe(rank) for rank, c in enumerate(ranked, start=1)],
        "decision": decision,
        "shipments": [{"warehouse": wh, "lines": items} for wh, items in shipments.items()],
        "today": today.isoformat(),
    }
    order.allocated_at = utcnow()
    session.flush()
    return AllocationResult(
        order=order,
        status=order.status,
        allocated=allocated,
        requested=requested,
        explanation=order.allocation_explanation,
    )


CANCELLABLE = (*ALLOCATABLE, OrderStatus.allocated)


def cancel_order(session: Session, number: str) -> Order:
    """Cancel an order that is not released to the floor yet, giving back its reserved
    units. A released order is already on pickers' assignments: 409 `order_released`."""
    order = get_order(session, number, for_update=True)
    if order.status == OrderStatus.cancelled:
        return order
    if order.status not in CANCELLABLE:
        raise Conflict(
            f"order {number} is {order.status}; it is on the floor already",
            code="order_released",
        )
    lines = session.scalars(
        select(PickLine)
        .join(Location, Location.id == PickLine.location_id)
        .where(PickLine.order_id == order.id)
        .order_by(Location.id, PickLine.sku_id, PickLine.lot)
    ).all()
    if any(line.wave_id is not None for line in lines):  # part released with a zone wave
        raise Conflict(f"order {number} is partly on the floor", code="order_released")
    for line in lines:
        if not ledger.release_reserved(
            session, line.location_id, line.sku_id, line.lot, line.quantity
        ):
            raise Conflict("a reservation of this order is gone", code="reservation_missing")
        session.delete(line)
    session.flush()
    line_ids = [line.id for line in order.lines]
    for allocation in session.scalars(
        select(Allocation).where(Allocation.order_line_id.in_(line_ids))
    ):
        session.delete(allocation)
    for order_line in order.lines:
        order_line.quantity_allocated = 0
    order.status = OrderStatus.cancelled
    session.flush()
    return order


# --- Shorts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShortOutcome:
    """What became of the units a picker did not find at a slot."""

    substitutes: list[PickLine]  # new open lines reserving them at other slots
    unfound: int  # units no other slot of the warehouse had: the order line is short


def reallocate_short(
    session: Session, shorted: PickLine, missing: int, *, today: dt.date | None = None
) -> ShortOutcome:
    """Find the `missing` units of a shorted pick line at other slots of its warehouse, by
    the order line's own rules (its lot, its minimum expiry, never an expired lot; FEFO or
    FIFO). Never at a slot that came up short for this allocation (this one, or an
    earlier short's): its count is in doubt. The units are reserved as any allocation is
    and become open pick lines of the same wave and assignment; the caller places them in
    the walk. Units found nowhere are taken off the allocation and counted as the order
    line's `quantity_short`."""
    allocation = session.get_one(Allocation, shorted.allocation_id)
    order_line = allocation.order_line
    today = today or utcnow().date()
    doubtful = set(
        session.scalars(
            select(PickLine.location_id).where(
                PickLine.allocation_id == allocation.id, PickLine.status == PickLineStatus.short
            )
        )
    )

    def plan() -> _Plan:
        slots = [
            slot
            for warehouse_id, slot in _eligible_stock(session, order_line, today)
            if warehouse_id == allocation.warehouse_id and slot.location_id not in doubtful
        ]
        needed = {order_line.id: missing}
        candidate = WarehouseCandidate(allocation.warehouse, {order_line.id: slots}, dict(needed))
        return _Plan(_takes(candidate, [order_line], needed))

    planned = _reserve_planned(session, plan, what=f"order {shorted.order.number}")
    substitutes = [_pick_line(take, allocation, shorted.order_id) for take in planned.takes]
    for line in substitutes:
        line.wave_id, line.assignment_id = shorted.wave_id, shorted.assignment_id
        session.add(line)
    unfound = missing - sum(take.quantity for take in planned.takes)
    if unfound:
        _count_short(session, allocation, order_line, unfound)
    session.flush()
    return ShortOutcome(substitutes=substitutes, unfound=unfound)


def _count_short(session: Session, allocation: Allocation, line: OrderLine, units: int) -> None:
    """Move `units` from allocated to short, in single UPDATEs so that two pickers
    shorting lines of the same order line at once both count."""
    session.execute(
        update(Allocation)
        .where(Allocation.id == allocation.id)
        .values(quantity=Allocation.quantity - units),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(OrderLine)
        .where(OrderLine.id == line.id)
        .values(
            quantity_allocated=OrderLine.quantity_allocated - units,
            quantity_short=OrderLine.quantity_short + units,
        ),
        execution_options={"synchronize_session": False},
    )
    session.refresh(allocation)
    session.refresh(line)


def _destination(order: Order) -> tuple[float, float] | None:
    if order.latitude is not None and order.longitude is not None:
        return (order.latitude, order.longitude)
    return shipping.COUNTRY_CENTROIDS.get(order.country)


def _destination_note(order: Order) -> dict[str, Any]:
    point = _destination(order)
    if order.latitude is not None and order.longitude is not None:
        source = "order coordinates"
    elif point is not None:
        source = "country centroid"
    else:
        source = "unknown: the nearest rule cannot rank warehouses"
    return {
        "country": order.country,
        "region": order.region,
        "postcode": order.postcode,
        "point": list(point) if point else None,
        "point_from": source,
    }


def _weight(lines: Sequence[OrderLine]) -> int:
    return sum((line.sku.weight_g or 0) * line.unallocated for line in lines)


def _candidates(
    session: Session, order: Order, lines: Sequence[OrderLine], today: dt.date
) -> list[WarehouseCandidate]:
    warehouses = session.scalars(select(Warehouse).order_by(Warehouse.code)).all()
    rates: dict[int, list[ShippingRate]] = defaultdict(list)
    for rate in session.scalars(select(ShippingRate)):
        rates[rate.warehouse_id].append(rate)
    destination = _destination(order)
    weight = _weight(lines)
    needed = {line.id: line.unallocated for line in lines}
    by_warehouse: dict[int, dict[int, list[StockSlot]]] = defaultdict(lambda: defaultdict(list))
    for line in lines:
        for warehouse_id, slot in _eligible_stock(session, line, today):
            by_warehouse[warehouse_id][line.id].append(slot)
    candidates = []
    for warehouse in warehouses:
        candidate = WarehouseCandidate(
            warehouse=warehouse, slots=dict(by_warehouse.get(warehouse.id, {})), needed=needed
        )
        if destination and warehouse.latitude is not None and warehouse.longitude is not None:
            candidate.distance_km = shipping.distance_km(
                (warehouse.latitude, warehouse.longitude), destination
            )
        candidate.cost_cents, candidate.rate_destination = shipping.shipping_cost(
            rates.get(warehouse.id, []), order.country, weight
        )
        candidates.append(candidate)
    return candidates


def _eligible_stock(
    session: Session, line: OrderLine, today: dt.date
) -> list[tuple[int, StockSlot]]:
    """(warehouse id, slot) for every storage row that may serve the line, FEFO/FIFO."""
    query = (
        select(
            Location.warehouse_id,
            Stock.id,
            Stock.location_id,
            Stock.sku_id,
            Stock.lot,
            Stock.quantity - Stock.reserved,
            Lot.expiry,
        )
        .join(Location, Location.id == Stock.location_id)
        .outerjoin(Lot, (Lot.sku_id == Stock.sku_id) & (Lot.number == Stock.lot))
        .where(
            Stock.sku_id == line.sku_id,
            Stock.quantity > Stock.reserved,
            Location.kind == LocationKind.storage,
            Location.active.is_(True),
        )
    )
    if line.sku.lot_controlled:
        earliest = max(today, line.min_expiry) if line.min_expiry else today
        query = query.where((Lot.expiry.is_(None)) | (Lot.expiry >= earliest))
        if line.lot:
            query = query.where(Stock.lot == line.lot)
        # FEFO: earliest expiry first; lots without an expiry last
        query = query.order_by(Lot.expiry.is_(None), Lot.expiry, Stock.lot, Stock.id)
    else:
        query = query.order_by(Stock.id)  # FIFO: first receipt into the slot first
    return [
        (
            warehouse_id,
            StockSlot(
                stock_id=stock_id,
                location_id=location_id,
                sku_id=sku_id,
                lot=lot,
                available=available,
                expiry=expiry,
            ),
        )
        for warehouse_id, stock_id, location_id, sku_id, lot, available, expiry in session.execute(
            query
        )
    ]


def _plan(
    order: Order, lines: Sequence[OrderLine], ranked: Sequence[WarehouseCandidate], policy: Policy
) -> tuple[list[_Take], str]:
    """What to reserve where, and the sentence saying why."""
    if not lines:
        return [], "nothing left to allocate"
    if not ranked:
        return [], "no warehouses"
    first_rule = policy.rules[0]
    whole = next((c for c in ranked if c.ships_all), None)
    if whole is not None and (whole is ranked[0] or not policy.allows_split(order)):
        takes = _takes(whole, lines, dict(whole.needed))
        if whole is ranked[0]:
            reason = f"{whole.warehouse.code} ranks first by {first_rule} and ships it all"
        else:
            reason = (
                f"{ranked[0].warehouse.code} ranks first by {first_rule} but cannot ship it "
                f"all and splitting is not allowed; {whole.warehouse.code} is the best-ranked "
                "warehouse that ships it all"
            )
        return takes, f"whole order from {whole.warehouse.code}: {reason}"
    if not policy.allows_split(order):
        return [], (
            "backordered: no warehouse can ship the whole order and splitting is not allowed"
            + (
                f" below a value of {policy.split_min_value_cents} cents"
                if policy.split is Split.above_value
                else ""
            )
        )
    takes = []
    remaining = {line.id: line.unallocated for line in lines}
    for candidate in ranked:
        takes += _takes(candidate, lines, remaining)
    used = list(dict.fromkeys(t.warehouse.code for t in takes))
    short = sum(remaining.values())
    if not takes:
        return [], "backordered: no eligible stock in any warehouse"
    text = (
        f"split across {', '.join(used)} in {first_rule} order"
        if len(used) > 1
        else f"from {used[0]} ({first_rule} order)"
    )
    if short:
        text += f"; {short} units backordered"
    return takes, text


def _takes(
    candidate: WarehouseCandidate, lines: Sequence[OrderLine], remaining: dict[int, int]
) -> list[_Take]:
    by_id = {line.id: line for line in lines}
    return [
        _Take(by_id[line_id], candidate.warehouse, slot, quantity)
        for line_id, slot, quantity in candidate.fill(remaining)
    ]


@dataclass(frozen=True)
class _Plan:
    """What to reserve, and why."""

    takes: list[_Take]
    decision: str = ""
    ranked: list[WarehouseCandidate] = field(default_factory=list)


def _reserve_planned(session: Session, plan: Callable[[], _Plan], *, what: str) -> _Plan:
    """Reserve what `plan()` proposes, all of it or none. When another transaction took
    some of the planned units first, the attempt is rolled back to a savepoint and planned
    again from fresh numbers (409 `allocation_contention` only after MAX_ATTEMPTS)."""
    for _attempt in range(MAX_ATTEMPTS):
        planned = plan()
        savepoint = session.begin_nested()
        if _reserve(session, planned.takes):
            savepoint.commit()
            return planned
        savepoint.rollback()  # someone reserved these units first: plan again
    raise Conflict(
        f"stock for {what} kept changing while allocating; try again",
        code="allocation_contention",
    )


def _reserve(session: Session, takes: Sequence[_Take]) -> bool:
    """Reserve every take or report that one stock row no longer has the units."""
    per_row: dict[int, int] = defaultdict(int)
    slots: dict[int, StockSlot] = {}
    for take in takes:
        per_row[take.slot.stock_id] += take.quantity
        slots[take.slot.stock_id] = take.slot
    for slot in sorted(slots.values(), key=lambda s: (s.location_id, s.sku_id, s.lot)):
        quantity = per_row[slot.stock_id]
        result = session.execute(
            update(Stock)
            .where(Stock.id == slot.stock_id, Stock.reserved + quantity <= Stock.quantity)
            .values(reserved=Stock.reserved + quantity),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
    return True


def _record(session: Session, order: Order, takes: Sequence[_Take], *, rule: Rule) -> None:
    """Allocation rows per (line, warehouse) and a pick line per reserved stock row."""
    allocations: dict[tuple[int, int], Allocation] = {}
    for take in takes:
        key = (take.line.id, take.warehouse.id)
        allocation = allocations.get(key)
        if allocation is None:
            allocation = Allocation(
                order_line_id=take.line.id,
                warehouse_id=take.warehouse.id,
                quantity=0,
                rule=str(rule),
                created_at=utcnow(),
            )
            allocations[key] = allocation
        allocation.quantity += take.quantity
        take.line.quantity_allocated += take.quantity
    for allocation in allocations.values():
        session.add(allocation)
    session.flush()
    for take in takes:
        session.add(_pick_line(take, allocations[(take.line.id, take.warehouse.id)], order.id))
    session.flush()


def _pick_line(take: _Take, allocation: Allocation, order_id: int) -> PickLine:
    """The open pick line holding one take's reservation."""
    return PickLine(
        allocation_id=allocation.id,
        order_id=order_id,
        warehouse_id=take.warehouse.id,
        location_id=take.slot.location_id,
        sku_id=take.slot.sku_id,
        lot=take.slot.lot,
        quantity=take.quantity,
        quantity_picked=0,
    )
