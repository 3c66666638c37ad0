"""Demo data for `wavepick serve --demo`: three warehouses (Shenzhen, Los Angeles,
Frankfurt) with zones, locations and check digits, a catalog of SKUs (some with lots and
expiry, some serialised), stock booked through receipts so the ledger explains it, and
one user per role. Seeded once; later starts leave the data as it is."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import schemas
from server.services import catalog, inventory, users
from server.tables import LocationKind, Role, Sku, Warehouse

WAREHOUSES = (
    ("SZX", "Shenzhen Home", "CN", "Asia/Shanghai", "Bao'an, Shenzhen", 22.5431, 114.0579),
    ("LAX", "Los Angeles", "US", "America/Los_Angeles", "Ontario, CA", 34.0633, -117.6509),
    ("FRA", "Frankfurt", "DE", "Europe/Berlin", "Frankfurt am Main", 50.1109, 8.6821),
)
ZONES = ("A", "B")
AISLES_PER_ZONE = 5
SLOTS_PER_AISLE = 10
STAGING_AREAS = 3
USERS = (
    ("admin", Role.admin, "Ada Admin"),
    ("supervisor", Role.supervisor, "Sam Supervisor"),
    ("manager", Role.manager, "Mia Manager"),
    *((f"picker{n}", Role.picker, f"Picker {n}") for n in range(1, 6)),
)
PRODUCTS = (
    ("Phone case", "each", False, False),
    ("USB-C cable 1m", "each", False, False),
    ("Face serum 30ml", "each", True, False),
    ("Vitamin C tablets", "bottle", True, False),
    ("Bluetooth earbuds", "each", False, True),
    ("LED desk lamp", "each", False, False),
    ("Yoga mat", "each", False, False),
    ("Smart watch", "each", False, True),
    ("Green tea 100g", "tin", True, False),
    ("Sticker pack", "pack", False, False),
)
SKU_COUNT = 300


@dataclass(frozen=True)
class DemoSummary:
    seeded: bool
    users: tuple[str, ...]


def seed(session: Session, *, password: str, rng: random.Random | None = None) -> DemoSummary:
    """Seed the demo unless it is already there; users are (re)ensured either way."""
    for username, role, name in USERS:
        users.ensure_user(session, username, password, role, name)
    names = tuple(u[0] for u in USERS)
    if session.scalar(select(Warehouse.id).where(Warehouse.code == WAREHOUSES[0][0])):
        return DemoSummary(seeded=False, users=names)
    rng = rng or random.Random(4127)
    skus = _seed_skus(session, rng)
    for code, name, country, tz, address, lat, lon in WAREHOUSES:
        warehouse = catalog.create_warehouse(
            session,
            code=code,
            name=name,
            country=country,
            timezone=tz,
            address=address,
            latitude=lat,
            longitude=lon,
        )
        locations = _seed_locations(session, warehouse, rng)
        _seed_stock(session, warehouse.code, locations, skus, rng)
    return DemoSummary(seeded=True, users=names)


def _seed_skus(session: Session, rng: random.Random) -> list[Sku]:
    skus = []
    for n in range(1, SKU_COUNT + 1):
        name, unit, lots, serials = PRODUCTS[n % len(PRODUCTS)]
        skus.append(
            catalog.create_sku(
                session,
                code=f"SKU-{n:04d}",
                description=f"{name} #{n}",
                barcode=f"69{n:011d}",
                unit=unit,
                lot_controlled=lots,
                serialized=serials,
                weight_g=rng.randint(20, 2500),
                length_mm=rng.randint(20, 400),
                width_mm=rng.randint(20, 300),
                height_mm=rng.randint(5, 200),
            )
        )
    return skus


def _seed_locations(session: Session, warehouse: Warehouse, rng: random.Random) -> list[str]:
    codes = []
    sequence = 0
    for zone in ZONES:
        for aisle in range(1, AISLES_PER_ZONE + 1):
            # serpentine walk: odd aisles up, even aisles down
            slots = range(1, SLOTS_PER_AISLE + 1)
            for slot in slots if aisle % 2 else reversed(slots):
                sequence += 10
                code = f"{zone}-{aisle:02d}-{slot:02d}"
                catalog.create_location(
                    session,
                    warehouse,
                    catalog.LocationSpec(
                        code=code,
                        zone=zone,
                        aisle=f"{aisle:02d}",
                        slot=f"{slot:02d}",
                        level="1",
                        pick_sequence=sequence,
                    ),
                    rng=rng,
                )
                codes.append(code)
    for n in range(1, STAGING_AREAS + 1):
        catalog.create_location(
            session,
            warehouse,
            catalog.LocationSpec(
                code=f"STAGE-{n}",
                zone="STAGE",
                kind=LocationKind.staging,
                pick_sequence=100_000 + n,
            ),
            rng=rng,
        )
    return codes


def _seed_stock(
    session: Session, warehouse: str, locations: list[str], skus: list[Sku], rng: random.Random
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    lines = []
    serial = 0
    for location in locations:
        for sku in rng.sample(skus, 2):
            quantity = rng.randint(5, 60)
            lot = expiry = None
            serials: list[str] = []
            if sku.lot_controlled:
                lot = f"L{rng.randint(1000, 9999)}"
                expiry = today + dt.timedelta(days=rng.randint(30, 720))
            if sku.serialized:
                quantity = rng.randint(2, 8)
                serials = [f"{warehouse}-SN{serial + i:06d}" for i in range(quantity)]
                serial += quantity
            lines.append(
                schemas.ReceiptLineIn(
                    sku=sku.code,
                    location=location,
                    quantity=quantity,
                    lot=lot,
                    expiry=expiry,
                    serials=serials,
                )
            )
    inventory.receive(
        session,
        schemas.ReceiptCreate(
            warehouse=warehouse, reference=f"DEMO-OPENING-{warehouse}", lines=lines
        ),
        actor="demo",
    )
