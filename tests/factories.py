"""Test data builders: users per role, tokens, and a small warehouse with stock."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from server.db import transaction
from server.security import hash_password
from server.services import users
from server.tables import Role, User

PASSWORD = "correct-horse-battery"
ROLES = tuple(Role)


@cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per test run


def seed_users(sessions: sessionmaker[Session]) -> None:
    """One active user per role, named after it."""
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
