"""Warehouses, zones, locations with their check digits, and SKUs."""

from __future__ import annotations

import random
import re
from collections.abc import Collection
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server import masterdata
from server.masterdata import LocationRef, SkuRef, WarehouseRef
from server.problems import Conflict, Invalid, NotFound
from server.tables import Location, LocationKind, Sku, Warehouse, Zone

SYSTEM_ZONE = "SYS"
# Every warehouse gets these locations so that inspection and transfers have somewhere to
# put stock that is not pickable.
SYSTEM_LOCATIONS = {
    LocationKind.receiving: "RECEIVING",
    LocationKind.quarantine: "QUARANTINE",
    LocationKind.damaged: "DAMAGED",
    LocationKind.transit: "IN-TRANSIT",
}
CHECK_DIGITS = re.compile(r"^\d{2,3}$")


def create_warehouse(
    session: Session,
    *,
    code: str,
    name: str,
    country: str,
    timezone: str,
    address: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
) -> Warehouse:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(f"unknown IANA time zone {timezone!r}", code="invalid_timezone") from exc
    if session.scalar(select(Warehouse.id).where(Warehouse.code == code)) is not None:
        raise Conflict(f"warehouse {code} already exists", code="duplicate")
    warehouse = Warehouse(
        code=code,
        name=name,
        country=country.upper(),
        timezone=timezone,
        address=address,
        latitude=latitude,
        longitude=longitude,
    )
    session.add(warehouse)
    session.flush()
    zone = Zone(warehouse_id=warehouse.id, code=SYSTEM_ZONE, name="System locations")
    session.add(zone)
    session.flush()
    used: set[str] = set()
    for kind, location_code in SYSTEM_LOCATIONS.items():
        digits = _free_check_digits(used, random.Random(location_code))
        used.add(digits)
        session.add(
            Location(
                warehouse_id=warehouse.id,
                zone_id=zone.id,
                code=location_code,
                kind=kind,
                check_digits=digits,
            )
        )
    session.flush()
    return warehouse


def get_warehouse(session: Session, code: str) -> Warehouse:
    warehouse = session.scalar(select(Warehouse).where(Warehouse.code == code))
    if warehouse is None:
        raise NotFound(f"no warehouse {code}", code="warehouse_not_found")
    return warehouse


def warehouse_ref(session: Session, code: str) -> WarehouseRef:
    """A warehouse's id and code, from the process's master-data cache when it has them
    (`server.masterdata`): for the write path, which needs nothing else of it."""
    found = masterdata.of(session).warehouse(session, code)
    if found is None:
        raise NotFound(f"no warehouse {code}", code="warehouse_not_found")
    return found


def sku_ref(session: Session, code: str) -> SkuRef:
    """A SKU's id, code and lot and serial rules, cached like `warehouse_ref`."""
    found = masterdata.of(session).sku(session, code)
    if found is None:
        raise NotFound(f"no SKU {code}", code="sku_not_found")
    return found


def location_ref(session: Session, warehouse: WarehouseRef, code: str) -> LocationRef:
    """A location of `warehouse` by its code, cached like `warehouse_ref`."""
    found = masterdata.of(session).location(session, warehouse, code)
    if found is None:
        raise NotFound(f"no location {code} in {warehouse.code}", code="location_not_found")
    return found


def get_or_create_zone(session: Session, warehouse: Warehouse, code: str) -> Zone:
    zone = session.scalar(select(Zone).where(Zone.warehouse_id == warehouse.id, Zone.code == code))
    if zone is None:
        zone = Zone(warehouse_id=warehouse.id, code=code, name=code)
        session.add(zone)
        session.flush()
    return zone


@dataclass(frozen=True)
class LocationSpec:
    code: str
    zone: str = "A"
    aisle: str = ""
    slot: str = ""
    level: str = ""
    pick_sequence: int | None = None
    check_digits: str | None = None
    kind: LocationKind = LocationKind.storage


