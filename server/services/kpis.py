"""Floor KPIs over a time window, from what the books already hold: pick lines closed by
whom and when, orders and their last pick, stock and the picks that drew on it, the answers
the headsets heard, and the recounts managers asked for.

Rates are per hour worked, not per hour of the window: a picker's hours are the hours
(UTC, on the clock) in which they closed at least one line, so a picker on a four-hour
shift is not diluted by the other twenty. Every figure is per warehouse, and per picker
where a picker did the work.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server.tables import (
    ExceptionKind,
    ExceptionOutcome,
    ExceptionStatus,
    HeardAnswer,
    Location,
    Order,
    OrderStatus,
    PickException,
    PickLine,
    PickLineStatus,
    Sku,
    Stock,
    Warehouse,
)

CLOSED = (PickLineStatus.picked, PickLineStatus.short)
DONE = (OrderStatus.picked, OrderStatus.short, OrderStatus.shipped)


@dataclass(frozen=True)
class Window:
    """Which work a KPI counts: closed in [since, until), in these warehouses (None: all)."""

    since: dt.datetime
    until: dt.datetime
    warehouse_ids: Collection[int] | None = None


@dataclass(frozen=True)
class PickerRate:
    warehouse: str
    picker: str
    lines: int
    units: int
    confirmed: int  # lines picked in full
    short: int  # lines closed short
    hours_worked: int  # clock hours with at least one line closed

    @property
    def lines_per_hour(self) -> float:
        return round(self.lines / self.hours_worked, 1) if self.hours_worked else 0.0

    @property
    def accuracy(self) -> float:
        """Share of lines picked in full: a short is a line the books promised and the
        shelf did not hold."""
        return round(self.confirmed / self.lines, 4) if self.lines else 0.0


@dataclass(frozen=True)
class WarehouseRate:
    warehouse: str
    lines: int
    units: int
    hours_worked: int  # clock hours in which the warehouse closed at least one line

    @property
    def lines_per_hour(self) -> float:
        return round(self.lines / self.hours_worked, 1) if self.hours_worked else 0.0


@dataclass(frozen=True)
class RecognitionRate:
    """How well a picker's headset understood them: of the prompts they answered by
    voice, how many took the first answer (right first time), and of all their spoken
    answers, how many were refused and asked again (re-prompts). Typed answers (keypad,
    buttons) are left out: they say nothing of recognition."""

    warehouse: str
    picker: str
    answers: int  # spoken answers
    refused: int  # of them, refused (the prompt was asked again)
    first_answers: int  # spoken answers that were the first to their prompt
    right_first_time: int  # of them, taken

    @property
    def right_first_time_rate(self) -> float:
        return round(self.right_first_time / self.first_answers, 4) if self.first_answers else 0.0

    @property
    def reprompt_rate(self) -> float:
        return round(self.refused / self.answers, 4) if self.answers else 0.0


@dataclass(frozen=True)
class InventoryAccuracy:
    """Recounts settled in the window: a slot whose count matched the books (`noted`)
    or had to be corrected (`adjusted`, `short_accepted`)."""

    warehouse: str
    recounts: int
    matched: int
    corrected: int

    @property
    def accuracy(self) -> float:
        return round(self.matched / self.recounts, 4) if self.recounts else 0.0


@dataclass(frozen=True)
class HourCount:
    hour: dt.datetime  # start of the UTC hour
    warehouse: str
    lines: int


@dataclass(frozen=True)
class CycleTime:
    """Order cycle time, from the order's arrival to its last pick, in hours."""

    warehouse: str
    orders: int
    p50_hours: float
    p90_hours: float


@dataclass(frozen=True)
class SlowMover:
    warehouse: str
    sku: str
    on_hand: int
    units_picked: int  # in the window

    @property
    def turnover(self) -> float:
        """Units picked in the window per unit on hand."""
        return round(self.units_picked / self.on_hand, 4) if self.on_hand else 0.0


