"""`Idempotency-Key`: a replayed mutation changes nothing and answers as the first time."""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient

from tests.conftest import ServerProcess
from tests.factories import auth, make_warehouse, receive, stock_at

MOVE = {
    "warehouse": "LAX",
    "sku": "SKU-1",
    "from_location": "A-01",
    "to_location": "A-02",
    "quantity": 2,
    "reason": "replenish",
}


def _ledger_size(client: TestClient | httpx.Client) -> int:
    response = client.get("/api/v1/movements", headers=auth(client, "supervisor"))
    total: int = response.json()["total"]
    return total


def test_replaying_a_mutation_changes_nothing(client: TestClient) -> None:
    make_warehouse(client)
    receive(client, "LAX", "SKU-1", "A-01", 10)
    headers = {**auth(client, "picker"), "Idempotency-Key": "move-0001"}
    first = client.post("/api/v1/movements", json=MOVE, headers=headers)
    assert first.status_code == 201
    before = _ledger_size(client)

    replay = client.post("/api/v1/movements", json=MOVE, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert _ledger_size(client) == before
    assert stock_at(client, "LAX", "SKU-1", "A-01") == 8


def test_same_key_with_another_body_is_refused(client: TestClient) -> None:
    make_warehouse(client)
    receive(client, "LAX", "SKU-1", "A-01", 10)
    headers = {**auth(client, "picker"), "Idempotency-Key": "move-0002"}
    assert client.post("/api/v1/movements", json=MOVE, headers=headers).status_code == 201
    other = client.post("/api/v1/movements", json={**MOVE, "quantity": 3}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert stock_at(client, "LAX", "SKU-1", "A-01") == 8


def test_keys_belong_to_their_user(client: TestClient) -> None:
    make_warehouse(client)
    receive(client, "LAX", "SKU-1", "A-01", 10)
    key = {"Idempotency-Key": "shared-key"}
    assert (
        client.post(
            "/api/v1/movements", json=MOVE, headers={**auth(client, "picker"), **key}
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/movements", json=MOVE, headers={**auth(client, "supervisor"), **key}
        ).status_code
        == 201
    )
    assert stock_at(client, "LAX", "SKU-1", "A-01") == 6


def test_a_refused_request_is_replayed_as_refused(client: TestClient) -> None:
    make_warehouse(client)
    headers = {**auth(client, "picker"), "Idempotency-Key": "move-empty"}
    first = client.post("/api/v1/movements", json=MOVE, headers=headers)
    assert first.status_code == 409
    receive(client, "LAX", "SKU-1", "A-01", 10)
    replay = client.post("/api/v1/movements", json=MOVE, headers=headers)
    assert replay.status_code == 409 and replay.headers["idempotent-replayed"] == "true"
    assert stock_at(client, "LAX", "SKU-1", "A-01") == 10


def test_concurrent_retries_apply_once(server_process: ServerProcess) -> None:
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        make_warehouse(client)
        receive(client, "LAX", "SKU-1", "A-01", 10)
        before = _ledger_size(client)
        headers = {**auth(client, "picker"), "Idempotency-Key": "burst-1"}

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server_process.url, timeout=60) as c:
                return await asyncio.gather(
                    *(c.post("/api/v1/movements", json=MOVE, headers=headers) for _ in range(20))
                )

        statuses = [r.status_code for r in asyncio.run(burst())]
        assert statuses.count(201) >= 1
        assert set(statuses) <= {201, 409}  # 409: the first one was still running
        assert _ledger_size(client) == before + 1
        assert stock_at(client, "LAX", "SKU-1", "A-01") == 8
