"""The CSV order import, in bounded batches.

One transaction for a whole file held SQLite's only write lock for as long as the file
took (57 s for 20,000 orders), and every other writer waited. The file is checked whole
first (parsed, every SKU known, no order number taken), then its orders are created
`batch_size` at a time, each batch its own short transaction, so other writers get the
lock between batches; allocation, when asked for, goes the same way. Progress is logged
after every batch. Should a batch still fail (an order number taken meanwhile), the
orders of the earlier batches are removed again: the import stays all or none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import schemas
from server.db import Database
from server.problems import Conflict, Invalid, NotFound, Problem
from server.services import allocation, orders
from server.tables import Order, Sku

log = logging.getLogger(__name__)

MAX_CSV = 5 * 1024 * 1024
LOOKUP_CHUNK = 500  # values per IN (...) list


def parse_upload(upload: BinaryIO) -> orders.ParsedCsv:
    """The orders of an uploaded CSV file (UTF-8, at most MAX_CSV bytes), with the rows
    their lines came from."""
    data = upload.read(MAX_CSV + 1)
    if len(data) > MAX_CSV:
        raise Invalid(f"CSV larger than {MAX_CSV} bytes", code="payload_too_large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("CSV must be UTF-8", code="invalid_csv") from exc
    return orders.parse_csv_rows(text)


async def import_orders(
    db: Database,
    bodies: Sequence[schemas.OrderCreate],
    *,
    actor: str,
    allocate: bool,
    batch_size: int,
    rows: Mapping[str, Sequence[int]] | None = None,
) -> list[str]:
    """Create the orders in batches (and allocate them); the numbers created. All or none:
    a problem in a later batch removes the orders of the earlier ones. `rows` (from
    `orders.parse_csv_rows`) puts the file's row numbers into the refusals."""
    await db.read(check_importable, bodies, rows)
    batches = [bodies[i : i + batch_size] for i in range(0, len(bodies), batch_size)]
    created: list[str] = []
    try:
        for batch in batches:
            created += await db.write_step(_create_batch, batch, actor)
            log.info("order import: %d of %d orders created", len(created), len(bodies))
    except Problem:
        for start in range(0, len(created), batch_size):
            await db.write_step(orders.delete_open_orders, created[start : start + batch_size])
        log.info("order import undone: %d orders removed", len(created))
        raise
    if allocate:
        for done, batch in enumerate(batches, start=1):
            await db.write_step(_allocate_batch, [b.number for b in batch])
            log.info("order import: %d of %d batches allocated", done, len(batches))
    return created


def check_importable(
    session: Session,
    bodies: Sequence[schemas.OrderCreate],
    rows: Mapping[str, Sequence[int]] | None = None,
) -> None:
    """Every order number new and once in the file, every SKU known and lot-controlled
    where a lot is asked for; all that is wrong is listed in the problem's `errors`, each
    with its `order` (and `sku`), and with the file's `row` when `rows` says where each
    order line came from."""
    rows = rows or {}

    def row_of(number: str, line: int = 0) -> dict[str, int]:
        found = rows.get(number, ())
        return {"row": found[line]} if line < len(found) else {}

    numbers = [b.number for b in bodies]
    if len(set(numbers)) != len(numbers):
        raise Invalid("an order number appears twice", code="duplicate_order")
    taken = _existing(session, Order.number, numbers)
    if taken:
        raise Conflict(
            f"order {sorted(taken)[0]} already exists"
            + (f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""),
            code="duplicate_order",
            errors=_by_row(
                [{**row_of(n), "order": n, "msg": "already exists"} for n in sorted(taken)]
            ),
        )
    codes = {line.sku for body in bodies for line in body.lines}
    skus = {
        sku.code: sku
        for chunk in _chunks(sorted(codes))
        for sku in session.scalars(select(Sku).where(Sku.code.in_(chunk)))
    }
    unknown = sorted(codes - skus.keys())
    if unknown:
        if rows:  # one error per row that names an unknown SKU
            errors = [
                {**row_of(b.number, i), "order": b.number, "sku": line.sku, "msg": "unknown SKU"}
                for b in bodies
                for i, line in enumerate(b.lines)
                if line.sku not in skus
            ]
        else:
            errors = [{"sku": code, "msg": "unknown SKU"} for code in unknown]
        raise NotFound(
            f"no SKU {unknown[0]}" + (f" (and {len(unknown) - 1} more)" if unknown[1:] else ""),
            code="sku_not_found",
            errors=_by_row(errors),
        )
    lotless = [
        {**row_of(b.number, i), "order": b.number, "sku": line.sku, "msg": "SKU has no lots"}
        for b in bodies
        for i, line in enumerate(b.lines)
        if line.lot and not skus[line.sku].lot_controlled
    ]
    if lotless:
        raise Invalid(
            f"SKU {lotless[0]['sku']} has no lots", code="lot_not_allowed", errors=_by_row(lotless)
        )


def _by_row(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors in the file's order, at most MAX_ROW_ERRORS of them."""
    return sorted(errors, key=lambda e: e.get("row", 0))[: orders.MAX_ROW_ERRORS]


def _create_batch(session: Session, bodies: Sequence[schemas.OrderCreate], actor: str) -> list[str]:
    return [orders.create_order(session, body, actor=actor).number for body in bodies]


def _allocate_batch(session: Session, numbers: list[str]) -> None:
    for number in numbers:
        allocation.allocate_order(session, number)


def _existing(session: Session, column: Any, values: list[str]) -> set[str]:
    return {
        value
        for chunk in _chunks(values)
        for value in session.scalars(select(column).where(column.in_(chunk)))
    }


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + LOOKUP_CHUNK] for i in range(0, len(values), LOOKUP_CHUNK)]
