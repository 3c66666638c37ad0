"""The orders, waves and assignments HTTP API, driven like a client would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.db import make_engine, make_session_factory, transaction
from server.services import membership, users
from server.tables import Role
from tests import factories as f
from tests.factories import FRANKFURT, LOS_ANGELES

PASSWORD = "correct horse"
CSV = """order,channel,country,postcode,priority,ship_by,carrier,sku,quantity,value_cents
WEB-1,shopify,US,90001,2,2026-11-26T17:00:00Z,UPS,CASE,2,3000
WEB-1,shopify,US,90001,2,2026-11-26T17:00:00Z,UPS,CABLE,1,3000
WEB-2,amazon,DE,60311,5,,DHL,CASE,1,1500
"""


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as session:
        for name, role in (
            ("sup", Role.supervisor),
            ("mgr", Role.manager),
            ("pick1", Role.picker),
            ("pick2", Role.picker),
        ):
            users.ensure_user(session, name, PASSWORD, role, name)
        f.warehouse(session, "LAX", country="US", at=LOS_ANGELES)
        f.warehouse(session, "FRA", country="DE", at=FRANKFURT)
        for name in ("sup", "mgr", "pick1", "pick2"):
            membership.set_user_warehouses(session, name, ["LAX", "FRA"])
        f.sku(session, "CASE")
        f.sku(session, "CABLE")
        for code in ("LAX", "FRA"):
            f.stock(session, code, "A-01-03", "CASE", 10)
            f.stock(session, code, "A-01-01", "CABLE", 10)
    engine.dispose()
    settings = Settings(database_url=database_url, secret_key="k" * 48, data_dir=tmp_path)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_import_allocate_release_and_pick_over_http(client: TestClient) -> None:
    sup, mgr, pick1, pick2 = (login(client, u) for u in ("sup", "mgr", "pick1", "pick2"))

    imported = client.post(
        "/api/v1/orders/import",
        files={"file": ("orders.csv", CSV, "text/csv")},
        params={"allocate": "true"},
        headers=sup,
    )
    assert imported.status_code == 201, imported.text
    assert imported.json() == {"imported": 2, "orders": ["WEB-1", "WEB-2"]}

    order = client.get("/api/v1/orders/WEB-1", headers=mgr).json()
    assert order["status"] == "allocated"
    assert {a["warehouse"] for a in order["allocations"]} == {"LAX"}
    assert order["allocation_explanation"]["ranking"][0]["warehouse"] == "LAX"
    assert (
        client.get("/api/v1/orders/WEB-2", headers=mgr).json()["allocations"][0]["warehouse"]
        == "FRA"
    )
    listed = client.get("/api/v1/orders", params={"status": "allocated"}, headers=mgr).json()
    assert listed["total"] == 2

    # pickers may not import, managers may not release
    assert (
        client.post(
            "/api/v1/orders/import", files={"file": ("x.csv", CSV)}, headers=pick1
        ).status_code
        == 403
    )
    denied = client.post("/api/v1/waves", json={"warehouse": "LAX"}, headers=mgr)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"

    wave = client.post(
        "/api/v1/waves", json={"warehouse": "LAX", "lines_per_assignment": 5}, headers=sup
    )
    assert wave.status_code == 201, wave.text
    assignment = wave.json()["assignments"][0]
    assert [line["location"] for line in assignment["lines"]] == ["A-01-01", "A-01-03"]

    signed = client.post("/api/v1/assignments/sign-on", json={"warehouse": "LAX"}, headers=pick1)
    assert signed.status_code == 200
    number = signed.json()["number"]
    assert signed.json()["lines"][0]["check_digits"] is None  # never told to pickers
    assert client.post("/api/v1/assignments/sign-on", json={}, headers=pick2).status_code == 204
    assert client.post("/api/v1/assignments/sign-off", headers=pick2).status_code == 204
    assert client.get(f"/api/v1/assignments/{number}", headers=pick2).status_code == 403
    assert client.get("/api/v1/assignments", headers=pick2).json()["total"] == 0
    assert client.get("/api/v1/assignments", headers=mgr).json()["total"] == 1

    for line in signed.json()["lines"]:
        body = {"quantity": line["quantity"], "token": f"hs-{line['id']}"}
        first = client.post(f"/api/v1/pick-lines/{line['id']}/confirm", json=body, headers=pick1)
        again = client.post(f"/api/v1/pick-lines/{line['id']}/confirm", json=body, headers=pick1)
        assert first.status_code == again.status_code == 200, first.text
        assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
        assert first.json()["line"]["status"] == "picked"
    done = client.post(f"/api/v1/assignments/{number}/complete", headers=pick1)
    assert done.json() == {"number": number, "staging_location": "STAGE-1"}
    assert client.get("/api/v1/orders/WEB-1", headers=mgr).json()["status"] == "picked"
    reconcile = client.get("/api/v1/reconcile", headers=mgr).json()
    assert reconcile["consistent"] is True


def test_order_errors_are_problem_documents(client: TestClient) -> None:
    sup = login(client, "sup")
    body = {"number": "DUP-1", "country": "US", "lines": [{"sku": "CASE", "quantity": 1}]}
    assert client.post("/api/v1/orders", json=body, headers=sup).status_code == 201
    duplicate = client.post("/api/v1/orders", json=body, headers=sup)
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "duplicate_order")
    unknown = client.post(
        "/api/v1/orders",
        json={**body, "number": "X-2", "lines": [{"sku": "NOPE", "quantity": 1}]},
        headers=sup,
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "sku_not_found")
    bad_csv = client.post(
        "/api/v1/orders/import",
        files={"file": ("o.csv", "order,sku,quantity,country\nA-1,CASE,zero,US\n")},
        headers=sup,
    )
    assert (bad_csv.status_code, bad_csv.json()["code"]) == (422, "invalid_csv")
    assert "quantity" in bad_csv.json()["detail"]
    nothing = client.post("/api/v1/waves", json={"warehouse": "LAX"}, headers=sup)
    assert (nothing.status_code, nothing.json()["code"]) == (409, "nothing_to_release")
    policy = client.put(
        "/api/v1/allocation-policy",
        json={"rules": ["cost_first", "nearest"], "split": "never"},
        headers=sup,
    )
    assert policy.status_code == 200
    assert client.get("/api/v1/allocation-policy", headers=sup).json()["rules"] == [
        "cost_first",
        "nearest",
    ]
    allocated = client.post(
        "/api/v1/orders/DUP-1/allocate",
        json={"policy": {"rules": ["nearest"], "split": "allowed"}},
        headers=sup,
    )
    assert allocated.json()["allocation_explanation"]["rules"] == ["nearest"]
    again = client.post("/api/v1/orders/DUP-1/allocate", headers=sup)
    assert (again.status_code, again.json()["code"]) == (409, "order_not_allocatable")


def test_a_short_reaches_the_exception_list_and_is_resolved(client: TestClient) -> None:
    sup, mgr, pick1 = (login(client, u) for u in ("sup", "mgr", "pick1"))
    body = {"number": "S-1", "country": "US", "lines": [{"sku": "CASE", "quantity": 3}]}
    assert client.post("/api/v1/orders?allocate=true", json=body, headers=sup).status_code == 201
    assert client.post("/api/v1/waves", json={"warehouse": "LAX"}, headers=sup).status_code == 201
    line = client.post("/api/v1/assignments/sign-on", json={}, headers=pick1).json()["lines"][0]

    short = client.post(
        f"/api/v1/pick-lines/{line['id']}/short",
        json={"picked": 1, "token": "hs-short", "note": "slot almost empty"},
        headers=pick1,
    )
    assert short.status_code == 200, short.text
    exception = short.json()["exception"]
    assert (exception["kind"], exception["quantity"], exception["status"]) == ("short", 2, "open")
    assert client.get("/api/v1/exceptions", headers=pick1).status_code == 403
    listed = client.get("/api/v1/exceptions", params={"status": "open"}, headers=mgr).json()
    assert [e["id"] for e in listed["items"]] == [exception["id"]]
    resolved = client.post(
        f"/api/v1/exceptions/{exception['id']}/resolve",
        json={"resolution": "counted: 1 left, adjusted"},
        headers=mgr,
    )
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_by"] == "mgr"
    twice = client.post(
        f"/api/v1/exceptions/{exception['id']}/resolve", json={"resolution": "x"}, headers=mgr
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "already_resolved")
    stock = client.get("/api/v1/stock", params={"sku": "CASE", "warehouse": "LAX"}, headers=mgr)
    by_location = {s["location"]: (s["quantity"], s["reserved"]) for s in stock.json()["items"]}
    assert by_location == {"A-01-03": (9, 0), "STAGE-1": (1, 0)}
