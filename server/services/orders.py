"""Orders: created from JSON or imported from CSV, looked up, listed and shown with their
allocations. Allocation itself lives in `allocation`."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload, undefer

from server import schemas
from server.problems import Conflict, Invalid, NotFound
from server.services import catalog
from server.tables import Order, OrderLine, OrderStatus, utcnow

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


MAX_COLUMNS = 64  # 16 are known; a file of thousands of columns is refused at its header
MAX_ROW_ERRORS = 100


class CsvRefused(Invalid):
    """A CSV file that cannot be imported, with what is wrong in which row (`errors`)."""

    code = "invalid_csv"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        first = problems[0]
        detail = f"row {first['row']}: {first['msg']}" if first.get("row") else first["msg"]
        if len(problems) > 1:
            detail += f" (and {len(problems) - 1} more)"
        super().__init__(detail, errors=problems[:MAX_ROW_ERRORS])


@dataclass(frozen=True)
class ParsedCsv:
    """The orders of a CSV file and where each line came from: `rows[number][i]` is the
    file's row (1 is the header) of line i of that order, for errors found later."""

    orders: list[schemas.OrderCreate]
    rows: dict[str, list[int]]


def parse_csv(text: str) -> list[schemas.OrderCreate]:
    """The orders of a CSV file (`parse_csv_rows` without the rows)."""
    return parse_csv_rows(text).orders


def parse_csv_rows(text: str) -> ParsedCsv:
    """Orders from CSV, one row per order line; rows with the same `order` number form one
    order whose header fields come from its first row. Columns: order, sku, quantity and
    country are required; channel, region, postcode, latitude, longitude, priority,
    ship_by, carrier, value_cents, currency, lot and min_expiry are optional.

    Refused, with every bad row in `errors`: NUL characters (on every database alike), a
    quote left open, a header with a column twice or more than MAX_COLUMNS columns, a row
    with more fields than the header, and values the order schema refuses. Cells are
    stored as given, even when they start with `= + - @`: they are data here, and made
    safe where they could be read as formulas, on CSV export (`csv_cell`)."""
    text = text.lstrip("\ufeff")
    nul_rows = [n for n, line in enumerate(text.split("\n"), start=1) if "\x00" in line]
    if nul_rows:
        raise CsvRefused([{"row": n, "msg": "NUL character"} for n in nul_rows])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader, [])]
        _check_header(header)
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise CsvRefused(
            [{"row": reader.line_num, "msg": f"not a readable CSV file: {exc}"}]
        ) from exc
    return _orders_from_rows(header, rows)


def _check_header(header: list[str]) -> None:
    if len(header) > MAX_COLUMNS:
        raise CsvRefused([{"row": 1, "msg": f"{len(header)} columns; at most {MAX_COLUMNS}"}])
    twice = [name for name, count in Counter(header).items() if count > 1]
    if twice:
        raise CsvRefused([{"row": 1, "msg": f"column {name!r} appears twice"} for name in twice])
    missing = {"order", "sku", "quantity", "country"} - set(header)
    if missing:
        raise CsvRefused([{"msg": f"CSV lacks columns: {', '.join(sorted(missing))}"}])


def _orders_from_rows(header: list[str], rows: list[tuple[int, list[str]]]) -> ParsedCsv:
    problems: list[dict[str, Any]] = []
    grouped: dict[str, dict[str, Any]] = {}
    line_rows: dict[str, list[int]] = {}
    for row_number, row in rows:
        if len(row) > len(header):
            problems.append(
                {"row": row_number, "msg": f"{len(row)} fields; the header has {len(header)}"}
            )
            continue
        values = {k: v.strip() for k, v in zip(header, row, strict=False) if k}
        number = values.get("order", "")
        if not number:
            problems.append({"row": row_number, "msg": "order number is empty"})
            continue
        if number not in grouped:
            order_fields = {k: values[k] for k in CSV_ORDER_FIELDS if values.get(k)}
            grouped[number] = {"number": number, **order_fields, "lines": []}
            line_rows[number] = []
        line = {k: values[k] for k in CSV_LINE_FIELDS if values.get(k)}
        grouped[number]["lines"].append(line)
        line_rows[number].append(row_number)
    orders = []
    for number, data in grouped.items():
        try:
            orders.append(schemas.OrderCreate.model_validate(data))
        except ValidationError as exc:
            problems += [_field_problem(number, data, line_rows[number], e) for e in exc.errors()]
    if problems:
        raise CsvRefused(sorted(problems, key=lambda p: p.get("row", 0)))
    if not orders:
        raise CsvRefused([{"msg": "CSV holds no orders"}])
    return ParsedCsv(orders, line_rows)


