"""Orders: created from JSON or imported from CSV, looked up, listed and shown with their
allocations. Allocation itself lives in `allocation`."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server import schemas
from server.problems import Conflict, Invalid, NotFound
from server.services import catalog
from server.tables import Allocation, Order, OrderLine, OrderStatus, Sku, Warehouse, utcnow

# --- Import ------------------------------------------------------------------------------


def create_order(session: Session, body: schemas.OrderCreate, *, actor: str) -> Order:
    if session.scalar(select(Order.id).where(Order.number == body.number)) is not None:
        raise Conflict(f"order {body.number} already exists", code="duplicate_order")
    order = Order(
        number=body.number,
        channel=body.channel,
        country=body.country.upper(),
        region=body.region,
        postcode=body.postcode,
        latitude=body.latitude,
        longitude=body.longitude,
        priority=body.priority,
        ship_by=body.ship_by,
        carrier=body.carrier,
        value_cents=body.value_cents,
        currency=body.currency,
        status=OrderStatus.open,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(order)
    session.flush()
    for number, line in enumerate(body.lines, start=1):
        sku = catalog.get_sku(session, line.sku)
        if line.lot and not sku.lot_controlled:
            raise Invalid(f"SKU {sku.code} has no lots", code="lot_not_allowed")
        session.add(
            OrderLine(
                order_id=order.id,
                line_no=number,
                sku_id=sku.id,
                quantity=line.quantity,
                lot=line.lot,
                min_expiry=line.min_expiry,
                quantity_allocated=0,
            )
        )
    session.flush()
    session.refresh(order)
    return order


CSV_ORDER_FIELDS = (
    "channel",
    "country",
    "region",
    "postcode",
    "latitude",
    "longitude",
    "priority",
    "ship_by",
    "carrier",
    "value_cents",
    "currency",
)
CSV_LINE_FIELDS = ("sku", "quantity", "lot", "min_expiry")


def parse_csv(text: str) -> list[schemas.OrderCreate]:
    """Orders from CSV, one row per order line; rows with the same `order` number form one
    order whose header fields come from its first row. Columns: order, sku, quantity and
    country are required; channel, region, postcode, latitude, longitude, priority,
    ship_by, carrier, value_cents, currency, lot and min_expiry are optional."""
    try:
        return _orders_from_rows(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    except csv.Error as exc:
        raise Invalid(f"not a readable CSV file: {exc}", code="invalid_csv") from exc


def _orders_from_rows(reader: csv.DictReader[str]) -> list[schemas.OrderCreate]:
    missing = {"order", "sku", "quantity", "country"} - set(reader.fieldnames or ())
    if missing:
        raise Invalid(f"CSV lacks columns: {', '.join(sorted(missing))}", code="invalid_csv")
    grouped: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for row_number, row in enumerate(reader, start=2):
        values = {k: (v or "").strip() for k, v in row.items() if k}
        number = values["order"]
        if not number:
            raise Invalid(f"row {row_number}: order number is empty", code="invalid_csv")
        if number not in grouped:
            header = {k: values[k] for k in CSV_ORDER_FIELDS if values.get(k)}
            grouped[number] = {"number": number, **header, "lines": []}
            first_row[number] = row_number
        line = {k: values[k] for k in CSV_LINE_FIELDS if values.get(k)}
        grouped[number]["lines"].append(line)
    orders = []
    for number, data in grouped.items():
        try:
            orders.append(schemas.OrderCreate.model_validate(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise Invalid(
                f"order {number} (from row {first_row[number]}): {where}: {first['msg']}",
                code="invalid_csv",
            ) from exc
    if not orders:
        raise Invalid("CSV holds no orders", code="invalid_csv")
    return orders


def import_orders(
    session: Session, bodies: Sequence[schemas.OrderCreate], *, actor: str
) -> list[Order]:
    """Create several orders, all or none."""
    numbers = [b.number for b in bodies]
    if len(set(numbers)) != len(numbers):
        raise Invalid("an order number appears twice", code="duplicate_order")
    return [create_order(session, body, actor=actor) for body in bodies]


def get_order(session: Session, number: str, *, for_update: bool = False) -> Order:
    query = select(Order).where(Order.number == number)
    if for_update:
        query = query.with_for_update()
    order = session.scalar(query)
    if order is None:
        raise NotFound(f"no order {number}", code="order_not_found")
    return order


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


def list_orders(
    session: Session, *, status: str | None, limit: int, offset: int
) -> schemas.Page[schemas.OrderOut]:
    query = select(Order)
    if status:
        query = query.where(Order.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    orders = session.scalars(
        query.options(selectinload(Order.lines).selectinload(OrderLine.sku))
        .order_by(Order.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return schemas.Page(
        items=[order_view(session, o) for o in orders], total=total, limit=limit, offset=offset
    )