def picker_rates(session: Session, window: Window) -> list[PickerRate]:
    """Lines, units, full picks and shorts per picker and warehouse, with the hours
    they worked."""
    rows = session.execute(
        _closed_lines(window).add_columns(
            PickLine.picked_by, PickLine.picked_at, PickLine.status, PickLine.quantity_picked
        )
    ).all()
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    hours: dict[tuple[str, str], set[dt.datetime]] = defaultdict(set)
    for warehouse, picker, picked_at, status, units in rows:
        key = (warehouse, picker or "")
        total = totals[key]
        total[0] += 1
        total[1] += units
        total[2 if status == PickLineStatus.picked else 3] += 1
        hours[key].add(_hour(picked_at))
    return [
        PickerRate(
            warehouse=warehouse,
            picker=picker,
            lines=lines,
            units=units,
            confirmed=confirmed,
            short=short,
            hours_worked=len(hours[(warehouse, picker)]),
        )
        for (warehouse, picker), (lines, units, confirmed, short) in sorted(totals.items())
    ]


def warehouse_rates(session: Session, window: Window) -> list[WarehouseRate]:
    """Lines and units per warehouse, per clock hour in which it picked."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    hours: dict[str, set[dt.datetime]] = defaultdict(set)
    for warehouse, picked_at, units in session.execute(
        _closed_lines(window).add_columns(PickLine.picked_at, PickLine.quantity_picked)
    ):
        totals[warehouse][0] += 1
        totals[warehouse][1] += units
        hours[warehouse].add(_hour(picked_at))
    return [
        WarehouseRate(warehouse, lines, units, len(hours[warehouse]))
        for warehouse, (lines, units) in sorted(totals.items())
    ]


def recognition_rates(session: Session, window: Window) -> list[RecognitionRate]:
    """Right first time and re-prompts per picker and warehouse, from spoken answers."""
    query = (
        select(Warehouse.code, HeardAnswer.picker, HeardAnswer.accepted, HeardAnswer.reprompts)
        .join(Warehouse, Warehouse.id == HeardAnswer.warehouse_id)
        .where(
            HeardAnswer.source == "speech",
            HeardAnswer.at >= window.since,
            HeardAnswer.at < window.until,
        )
    )
    if window.warehouse_ids is not None:
        query = query.where(HeardAnswer.warehouse_id.in_(window.warehouse_ids))
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for warehouse, picker, accepted, reprompts in session.execute(query):
        count = counts[(warehouse, picker)]
        count[0] += 1
        count[1] += not accepted
        if reprompts == 0:
            count[2] += 1
            count[3] += bool(accepted)
    return [
        RecognitionRate(warehouse, picker, *count)
        for (warehouse, picker), count in sorted(counts.items())
    ]


def inventory_accuracy(session: Session, window: Window) -> list[InventoryAccuracy]:
    """Per warehouse, the recounts settled in the window and how many matched."""
    query = (
        select(Warehouse.code, PickException.outcome)
        .join(Warehouse, Warehouse.id == PickException.warehouse_id)
        .where(
            PickException.kind == ExceptionKind.recount,
            PickException.status == ExceptionStatus.resolved,
            PickException.resolved_at >= window.since,
            PickException.resolved_at < window.until,
        )
    )
    if window.warehouse_ids is not None:
        query = query.where(PickException.warehouse_id.in_(window.warehouse_ids))
    corrections = (ExceptionOutcome.adjusted, ExceptionOutcome.short_accepted)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for warehouse, outcome in session.execute(query):
        count = counts[warehouse]
        count[0] += 1
        count[1 if outcome not in corrections else 2] += 1
    return [InventoryAccuracy(warehouse, *count) for warehouse, count in sorted(counts.items())]


def lines_by_hour(session: Session, window: Window) -> list[HourCount]:
    """Lines closed in each clock hour of the window, per warehouse (hours without a
    line are left out)."""
    counts: dict[tuple[dt.datetime, str], int] = defaultdict(int)
    for warehouse, picked_at in session.execute(
        _closed_lines(window).add_columns(PickLine.picked_at)
    ):
        counts[(_hour(picked_at), warehouse)] += 1
    return [
        HourCount(hour=hour, warehouse=warehouse, lines=lines)
        for (hour, warehouse), lines in sorted(counts.items())
    ]


def cycle_times(session: Session, window: Window) -> list[CycleTime]:
    """Per warehouse, how long orders whose picking ended in the window took from their
    arrival to their last pick (median and 90th percentile)."""
    last_pick = func.max(PickLine.picked_at)
    query = (
        select(Warehouse.code, Order.created_at, last_pick)
        .join(PickLine, PickLine.order_id == Order.id)
        .join(Warehouse, Warehouse.id == PickLine.warehouse_id)
        .where(Order.status.in_(DONE), PickLine.status.in_(CLOSED))
        .group_by(Warehouse.code, Order.id, Order.created_at)
        .having(last_pick >= window.since, last_pick < window.until)
    )
    if window.warehouse_ids is not None:
        query = query.where(PickLine.warehouse_id.in_(window.warehouse_ids))
    spans: dict[str, list[float]] = defaultdict(list)
    for warehouse, created_at, finished_at in session.execute(query):
        if finished_at is None:
            continue
        spans[warehouse].append((_utc(finished_at) - _utc(created_at)).total_seconds() / 3600)
    return [
        CycleTime(
            warehouse=warehouse,
            orders=len(hours),
            p50_hours=round(_percentile(hours, 50), 2),
            p90_hours=round(_percentile(hours, 90), 2),
        )
        for warehouse, hours in sorted(spans.items())
    ]


def slow_movers(session: Session, window: Window, *, limit: int = 20) -> list[SlowMover]:
    """SKUs with stock on hand that the window's picks drew on least, relative to what is
    on hand: the first candidates for a smaller slot or a markdown."""
    on_hand = (
        select(
            Warehouse.code.label("warehouse"),
            Sku.id.label("sku_id"),
            Sku.code.label("sku"),
            func.sum(Stock.quantity).label("on_hand"),
        )
        .join(Location, Location.id == Stock.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .join(Sku, Sku.id == Stock.sku_id)
        .where(Stock.quantity > 0)
        .group_by(Warehouse.code, Sku.id, Sku.code)
    )
    if window.warehouse_ids is not None:
        on_hand = on_hand.where(Warehouse.id.in_(window.warehouse_ids))
    picked: dict[tuple[str, int], int] = defaultdict(int)
    for warehouse, sku_id, units in session.execute(
        _closed_lines(window)
        .add_columns(PickLine.sku_id, func.sum(PickLine.quantity_picked))
        .group_by(Warehouse.code, PickLine.sku_id)
    ):
        picked[(warehouse, sku_id)] += int(units or 0)
    movers = [
        SlowMover(
            warehouse=row.warehouse,
            sku=row.sku,
            on_hand=int(row.on_hand),
            units_picked=picked[(row.warehouse, row.sku_id)],
        )
        for row in session.execute(on_hand)
    ]
    movers.sort(key=lambda m: (m.turnover, -m.on_hand, m.warehouse, m.sku))
    return movers[:limit]


def _closed_lines(window: Window) -> Select[str]:
    """Pick lines closed in the window, with their warehouse's code as the first column."""
    query = (
        select(Warehouse.code)
        .select_from(PickLine)
        .join(Warehouse, Warehouse.id == PickLine.warehouse_id)
        .where(
            PickLine.status.in_(CLOSED),
            PickLine.picked_at >= window.since,
            PickLine.picked_at < window.until,
        )
    )
    if window.warehouse_ids is not None:
        query = query.where(PickLine.warehouse_id.in_(window.warehouse_ids))
    return query


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _hour(moment: dt.datetime) -> dt.datetime:
    return _utc(moment).replace(minute=0, second=0, microsecond=0)


def _percentile(values: list[float], percent: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]