def _field_problem(
    number: str, data: dict[str, Any], rows: list[int], error: Any
) -> dict[str, Any]:
    """A value the order schema refused, at the row it came from: a line's own row for a
    line field (`lines.2.quantity`), the order's first row for a header field."""
    loc = error["loc"]
    where = ".".join(str(p) for p in loc)
    row, problem = rows[0], {"order": number}
    if len(loc) >= 2 and loc[0] == "lines" and isinstance(loc[1], int) and loc[1] < len(rows):
        row = rows[loc[1]]
        if sku := data["lines"][loc[1]].get("sku"):
            problem["sku"] = sku
    problem["msg"] = f"order {number} (from row {row}): {where}: {error['msg']}"
    return {"row": row, **problem}


# --- Export ------------------------------------------------------------------------------

CSV_COLUMNS = ("order", *CSV_ORDER_FIELDS, *CSV_LINE_FIELDS)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell as a CSV export writes it. Text a spreadsheet would run as a formula (it
    starts with = + - @, a tab or a carriage return) gets a leading apostrophe, as OWASP
    advises; numbers, dates and other text are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_csv(session: Session, *, status: str | None, limit: int, offset: int) -> str:
    """A page of orders as CSV in the import's columns, one row per order line, with
    every cell made safe for spreadsheets (`csv_cell`)."""
    query = select(Order).options(selectinload(Order.lines).selectinload(OrderLine.sku))
    if status:
        query = query.where(Order.status == status)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for order in session.scalars(query.order_by(Order.id).limit(limit).offset(offset)):
        head = [getattr(order, name) for name in CSV_ORDER_FIELDS]
        for line in order.lines:
            cells = [order.number, *head, line.sku.code, line.quantity, line.lot, line.min_expiry]
            writer.writerow([_iso(csv_cell(cell)) for cell in cells])
    return out.getvalue()


def _iso(cell: object) -> object:
    if isinstance(cell, dt.datetime):
        return cell.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return cell


def delete_open_orders(session: Session, numbers: Sequence[str]) -> None:
    """Remove orders just created and not yet allocated (an import undone)."""
    ids = select(Order.id).where(Order.number.in_(numbers), Order.status == OrderStatus.open)
    session.execute(delete(OrderLine).where(OrderLine.order_id.in_(ids)))
    session.execute(delete(Order).where(Order.id.in_(ids)))


SHOWN = undefer(Order.allocation_explanation)  # what an order's view adds to its row


def get_order(session: Session, number: str, *, for_update: bool = False) -> Order:
    query = select(Order).where(Order.number == number).options(SHOWN)
    if for_update:
        query = query.with_for_update()
    order = session.scalar(query)
    if order is None:
        raise NotFound(f"no order {number}", code="order_not_found")
    return order


def list_orders(
    session: Session, *, status: str | None, limit: int, offset: int
) -> tuple[list[Order], int]:
    """A page of orders in the order they came, with their lines and SKUs loaded, and how
    many match in all."""
    query = select(Order)
    if status:
        query = query.where(Order.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    orders = session.scalars(
        query.options(SHOWN, selectinload(Order.lines).selectinload(OrderLine.sku))
        .order_by(Order.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(orders), total