def create_location(
    session: Session, warehouse: Warehouse, spec: LocationSpec, *, rng: random.Random | None = None
) -> Location:
    """Add a location. Check digits, when not given, are drawn so that no other location in
    the zone shares them while two digits suffice, and never one in the same aisle."""
    if session.scalar(
        select(Location.id).where(Location.warehouse_id == warehouse.id, Location.code == spec.code)
    ):
        raise Conflict(f"location {spec.code} already exists in {warehouse.code}", code="duplicate")
    zone = get_or_create_zone(session, warehouse, spec.zone)
    in_zone = session.execute(
        select(Location.check_digits, Location.aisle).where(Location.zone_id == zone.id)
    ).all()
    same_aisle = {digits for digits, aisle in in_zone if aisle == spec.aisle}
    if spec.check_digits is not None:
        if not CHECK_DIGITS.match(spec.check_digits):
            raise Invalid("check digits are two or three digits", code="invalid_check_digits")
        if spec.check_digits in same_aisle:
            raise Conflict(
                f"check digits {spec.check_digits} are already used in aisle {spec.aisle!r}",
                code="check_digits_in_use",
            )
        digits = spec.check_digits
    else:
        digits = _free_check_digits(
            {d for d, _ in in_zone}, rng or random.SystemRandom(), same_aisle
        )
    sequence = spec.pick_sequence
    if sequence is None:
        sequence = (
            session.scalar(
                select(Location.pick_sequence)
                .where(Location.warehouse_id == warehouse.id)
                .order_by(Location.pick_sequence.desc())
                .limit(1)
            )
            or 0
        ) + 10
    location = Location(
        warehouse_id=warehouse.id,
        zone_id=zone.id,
        code=spec.code,
        kind=spec.kind,
        aisle=spec.aisle,
        slot=spec.slot,
        level=spec.level,
        pick_sequence=sequence,
        check_digits=digits,
    )
    session.add(location)
    session.flush()
    return location


def _free_check_digits(
    used_in_zone: AbstractSet[str],
    rng: random.Random,
    used_in_aisle: AbstractSet[str] = frozenset(),
) -> str:
    for width, low, high in ((2, 10, 99), (3, 100, 999)):
        free = [
            f"{n:0{width}d}" for n in range(low, high + 1) if f"{n:0{width}d}" not in used_in_zone
        ]
        if free:
            return rng.choice(free)
    aisle_free = [f"{n}" for n in range(100, 1000) if f"{n}" not in used_in_aisle]
    if not aisle_free:
        raise Conflict("no check digits left in this aisle", code="check_digits_exhausted")
    return rng.choice(aisle_free)


def get_location(session: Session, warehouse: Warehouse, code: str) -> Location:
    location = session.scalar(
        select(Location).where(Location.warehouse_id == warehouse.id, Location.code == code)
    )
    if location is None:
        raise NotFound(f"no location {code} in {warehouse.code}", code="location_not_found")
    return location


def system_location(session: Session, warehouse: Warehouse, kind: LocationKind) -> Location:
    return get_location(session, warehouse, SYSTEM_LOCATIONS[kind])


def create_sku(
    session: Session,
    *,
    code: str,
    description: str,
    barcode: str | None = None,
    unit: str = "each",
    lot_controlled: bool = False,
    serialized: bool = False,
    length_mm: int | None = None,
    width_mm: int | None = None,
    height_mm: int | None = None,
    weight_g: int | None = None,
) -> Sku:
    if session.scalar(select(Sku.id).where(Sku.code == code)) is not None:
        raise Conflict(f"SKU {code} already exists", code="duplicate")
    if barcode and session.scalar(select(Sku.id).where(Sku.barcode == barcode)) is not None:
        raise Conflict(f"barcode {barcode} belongs to another SKU", code="duplicate_barcode")
    sku = Sku(
        code=code,
        description=description,
        barcode=barcode or None,
        unit=unit,
        lot_controlled=lot_controlled,
        serialized=serialized,
        length_mm=length_mm,
        width_mm=width_mm,
        height_mm=height_mm,
        weight_g=weight_g,
    )
    session.add(sku)
    session.flush()
    return sku


def get_sku(session: Session, code: str) -> Sku:
    sku = session.scalar(select(Sku).where(Sku.code == code))
    if sku is None:
        raise NotFound(f"no SKU {code}", code="sku_not_found")
    return sku


def list_warehouses(
    session: Session, *, limit: int, offset: int, within: Collection[int] | None = None
) -> tuple[list[Warehouse], int]:
    """A page of warehouses by code (only those of `within`, ids, when given), and how
    many in all."""
    query = select(Warehouse)
    if within is not None:
        query = query.where(Warehouse.id.in_(within))
    rows = session.scalars(query.order_by(Warehouse.code).limit(limit).offset(offset)).all()
    return list(rows), _count(session, query)


def list_locations(
    session: Session, warehouse_code: str, *, limit: int, offset: int
) -> tuple[list[Location], int]:
    """A page of a warehouse's locations in walking order, and how many in all."""
    warehouse = get_warehouse(session, warehouse_code)
    query = select(Location).where(Location.warehouse_id == warehouse.id)
    rows = session.scalars(
        query.order_by(Location.pick_sequence, Location.code).limit(limit).offset(offset)
    ).all()
    return list(rows), _count(session, query)


def list_skus(session: Session, *, limit: int, offset: int) -> tuple[list[Sku], int]:
    """A page of SKUs by code, and how many in all."""
    rows = session.scalars(select(Sku).order_by(Sku.code).limit(limit).offset(offset)).all()
    return list(rows), session.scalar(select(func.count(Sku.id))) or 0


def _count(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0
