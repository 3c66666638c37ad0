"""Test data builders: users per role and tokens (over HTTP), warehouses with stock and
orders (through the services, like a user would)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server import schemas
from server.db import transaction
from server.security import hash_password
from server.services import catalog, inventory, orders, users, waves
from server.tables import (
    LocationKind,
    Order,
    Role,
    Sku,
    Stock,
    User,
    Warehouse,
    WarehouseMember,
)

T = TypeVar("T")
PASSWORD = "correct-horse-battery"
ROLES = tuple(Role)

# the hello of every headset socket in the tests: protocol 1, 16 kHz PCM
HELLO = {
    "type": "hello",
    "protocol": 1,
    "device": "hs-test",
    "locale": "en-US",
    "audio": {"encoding": "pcm_s16le", "sample_rate": 16000},
}


async def next_frame(ws: Any, kind: str, within: float = 30) -> dict[str, Any]:
    """The next text frame of type `kind` on a headset socket (others passed over)."""
    async with asyncio.timeout(within):
        while True:
            message = await ws.recv()
            if isinstance(message, str) and json.loads(message)["type"] == kind:
                frame: dict[str, Any] = json.loads(message)
                return frame


@cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per test run


# The users seeded per role work in every warehouse the factories build (the admin works
# everywhere anyway), so tests about something else need not think of memberships; tests
# about warehouse scoping make users of their own.
MEMBERS = ("picker", "supervisor", "manager")


def seed_users(sessions: sessionmaker[Session]) -> None:
    """One active user per role, named after it, a member of every warehouse."""
    with transaction(sessions) as session:
        for role in ROLES:
            if users.get_by_username(session, role.value) is None:
                session.add(
                    User(
                        username=role.value,
                        password_hash=_password_hash(),
                        role=role,
                        full_name=role.value.title(),
                        active=True,
                    )
                )
        session.flush()
        members_everywhere(session)


def members_everywhere(session: Session) -> None:
    """Make the seeded users (those there are) members of every warehouse."""
    have = set(session.execute(select(WarehouseMember.user_id, WarehouseMember.warehouse_id)))
    seeded = session.scalars(select(User.id).where(User.username.in_(MEMBERS))).all()
    for warehouse_id in session.scalars(select(Warehouse.id)).all():
        for user_id in seeded:
            if (user_id, warehouse_id) not in have:
                session.add(WarehouseMember(user_id=user_id, warehouse_id=warehouse_id))
    session.flush()


def user(
    client: TestClient | httpx.Client, username: str, role: str, *warehouses: str
) -> dict[str, str]:
    """A user of `role` working in `warehouses`, created by the admin over the API; their
    auth headers."""
    created = client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "role": role, "warehouses": warehouses},
        headers=auth(client, "admin"),
    )
    assert created.status_code == 201, created.text
    return auth(client, username)


def join(client: TestClient | httpx.Client, code: str, *usernames: str) -> None:
    """Add warehouse `code` to the memberships of `usernames`, over the API as an admin."""
    admin = auth(client, "admin")
    listed = client.get("/api/v1/users", params={"limit": 500}, headers=admin)
    assert listed.status_code == 200, listed.text
    current = {u["username"]: u["warehouses"] for u in listed.json()["items"]}
    for username in usernames:
        if username in current:
            response = client.put(
                f"/api/v1/users/{username}/warehouses",
                json={"warehouses": [*current[username], code]},
                headers=admin,
            )
            assert response.status_code == 200, response.text


_tokens: dict[str, str] = {}


def token(client: TestClient | httpx.Client, username: str) -> str:
    """A bearer token got through the real password grant. Every test server signs with
    the same test key and has the same users, so one token per user serves them all."""
    key = username
    if key not in _tokens:
        response = client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        _tokens[key] = response.json()["access_token"]
    return _tokens[key]


def auth(client: TestClient | httpx.Client, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client, username)}"}


def socket_ticket(url: str, headers: dict[str, str]) -> str:
    """A one-use socket ticket from the server at `url`, for the bearer of `headers`."""
    with httpx.Client(base_url=url, timeout=30) as http:
        issued = http.post("/api/v1/auth/ticket", headers=headers)
        assert issued.status_code == 200, issued.text
        ticket: str = issued.json()["ticket"]
        return ticket


def make_warehouse(
    client: TestClient | httpx.Client,
    code: str = "LAX",
    *,
    locations: tuple[str, ...] = ("A-01", "A-02", "A-03"),
    skus: tuple[str, ...] = ("SKU-1",),
) -> dict[str, Any]:
    """A warehouse with storage locations and plain SKUs, created through the API."""
    admin = auth(client, "admin")
    created = client.post(
        "/api/v1/warehouses",
        json={
            "code": code,
            "name": f"Warehouse {code}",
            "country": "US",
            "timezone": "America/Los_Angeles",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    join(client, code, *MEMBERS)
    result: dict[str, Any] = {"warehouse": created.json(), "locations": []}
    for location in locations:
        response = client.post(
            f"/api/v1/warehouses/{code}/locations", json={"code": location}, headers=admin
        )
        assert response.status_code == 201, response.text
        result["locations"].append(response.json())
    for sku in skus:
        if client.get(f"/api/v1/skus/{sku}", headers=admin).status_code == 404:
            response = client.post(
                "/api/v1/skus", json={"sku": sku, "description": f"Item {sku}"}, headers=admin
            )
            assert response.status_code == 201, response.text
    return result


def receive(
    client: TestClient | httpx.Client,
    warehouse: str,
    sku: str,
    location: str,
    quantity: int,
    **extra: Any,
) -> httpx.Response:
    line = {"sku": sku, "location": location, "quantity": quantity, **extra}
    return client.post(
        "/api/v1/receipts",
        json={"warehouse": warehouse, "lines": [line]},
        headers=auth(client, "supervisor"),
    )


def stock_at(client: TestClient | httpx.Client, warehouse: str, sku: str, location: str) -> int:
    response = client.get(
        "/api/v1/stock",
        params={"warehouse": warehouse, "sku": sku, "location": location},
        headers=auth(client, "supervisor"),
    )
    assert response.status_code == 200, response.text
    return sum(item["quantity"] for item in response.json()["items"])


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
    members_everywhere(session)
    return created


def sku(
    session: Session, code: str, *, lots: bool = False, serials: bool = False, weight_g: int = 500
) -> Sku:
    return catalog.create_sku(
        session,
        code=code,
        description=f"{code} item",
        lot_controlled=lots,
        serialized=serials,
        weight_g=weight_g,
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
    serials: tuple[str, ...] = (),
) -> None:
    """Receive `quantity` units (with one serial each for a serialised SKU)."""
    inventory.receive(
        session,
        schemas.ReceiptCreate(
            warehouse=warehouse_code,
            lines=[
                schemas.ReceiptLineIn(
                    sku=sku_code,
                    location=location,
                    quantity=quantity,
                    lot=lot,
                    expiry=expiry,
                    serials=list(serials),
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


@dataclass(frozen=True)
class FloorLine:
    location: str
    check_digits: str
    quantity: int
    sku: str


PICK_PLAN = (
    ("A-01-01", "57", "CASE", 3),
    ("A-01-02", "31", "CABLE", 2),
    ("A-01-03", "84", "LAMP", 4),
)


def pick_floor(
    database_url: str,
    plan: tuple[tuple[str, str, str, int], ...] = PICK_PLAN,
    serials: dict[str, tuple[str, ...]] | None = None,
    *,
    orders: int = 1,
) -> list[FloorLine]:
    """LAX with one released assignment for a picker to pick by headset: one line per
    (location, check digits, SKU, quantity) of `plan`, in walking order; check digits are
    fixed so a speaking client knows them. Each slot holds 10 units, except that SKUs in
    `serials` are serialised and hold the units of those serials.

    With `orders` > 1 the plan is cut into that many orders HS-1, HS-2, ... of as many
    consecutive lines each, all allocated; only HS-1 is released (one assignment), each
    `release_next_order` releases the next as an assignment of its own."""
    from server.db import make_engine, make_session_factory
    from server.services import allocation

    if orders < 1 or len(plan) % orders:
        raise ValueError(f"cannot cut {len(plan)} lines into {orders} equal orders")
    serials = serials or {}
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    seed_users(sessions)
    with transaction(sessions) as session:
        lax = catalog.create_warehouse(
            session,
            code="LAX",
            name="Los Angeles",
            country="US",
            timezone="America/Los_Angeles",
            latitude=LOS_ANGELES[0],
            longitude=LOS_ANGELES[1],
        )
        members_everywhere(session)
        for n, (location, digits, code, _quantity) in enumerate(plan, start=1):
            catalog.create_location(
                session,
                lax,
                catalog.LocationSpec(
                    code=location,
                    aisle="01",
                    slot=f"{n:02d}",
                    pick_sequence=n * 10,
                    check_digits=digits,
                ),
            )
            units = serials.get(code, ())
            sku(session, code, serials=bool(units))
            stock(session, "LAX", location, code, len(units) or 10, serials=units)
        catalog.create_location(
            session,
            lax,
            catalog.LocationSpec(
                code="STAGE-1", zone="STAGE", kind=LocationKind.staging, check_digits="11"
            ),
        )
        size = len(plan) // orders
        for n in range(orders):
            lines = plan[n * size : (n + 1) * size]
            order(session, f"HS-{n + 1}", [(code, quantity) for _l, _d, code, quantity in lines])
    with transaction(sessions) as session:
        for n in range(orders):
            allocation.allocate_order(session, f"HS-{n + 1}")
    engine.dispose()
    release_next_order(database_url)
    return [
        FloorLine(location, digits, quantity, code) for location, digits, code, quantity in plan
    ]


def release_next_order(database_url: str) -> None:
    """Release the next allocated order of `pick_floor` as a wave (one assignment)."""
    from server.db import make_engine, make_session_factory

    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as session:
        criteria = waves.WaveCriteria(max_orders=1)
        waves.release_wave(session, "LAX", criteria, actor="supervisor")
    engine.dispose()


def at_once(*calls: Callable[[], T]) -> tuple[list[T], list[BaseException]]:
    """Run each call in its own thread, all let go together by a barrier so that they
    really race; what they returned, and what they raised."""
    barrier = threading.Barrier(len(calls))
    results: list[T] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], T]) -> None:
        try:
            barrier.wait()
            results.append(call())
        except BaseException as exc:  # handed to the test, which says what it expects
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a racing call did not finish"
    return results, errors
