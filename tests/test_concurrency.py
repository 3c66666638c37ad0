"""Stock never goes negative under concurrency: many real HTTP clients against a real server
process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random

import httpx

from tests.conftest import ServerProcess
from tests.factories import auth, make_warehouse, receive, stock_at


async def _post_all(
    url: str, headers: dict[str, str], requests: list[tuple[str, dict]]
) -> list[int]:
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as c:
        responses = await asyncio.gather(*(c.post(path, json=body) for path, body in requests))
    return [r.status_code for r in responses]


def test_fifty_clients_race_for_ten_units(server_process: ServerProcess) -> None:
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        make_warehouse(client, locations=("SRC", "DST"))
        assert receive(client, "LAX", "SKU-1", "SRC", 10).status_code == 201
        move = {
            "warehouse": "LAX",
            "sku": "SKU-1",
            "from_location": "SRC",
            "to_location": "DST",
            "quantity": 1,
            "reason": "race",
        }
        statuses = asyncio.run(
            _post_all(
                server_process.url, auth(client, "picker"), [("/api/v1/movements", move)] * 50
            )
        )
        assert statuses.count(201) == 10
        assert statuses.count(409) == 40
        assert stock_at(client, "LAX", "SKU-1", "SRC") == 0
        assert stock_at(client, "LAX", "SKU-1", "DST") == 10
        ledger = client.get(
            "/api/v1/movements",
            params={"warehouse": "LAX", "sku": "SKU-1", "limit": 100},
            headers=auth(client, "supervisor"),
        ).json()
        assert sum(1 for m in ledger["items"] if m["kind"] == "move") == 10


def test_mixed_moves_adjustments_and_receipts_keep_stock_equal_to_the_ledger(
    server_process: ServerProcess,
) -> None:
    locations = ("L1", "L2", "L3", "L4")
    rng = random.Random(7)
    with httpx.Client(base_url=server_process.url, timeout=30) as client:
        make_warehouse(client, locations=locations, skus=("SKU-1", "SKU-2"))
        for location in locations:
            for sku in ("SKU-1", "SKU-2"):
                receive(client, "LAX", sku, location, 5)
        requests: list[tuple[str, dict]] = []
        for _ in range(80):
            sku = rng.choice(("SKU-1", "SKU-2"))
            source, target = rng.sample(locations, 2)
            kind = rng.random()
            if kind < 0.6:
                requests.append(
                    (
                        "/api/v1/movements",
                        {
                            "warehouse": "LAX",
                            "sku": sku,
                            "from_location": source,
                            "to_location": target,
                            "quantity": rng.randint(1, 4),
                            "reason": "mix",
                        },
                    )
                )
            elif kind < 0.8:
                requests.append(
                    (
                        "/api/v1/adjustments",
                        {
                            "warehouse": "LAX",
                            "sku": sku,
                            "location": source,
                            "quantity": rng.choice((-3, -2, -1, 1, 2)),
                            "reason": "count_correction",
                        },
                    )
                )
            else:
                requests.append(
                    (
                        "/api/v1/receipts",
                        {
                            "warehouse": "LAX",
                            "lines": [
                                {"sku": sku, "location": target, "quantity": rng.randint(1, 3)}
                            ],
                        },
                    )
                )
        statuses = asyncio.run(_post_all(server_process.url, auth(client, "supervisor"), requests))
        assert set(statuses) <= {201, 409}, statuses
        assert statuses.count(201) > 0

        supervisor = auth(client, "supervisor")
        stock = client.get(
            "/api/v1/stock", params={"warehouse": "LAX", "limit": 500}, headers=supervisor
        ).json()["items"]
        assert all(item["quantity"] >= 0 for item in stock)
        ledger = client.get(
            "/api/v1/movements", params={"warehouse": "LAX", "limit": 500}, headers=supervisor
        ).json()
        assert ledger["total"] == 8 + statuses.count(201)
        from_ledger: dict[tuple[str, str], int] = {}
        for m in ledger["items"]:
            if m["to_location"]:
                key = (m["to_location"], m["sku"])
                from_ledger[key] = from_ledger.get(key, 0) + m["quantity"]
            if m["from_location"]:
                key = (m["from_location"], m["sku"])
                from_ledger[key] = from_ledger.get(key, 0) - m["quantity"]
        on_hand = {(item["location"], item["sku"]): item["quantity"] for item in stock}
        assert {k: v for k, v in from_ledger.items() if v} == on_hand
        assert client.get("/api/v1/reconcile", headers=supervisor).json()["consistent"] is True
