"""Demo data for `wavepick serve --demo`: three warehouses (Shenzhen, Los Angeles,
Frankfurt) with zones, locations and check digits, a catalog of SKUs (some with lots and
expiry, some serialised), stock booked through receipts so the ledger explains it, one
user per role, shipping rates, open orders to China, the US, Germany and the rest of the
EU, allocated by the default rules, and one released wave per warehouse so pickers who
sign on get assignments. Seeded once; later starts leave the data as it is."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import schemas
from server.problems import Conflict
from server.services import (
    allocation,
    catalog,
    inventory,
    membership,
    orders,
    shipping,
    users,
    waves,
)
from server.tables import Location, LocationKind, Role, Sku, Stock, Warehouse

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
# Where the demo users work: pickers on one floor each, the supervisor and the (remote)
# manager in every warehouse; the admin works everywhere without memberships.
MEMBERSHIPS = {
    "supervisor": ("SZX", "LAX", "FRA"),
    "manager": ("SZX", "LAX", "FRA"),
    "picker1": ("SZX",),
    "picker2": ("SZX",),
    "picker3": ("LAX",),
    "picker4": ("LAX",),
    "picker5": ("FRA",),
}
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
ORDER_COUNT = 90
# (country, region, postcode, latitude, longitude, carrier)
DESTINATIONS = (
    ("CN", "Shanghai", "200000", 31.2304, 121.4737, "SF"),
    ("CN", "Beijing", "100000", 39.9042, 116.4074, "SF"),
    ("US", "CA", "90001", 33.9731, -118.2479, "UPS"),
    ("US", "NY", "10001", 40.7506, -73.9972, "UPS"),
    ("US", "TX", "73301", 30.2672, -97.7431, "USPS"),
    ("DE", "BE", "10115", 52.5323, 13.3846, "DHL"),
    ("DE", "BY", "80331", 48.1374, 11.5755, "DHL"),
    ("FR", "IDF", "75001", 48.8606, 2.3376, "DPD"),
    ("NL", "NH", "1012", 52.3731, 4.8922, "DPD"),
    ("IT", "MI", "20121", 45.4685, 9.1824, "GLS"),
)
HOME_WAREHOUSE = {"CN": "SZX", "US": "LAX"}  # everyone else is served from FRA
# (warehouse, destination, up to grams, cost in cents)
RATES = (
    ("SZX", "CN", 5_000, 300),
    ("SZX", "CN", 30_000, 900),
    ("SZX", "*", 2_000, 1_500),
    ("SZX", "*", 30_000, 6_000),
    ("LAX", "US", 5_000, 800),
    ("LAX", "US", 30_000, 2_000),
    ("LAX", "*", 30_000, 7_500),
    ("FRA", "DE", 5_000, 500),
    ("FRA", "DE", 30_000, 1_200),
    ("FRA", "EU", 5_000, 900),
    ("FRA", "EU", 30_000, 2_500),
    ("FRA", "*", 30_000, 8_000),
)
LINES_PER_ASSIGNMENT = 8


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
    for username, codes in MEMBERSHIPS.items():
        membership.set_user_warehouses(session, username, codes)
    _seed_orders(session, rng)
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


def _seed_orders(session: Session, rng: random.Random) -> None:
    """Open orders for SKUs on the shelves of the destination's home warehouse, allocated
    by the default rules, then one wave per warehouse."""
    for warehouse, destination, max_weight_g, cost in RATES:
        shipping.set_shipping_rate(
            session,
            schemas.ShippingRateIn(
                warehouse=warehouse,
                destination=destination,
                max_weight_g=max_weight_g,
                cost_cents=cost,
            ),
        )
    on_shelf: dict[str, list[str]] = {}
    for code, _, _, _, _, _, _ in WAREHOUSES:
        on_shelf[code] = sorted(
            set(
                session.scalars(
                    select(Sku.code)
                    .join(Stock, Stock.sku_id == Sku.id)
                    .join(Location, Location.id == Stock.location_id)
                    .join(Warehouse, Warehouse.id == Location.warehouse_id)
                    .where(Warehouse.code == code, Location.kind == LocationKind.storage)
                )
            )
        )
    today = dt.datetime.now(dt.UTC).replace(hour=17, minute=0, second=0, microsecond=0)
    for n in range(1, ORDER_COUNT + 1):
        country, region, postcode, lat, lon, carrier = DESTINATIONS[n % len(DESTINATIONS)]
        shelf = on_shelf[HOME_WAREHOUSE.get(country, "FRA")]
        lines = [
            schemas.OrderLineIn(sku=code, quantity=rng.randint(1, 3))
            for code in rng.sample(shelf, rng.randint(1, 4))
        ]
        order = orders.create_order(
            session,
            schemas.OrderCreate(
                number=f"DEMO-{n:04d}",
                channel=rng.choice(("shopify", "amazon", "tmall", "ebay")),
                country=country,
                region=region,
                postcode=postcode,
                latitude=lat,
                longitude=lon,
                priority=rng.randint(1, 9),
                ship_by=today + dt.timedelta(days=rng.randint(0, 2)),
                carrier=carrier,
                value_cents=rng.randint(500, 50_000),
                lines=lines,
            ),
            actor="demo",
        )
        allocation.allocate_order(session, order.number)
    for code, _, _, _, _, _, _ in WAREHOUSES:
        try:
            waves.release_wave(
                session,
                code,
                waves.WaveCriteria(lines_per_assignment=LINES_PER_ASSIGNMENT),
                actor="demo",
            )
        except Conflict:  # nothing allocated there
            continue
