"""Serialised units: which serials are at a slot, and finding one from the last digits a
picker reads off its label.

A label may mix letters and separators with the digits ("SZX-SN000123"); a picker can
say or key in only digits, so a suffix is matched against a serial's digits alone. The
refusals name the digits the picker gave, never a serial.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from server.problems import Conflict, NotFound
from server.tables import Location, Serial, Sku, Warehouse


def at_location(session: Session, sku_id: int, location_id: int, lot: str) -> list[str]:
    """The serials of one SKU (and lot) on the books at one location."""
    return list(
        session.scalars(
            select(Serial.serial).where(
                Serial.sku_id == sku_id, Serial.location_id == location_id, Serial.lot == lot
            )
        )
    )


def digits_of(serial: str) -> str:
    """The digits of a serial, in order: what a picker can say of it."""
    return "".join(c for c in serial if c.isascii() and c.isdigit())


def match_suffix(serials: Iterable[str], suffix: str) -> str:
    """The one serial whose digits end in `suffix`. 404 `serial_unknown` when none does,
    409 `serial_ambiguous` when several do (more digits may tell them apart)."""
    matches = [s for s in serials if digits_of(s).endswith(suffix)]
    if not matches:
        raise NotFound(f"no serial here ends in {suffix}", code="serial_unknown")
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} serials here end in {suffix}", code="serial_ambiguous")
    return matches[0]


def list_serials(
    session: Session,
    *,
    warehouse: str | None,
    location: str | None,
    sku: str | None,
    limit: int,
    offset: int,
    within: Collection[int] | None = None,
    serial: str | None = None,
) -> tuple[list[Serial], int]:
    """A page of serialised units on the books (at a location), by warehouse, location,
    SKU and serial number, each with its SKU, location and warehouse loaded; and how many
    in all."""
    query = (
        select(Serial)
        .join(Sku, Sku.id == Serial.sku_id)
        .join(Location, Location.id == Serial.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .options(
            contains_eager(Serial.sku),
            contains_eager(Serial.location).contains_eager(Location.warehouse),
        )
    )
    if within is not None:
        query = query.where(Warehouse.id.in_(within))
    if warehouse:
        query = query.where(Warehouse.code == warehouse)
    if location:
        query = query.where(Location.code == location)
    if sku:
        query = query.where(Sku.code == sku)
    if serial:
        query = query.where(Serial.serial == serial)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Warehouse.code, Location.code, Sku.code, Serial.serial)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total
