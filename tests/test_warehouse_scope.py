"""Warehouse membership over a real server process (SQLite and PostgreSQL): the admin
manages who works where through the users API, a change applies to the next request, and
work is handed out — by the REST sign-on and by the headset — only from the picker's own
warehouses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import ServerProcess
from tests.factories import HELLO, auth, make_warehouse, next_frame, pick_floor, user


@pytest.fixture
def floor(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """LAX with one released assignment (`pick_floor`), and FRA with nothing to pick; the
    seeded users work in both."""
    pick_floor(database_url)
    server = ServerProcess(database_url, tmp_path)
    with httpx.Client(base_url=server.url) as http:
        make_warehouse(http, "FRA")
    yield server
    server.stop()


def test_the_admin_manages_memberships_through_the_users_api(floor: ServerProcess) -> None:
    with httpx.Client(base_url=floor.url) as http:
        admin = auth(http, "admin")
        lead = user(http, "lead-fra", "supervisor", "FRA")
        me = http.get("/api/v1/users/me", headers=lead).json()
        assert (me["role"], me["warehouses"]) == ("supervisor", ["FRA"])
        assert http.get("/api/v1/stock?warehouse=FRA", headers=lead).status_code == 200
        refused = http.get("/api/v1/stock?warehouse=LAX", headers=lead)
        assert (refused.status_code, refused.json()["code"]) == (403, "warehouse_forbidden")

        # a change applies to the very next request, with the same token
        moved = http.put(
            "/api/v1/users/lead-fra/warehouses", json={"warehouses": ["LAX"]}, headers=admin
        )
        assert moved.status_code == 200 and moved.json()["warehouses"] == ["LAX"]
        assert http.get("/api/v1/stock?warehouse=LAX", headers=lead).status_code == 200
        assert http.get("/api/v1/stock?warehouse=FRA", headers=lead).status_code == 403
        listed = http.get("/api/v1/users", params={"limit": 500}, headers=admin).json()["items"]
        assert {u["username"]: u["warehouses"] for u in listed}["lead-fra"] == ["LAX"]

        unknown = http.put(
            "/api/v1/users/lead-fra/warehouses", json={"warehouses": ["NOPE"]}, headers=admin
        )
        assert (unknown.status_code, unknown.json()["code"]) == (404, "warehouse_not_found")
        nobody = http.put("/api/v1/users/nobody/warehouses", json={"warehouses": []}, headers=admin)
        assert (nobody.status_code, nobody.json()["code"]) == (404, "user_not_found")
        created = http.post(
            "/api/v1/users",
            json={
                "username": "x",
                "password": "long-password",
                "role": "picker",
                "warehouses": ["NOPE"],
            },
            headers=admin,
        )
        assert created.status_code == 404  # and the user was not created:
        listed = http.get("/api/v1/users", params={"limit": 500}, headers=admin).json()["items"]
        assert "x" not in {u["username"] for u in listed}
        for role in ("supervisor", "manager", "picker"):
            forbidden = http.put(
                "/api/v1/users/lead-fra/warehouses",
                json={"warehouses": ["FRA"]},
                headers=auth(http, role),
            )
            assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")


def test_sign_on_hands_out_work_only_from_the_pickers_warehouses(floor: ServerProcess) -> None:
    with httpx.Client(base_url=floor.url) as http:
        fra_picker = user(http, "picker-fra", "picker", "FRA")
        # LAX has a ready assignment, but not for someone who works in FRA
        assert (
            http.post("/api/v1/assignments/sign-on", json={}, headers=fra_picker).status_code == 204
        )
        refused = http.post(
            "/api/v1/assignments/sign-on", json={"warehouse": "LAX"}, headers=fra_picker
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "warehouse_forbidden")
        taken = http.post("/api/v1/assignments/sign-on", json={}, headers=auth(http, "picker"))
        assert taken.status_code == 200 and taken.json()["warehouse"] == "LAX"


async def _first_prompt(url: str, token: str) -> dict[str, Any]:
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**22
    ) as ws:
        await ws.send(json.dumps(HELLO))
        prompt = await next_frame(ws, "prompt")
        await ws.send(json.dumps({"type": "bye"}))
        return prompt


def test_the_headset_hands_out_work_only_from_the_pickers_warehouses(
    floor: ServerProcess,
) -> None:
    url = floor.url.replace("http://", "ws://") + "/ws/headset"
    with httpx.Client(base_url=floor.url) as http:
        fra_picker = user(http, "picker-fra", "picker", "FRA")["Authorization"].split()[1]
        lax_picker = user(http, "picker-lax", "picker", "LAX")["Authorization"].split()[1]
        assert asyncio.run(_first_prompt(url, fra_picker))["state"] == "no_work"
        assert asyncio.run(_first_prompt(url, lax_picker))["state"] == "assignment"
        mine = http.get(
            "/api/v1/assignments",
            params={"status": "in_progress"},
            headers={"Authorization": f"Bearer {lax_picker}"},
        ).json()["items"]
        assert [a["warehouse"] for a in mine] == ["LAX"]


async def _answer(ws: Any, text: str) -> dict[str, Any]:
    """Say `text` (typed) and return the `heard` frame for it."""
    await ws.send(json.dumps({"type": "say", "text": text}))
    return await next_frame(ws, "heard")


def test_a_picker_taken_off_the_warehouse_mid_assignment_picks_nothing_more(
    floor: ServerProcess,
) -> None:
    url = floor.url.replace("http://", "ws://") + "/ws/headset"
    with httpx.Client(base_url=floor.url) as http:
        picker = user(http, "picker-lax", "picker", "LAX")
        token = picker["Authorization"].split()[1]
        admin = auth(http, "admin")

        async def walk() -> None:
            async with websockets.connect(
                url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**22
            ) as ws:
                await ws.send(json.dumps(HELLO))
                assert (await _answer(ws, "ready"))["accepted"]
                assert (await _answer(ws, "57"))["accepted"]  # at A-01-01
                async with httpx.AsyncClient(base_url=floor.url) as admin_http:
                    moved = await admin_http.put(
                        "/api/v1/users/picker-lax/warehouses",
                        json={"warehouses": ["FRA"]},
                        headers=admin,
                    )
                assert moved.status_code == 200, moved.text
                await _answer(ws, "3")  # the quantity: refused, nothing written
                await ws.send(json.dumps({"type": "bye"}))

        asyncio.run(walk())
        ledger = http.get("/api/v1/movements", params={"warehouse": "LAX"}, headers=admin)
        assert ledger.status_code == 200, ledger.text
        assert [m for m in ledger.json()["items"] if m["actor"] == "picker-lax"] == []
