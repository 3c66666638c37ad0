"""The inventory contract as outside checks use it: warehouses, locations, SKUs, receipts,
movements, stock, the ledger, adjustments, transfers and reconciliation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import auth, make_warehouse, receive, stock_at


def test_locations_get_check_digits_unique_within_their_zone(client: TestClient) -> None:
    codes = tuple(f"A-{n:02d}" for n in range(1, 41))
    made = make_warehouse(client, locations=codes)
    digits = [loc["check_digits"] for loc in made["locations"]]
    assert all(d.isdigit() and len(d) in (2, 3) for d in digits)
    assert len(set(digits)) == len(digits)


def test_given_check_digits_are_kept_and_validated(client: TestClient) -> None:
    make_warehouse(client, locations=())
    admin = auth(client, "admin")
    ok = client.post(
        "/api/v1/warehouses/LAX/locations",
        json={"code": "B-1", "aisle": "1", "check_digits": "57"},
        headers=admin,
    )
    assert ok.json()["check_digits"] == "57"
    same_aisle = client.post(
        "/api/v1/warehouses/LAX/locations",
        json={"code": "B-2", "aisle": "1", "check_digits": "57"},
        headers=admin,
    )
    assert same_aisle.status_code == 409
    assert same_aisle.json()["code"] == "check_digits_in_use"
    bad = client.post(
        "/api/v1/warehouses/LAX/locations", json={"code": "B-3", "check_digits": "5"}, headers=admin
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


def test_move_then_stock_and_ledger_agree(client: TestClient) -> None:
    make_warehouse(client)
    assert receive(client, "LAX", "SKU-1", "A-01", 10).status_code == 201
    moved = client.post(
        "/api/v1/movements",
        json={
            "warehouse": "LAX",
            "sku": "SKU-1",
            "from_location": "A-01",
            "to_location": "A-02",
            "quantity": 4,
            "reason": "replenish",
        },
        headers=auth(client, "picker"),
    )
    assert moved.status_code == 201, moved.text
    body = moved.json()
    assert (body["from_location"], body["to_location"], body["quantity"]) == ("A-01", "A-02", 4)
    assert body["actor"] == "picker"
    assert stock_at(client, "LAX", "SKU-1", "A-01") == 6
    assert stock_at(client, "LAX", "SKU-1", "A-02") == 4

    ledger = client.get(
        "/api/v1/movements",
        params={"warehouse": "LAX", "sku": "SKU-1"},
        headers=auth(client, "supervisor"),
    ).json()
    assert ledger["total"] == 2
    assert [m["kind"] for m in ledger["items"]] == ["move", "receipt"]  # newest first
    reconcile = client.get("/api/v1/reconcile", headers=auth(client, "manager")).json()
    assert reconcile["consistent"] is True


def test_moving_more_than_available_is_a_409_and_changes_nothing(client: TestClient) -> None:
    make_warehouse(client)
    receive(client, "LAX", "SKU-1", "A-01", 3)
    refused = client.post(
        "/api/v1/movements",
        json={
            "warehouse": "LAX",
            "sku": "SKU-1",
            "from_location": "A-01",
            "to_location": "A-02",
            "quantity": 4,
            "reason": "replenish",
        },
        headers=auth(client, "supervisor"),
    )
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "insufficient_stock"
    assert problem["type"].endswith("insufficient_stock")
    assert refused.headers["content-type"] == "application/problem+json"
    assert stock_at(client, "LAX", "SKU-1", "A-01") == 3
    assert stock_at(client, "LAX", "SKU-1", "A-02") == 0


def test_receipt_inspection_splits_good_damaged_and_quarantined(client: TestClient) -> None:
    make_warehouse(client)
    response = receive(client, "LAX", "SKU-1", "A-01", 7, damaged=2, quarantined=1)
    assert response.status_code == 201, response.text
    assert response.json()["lines"][0]["counted"] == 10
    assert stock_at(client, "LAX", "SKU-1", "A-01") == 7
    assert stock_at(client, "LAX", "SKU-1", "DAMAGED") == 2
    assert stock_at(client, "LAX", "SKU-1", "QUARANTINE") == 1


def test_lot_controlled_skus_need_a_lot_and_keep_its_expiry(client: TestClient) -> None:
    make_warehouse(client, skus=())
    client.post(
        "/api/v1/skus",
        json={"sku": "SERUM", "description": "Face serum", "lot_controlled": True},
        headers=auth(client, "admin"),
    )
    missing = receive(client, "LAX", "SERUM", "A-01", 5)
    assert missing.status_code == 422 and missing.json()["code"] == "lot_required"
    ok = receive(client, "LAX", "SERUM", "A-01", 5, lot="L1", expiry="2027-03-01")
    assert ok.status_code == 201
    items = client.get(
        "/api/v1/stock", params={"sku": "SERUM"}, headers=auth(client, "picker")
    ).json()["items"]
    assert [(i["lot"], i["expiry"], i["quantity"]) for i in items] == [("L1", "2027-03-01", 5)]
    clash = receive(client, "LAX", "SERUM", "A-02", 1, lot="L1", expiry="2028-01-01")
    assert clash.status_code == 409 and clash.json()["code"] == "lot_expiry_mismatch"


def test_serialised_units_move_by_serial(client: TestClient) -> None:
    make_warehouse(client, skus=())
    admin = auth(client, "admin")
    client.post(
        "/api/v1/skus",
        json={"sku": "WATCH", "description": "Smart watch", "serialized": True},
        headers=admin,
    )
    assert receive(client, "LAX", "WATCH", "A-01", 2, serials=["S1", "S2"]).status_code == 201
    move = {
        "warehouse": "LAX",
        "sku": "WATCH",
        "from_location": "A-01",
        "to_location": "A-02",
        "quantity": 1,
        "reason": "move",
    }
    assert client.post("/api/v1/movements", json=move, headers=admin).json()["code"] == (
        "serials_required"
    )
    moved = client.post("/api/v1/movements", json={**move, "serials": ["S2"]}, headers=admin)
    assert moved.status_code == 201 and moved.json()["serials"] == ["S2"]
    again = client.post("/api/v1/movements", json={**move, "serials": ["S2"]}, headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "serial_elsewhere"

    listed = client.get(
        "/api/v1/serials",
        params={"warehouse": "LAX", "location": "A-01"},
        headers=auth(client, "supervisor"),
    ).json()
    assert listed["total"] == 1
    assert listed["items"] == [
        {"serial": "S1", "sku": "WATCH", "lot": None, "warehouse": "LAX", "location": "A-01"}
    ]
    everywhere = client.get("/api/v1/serials", params={"sku": "WATCH"}, headers=admin).json()
    assert [(i["serial"], i["location"]) for i in everywhere["items"]] == [
        ("S1", "A-01"),
        ("S2", "A-02"),
    ]
    found = client.get("/api/v1/serials", params={"serial": "S2"}, headers=admin).json()
    assert [(i["serial"], i["location"]) for i in found["items"]] == [("S2", "A-02")]


def test_adjustments_need_a_reason_and_never_go_negative(client: TestClient) -> None:
    make_warehouse(client)
    receive(client, "LAX", "SKU-1", "A-01", 2)
    supervisor = auth(client, "supervisor")
    body = {"warehouse": "LAX", "sku": "SKU-1", "location": "A-01"}
    lost = client.post(
        "/api/v1/adjustments", json={**body, "quantity": -3, "reason": "lost"}, headers=supervisor
    )
    assert lost.status_code == 409
    found = client.post(
        "/api/v1/adjustments", json={**body, "quantity": 5, "reason": "found"}, headers=supervisor
    )
    assert found.status_code == 201 and found.json()["reason"] == "found"
    unknown = client.post(
        "/api/v1/adjustments", json={**body, "quantity": 1, "reason": "magic"}, headers=supervisor
    )
    assert unknown.status_code == 422
    assert stock_at(client, "LAX", "SKU-1", "A-01") == 7


def test_transfer_ships_into_transit_and_records_discrepancies(client: TestClient) -> None:
    make_warehouse(client, "SZX")
    make_warehouse(client, "LAX")
    receive(client, "SZX", "SKU-1", "A-01", 20)
    supervisor = auth(client, "supervisor")
    shipped = client.post(
        "/api/v1/transfers",
        json={
            "from_warehouse": "SZX",
            "to_warehouse": "LAX",
            "lines": [{"sku": "SKU-1", "from_location": "A-01", "quantity": 12}],
        },
        headers=supervisor,
    )
    assert shipped.status_code == 201, shipped.text
    transfer = shipped.json()
    assert transfer["status"] == "in_transit"
    assert stock_at(client, "SZX", "SKU-1", "IN-TRANSIT") == 12

    received = client.post(
        f"/api/v1/transfers/{transfer['id']}/receive",
        json={"lines": [{"line": 1, "to_location": "A-03", "quantity": 9, "damaged": 1}]},
        headers=supervisor,
    )
    assert received.status_code == 200, received.text
    result = received.json()
    assert result["status"] == "received_with_discrepancy"
    assert result["lines"][0]["discrepancy"] == 2
    assert stock_at(client, "SZX", "SKU-1", "IN-TRANSIT") == 0
    assert stock_at(client, "LAX", "SKU-1", "A-03") == 9
    assert stock_at(client, "LAX", "SKU-1", "DAMAGED") == 1
    twice = client.post(
        f"/api/v1/transfers/{transfer['id']}/receive",
        json={"lines": [{"line": 1, "to_location": "A-03", "quantity": 9}]},
        headers=supervisor,
    )
    assert twice.status_code == 409
    assert client.get("/api/v1/reconcile", headers=supervisor).json()["consistent"] is True


def test_lists_paginate(client: TestClient) -> None:
    make_warehouse(client, locations=tuple(f"A-{n:02d}" for n in range(1, 8)))
    supervisor = auth(client, "supervisor")
    first = client.get(
        "/api/v1/warehouses/LAX/locations", params={"limit": 5}, headers=supervisor
    ).json()
    second = client.get(
        "/api/v1/warehouses/LAX/locations", params={"limit": 5, "offset": 5}, headers=supervisor
    ).json()
    assert first["total"] == second["total"] == 11  # 7 storage + 4 system locations
    codes = [loc["code"] for loc in first["items"] + second["items"]]
    assert len(codes) == len(set(codes)) == 10


def test_unknown_things_are_problems_with_stable_codes(client: TestClient) -> None:
    # the admin works everywhere, so learns that there is no such warehouse; to anyone
    # else a warehouse they do not work in is forbidden, whether it exists or not
    response = client.get("/api/v1/warehouses/NOPE", headers=auth(client, "admin"))
    assert response.status_code == 404
    assert response.json()["code"] == "warehouse_not_found"
    response = client.get("/api/v1/warehouses/NOPE", headers=auth(client, "supervisor"))
    assert response.status_code == 403
    assert response.json()["code"] == "warehouse_forbidden"
    bad_token = client.get("/api/v1/stock", headers={"Authorization": "Bearer nonsense"})
    assert bad_token.status_code == 401 and bad_token.json()["code"] == "unauthorized"
    wrong_password = client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": "wrong"}
    )
    assert wrong_password.status_code == 401
    assert wrong_password.json()["code"] == "invalid_credentials"
