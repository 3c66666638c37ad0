"""Small builders for test data, going through the services like a user would."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import schemas
from server.services import catalog, inventory, orders
from server.tables import LocationKind, Order, Sku, Stock, Warehouse

# Real coordinates: what the `nearest` rule measures.
SHENZHEN = (22.5431, 114.0579)
LOS_ANGELES = (34.0633, -117.6509)
FRANKFURT = (50.1109, 8.6821)


def warehouse(
    session: Session,
    code: str,
    *,
    country: str,
    at: tuple[float, float],
    slots: int = 6,
    timezone: str = "UTC",
) -> Warehouse:
    """A warehouse with `slots` storage locations A-01-01... in walking order (pick
    sequence 10, 20, ...) and one staging location STAGE-1."""
    created = catalog.create_warehouse(
        session,
        code=code,
        name=code,
        country=country,
        timezone=timezone,
        latitude=at[0],
        longitude=at[1],
    )
    rng = random.Random(code)
    for n in range(1, slots + 1):
        catalog.create_location(
            session,
            created,
            catalog.LocationSpec(
                code=f"A-01-{n:02d}", aisle="01", slot=f"{n:02d}", pick_sequence=n * 10
            ),
            rng=rng,
        )
    catalog.create_location(
        session,
        created,
        catalog.LocationSpec(code="STAGE-1", zone="STAGE", kind=LocationKind.staging),
        rng=rng,
    )
    return created


def sku(session: Session, code: str, *, lots: bool = False, weight_g: int = 500) -> Sku:
    return catalog.create_sku(
        session, code=code, description=f"{code} item", lot_controlled=lots, weight_g=weight_g
    )


def stock(
    session: Session,
    warehouse_code: str,
    location: str,
    sku_code: str,
    quantity: int,
    *,
    lot: str | None = None,
    expiry: dt.date | None = None,
) -> None:
    inventory.receive(
        session,
        schemas.ReceiptCreate(
            warehouse=warehouse_code,
            lines=[
                schemas.ReceiptLineIn(
                    sku=sku_code, location=location, quantity=quantity, lot=lot, expiry=expiry
                )
            ],
        ),
        actor="test",
    )


def order(
    session: Session,
    number: str,
    lines: list[tuple[str, int]] | list[schemas.OrderLineIn],
    *,
    country: str = "US",
    **fields: Any,
) -> Order:
    items = [
        line
        if isinstance(line, schemas.OrderLineIn)
        else schemas.OrderLineIn(sku=line[0], quantity=line[1])
        for line in lines
    ]
    return orders.create_order(
        session,
        schemas.OrderCreate(number=number, country=country, lines=items, **fields),
        actor="test",
    )


def reserved(session: Session, sku_code: str) -> tuple[int, int]:
    """(on hand, reserved) of a SKU across every location."""
    rows = session.execute(
        select(Stock.quantity, Stock.reserved).join(Sku).where(Sku.code == sku_code)
    ).all()
    return sum(r[0] for r in rows), sum(r[1] for r in rows)
