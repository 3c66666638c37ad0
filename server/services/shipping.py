"""Shipping geography and rates: destination zones, country centroids, great-circle
distance, and the per-warehouse rate tables by destination and weight."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from server import schemas
from server.services import catalog
from server.tables import ShippingRate, Warehouse

# Destination zones for shipping rates, and rough country centroids for the `nearest` rule
# when an order carries no coordinates.
EU_COUNTRIES = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
ZONES: dict[str, frozenset[str]] = {"EU": frozenset(EU_COUNTRIES.split())}
COUNTRY_CENTROIDS: dict[str, tuple[float, float]] = {
    "CN": (35.0, 103.0),
    "HK": (22.3, 114.2),
    "JP": (36.2, 138.3),
    "KR": (36.5, 127.9),
    "SG": (1.35, 103.8),
    "AU": (-25.3, 133.8),
    "US": (39.8, -98.6),
    "CA": (56.1, -106.3),
    "MX": (23.6, -102.6),
    "BR": (-14.2, -51.9),
    "GB": (54.0, -2.0),
    "IE": (53.4, -8.2),
    "FR": (46.6, 2.2),
    "DE": (51.2, 10.4),
    "NL": (52.1, 5.3),
    "BE": (50.5, 4.5),
    "LU": (49.8, 6.1),
    "AT": (47.5, 14.6),
    "CH": (46.8, 8.2),
    "IT": (41.9, 12.6),
    "ES": (40.5, -3.7),
    "PT": (39.4, -8.2),
    "PL": (51.9, 19.1),
    "CZ": (49.8, 15.5),
    "DK": (56.3, 9.5),
    "SE": (60.1, 18.6),
    "FI": (61.9, 25.7),
    "NO": (60.5, 8.5),
    "GR": (39.1, 21.8),
    "HU": (47.2, 19.5),
    "RO": (45.9, 24.9),
}


def set_shipping_rate(session: Session, body: schemas.ShippingRateIn) -> ShippingRate:
    """Add a rate, or change the cost of the one with the same warehouse, destination and
    weight limit."""
    warehouse = catalog.get_warehouse(session, body.warehouse)
    rate = find_shipping_rate(session, body)
    if rate is None:
        rate = ShippingRate(
            warehouse_id=warehouse.id,
            destination=body.destination,
            max_weight_g=body.max_weight_g,
        )
        session.add(rate)
    rate.cost_cents = body.cost_cents
    rate.currency = body.currency
    session.flush()
    return rate


def find_shipping_rate(session: Session, body: schemas.ShippingRateIn) -> ShippingRate | None:
    """The rate with the warehouse, destination and weight limit of `body`, if any."""
    return session.scalar(
        select(ShippingRate)
        .join(Warehouse, Warehouse.id == ShippingRate.warehouse_id)
        .where(
            Warehouse.code == body.warehouse,
            ShippingRate.destination == body.destination,
            ShippingRate.max_weight_g == body.max_weight_g,
        )
    )


def rate_terms(rate: ShippingRate) -> dict[str, object]:
    """What a rate charges, as the audit trail keeps it before and after a change."""
    return {"cost_cents": rate.cost_cents, "currency": rate.currency}


def list_shipping_rates(
    session: Session, *, within: Collection[int] | None = None
) -> list[ShippingRate]:
    """Every rate, or those of the warehouses in `within` (ids), by warehouse, destination
    and weight."""
    query = (
        select(ShippingRate)
        .join(Warehouse, Warehouse.id == ShippingRate.warehouse_id)
        .options(contains_eager(ShippingRate.warehouse))
    )
    if within is not None:
        query = query.where(ShippingRate.warehouse_id.in_(within))
    rows = session.scalars(
        query.order_by(Warehouse.code, ShippingRate.destination, ShippingRate.max_weight_g)
    ).all()
    return list(rows)


def shipping_cost(
    rates: Sequence[ShippingRate], country: str, weight_g: int
) -> tuple[int | None, str | None]:
    """The cheapest rate that carries `weight_g` to `country`, from the most specific
    destination that has one (country, then zone, then "*"); and which destination."""

    def specificity(destination: str) -> int | None:
        if destination == country:
            return 2
        if country in ZONES.get(destination, ()):
            return 1
        return 0 if destination == "*" else None

    best: tuple[int, int, str] | None = None  # (-specificity, cost, destination)
    for rate in rates:
        level = specificity(rate.destination)
        if level is None or rate.max_weight_g < weight_g:
            continue
        key = (-level, rate.cost_cents, rate.destination)
        if best is None or key < best:
            best = key
    return (best[1], best[2]) if best else (None, None)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))
