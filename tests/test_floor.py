"""`GET /api/v1/floor`: the pickers on shift with their progress, on SQLite and PostgreSQL.
A picker works through the HTTP API, as a headset would; the board's numbers follow, and
each overseer sees only the warehouses they work in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.db import transaction
from server.services import allocation, floor, waves
from tests import factories as f
from tests.conftest import make_settings
from tests.factories import auth


@pytest.fixture
def app_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """LAX and FRA with one released assignment each (two lines in LAX, one in FRA), and
    `lax-sup`, a supervisor of LAX only."""
    app = create_app(make_settings(database_url, tmp_path))
    f.seed_users(app.state.sessions)
    with transaction(app.state.sessions) as session:
        f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
        f.warehouse(session, "FRA", country="DE", at=f.FRANKFURT)
        f.sku(session, "SKU-1")
        f.sku(session, "SKU-2")
        for code in ("LAX", "FRA"):
            f.stock(session, code, "A-01-01", "SKU-1", 20)
            f.stock(session, code, "A-01-02", "SKU-2", 20)
        f.order(session, "O-LAX", [("SKU-1", 2), ("SKU-2", 1)], country="US")
        f.order(session, "O-FRA", [("SKU-1", 1)], country="DE")
    with transaction(app.state.sessions) as session:
        for number in ("O-LAX", "O-FRA"):
            allocation.allocate_order(session, number)
        for code in ("LAX", "FRA"):
            waves.release_wave(session, code, waves.WaveCriteria(), actor="supervisor")
    with TestClient(app) as client:
        f.user(client, "lax-sup", "supervisor", "LAX")
        yield client


def board(client: TestClient, username: str, **params: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/floor", params=params, headers=auth(client, username))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    items: list[dict[str, Any]] = body["items"]
    return items


def sign_on(client: TestClient, picker: str, warehouse: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/assignments/sign-on", json={"warehouse": warehouse}, headers=auth(client, picker)
    )
    assert response.status_code == 200, response.text
    assignment: dict[str, Any] = response.json()
    return assignment


def confirm(client: TestClient, picker: str, line: dict[str, Any]) -> None:
    response = client.post(
        f"/api/v1/pick-lines/{line['id']}/confirm",
        json={"quantity": line["quantity"], "token": f"t-{line['id']}"},
        headers=auth(client, picker),
    )
    assert response.status_code == 200, response.text


def test_the_board_follows_a_picker_through_an_assignment(app_client: TestClient) -> None:
    client = app_client
    assert board(client, "supervisor") == []

    lax = sign_on(client, "picker", "LAX")
    sign_on(client, "admin", "FRA")
    (shift,) = board(client, "supervisor", warehouse="LAX")
    assert shift == {
        "picker": "picker",
        "assignment": lax["number"],
        "warehouse": "LAX",
        "lines": 2,
        "lines_done": 0,
        "started_at": lax["started_at"],
        "last_pick_at": None,
        "picks_last_hour": 0,
    }

    before = dt.datetime.now(dt.UTC)
    confirm(client, "picker", lax["lines"][0])
    (shift,) = board(client, "manager", warehouse="LAX")
    assert (shift["lines_done"], shift["picks_last_hour"]) == (1, 1)
    last_pick = dt.datetime.fromisoformat(shift["last_pick_at"])
    assert before - dt.timedelta(seconds=5) <= last_pick <= dt.datetime.now(dt.UTC)

    # the last line closes the lines; completing the assignment takes the picker off
    confirm(client, "picker", lax["lines"][1])
    (shift,) = board(client, "supervisor", warehouse="LAX")
    assert (shift["lines_done"], shift["picks_last_hour"]) == (2, 2)
    completed = client.post(
        f"/api/v1/assignments/{lax['number']}/complete", headers=auth(client, "picker")
    )
    assert completed.status_code == 200, completed.text
    assert board(client, "supervisor", warehouse="LAX") == []
    assert [p["warehouse"] for p in board(client, "supervisor")] == ["FRA"]


def test_each_overseer_sees_only_their_warehouses(app_client: TestClient) -> None:
    client = app_client
    sign_on(client, "picker", "LAX")
    sign_on(client, "admin", "FRA")

    assert [(p["picker"], p["warehouse"]) for p in board(client, "lax-sup")] == [("picker", "LAX")]
    assert [p["warehouse"] for p in board(client, "admin")] == ["FRA", "LAX"]  # by picker
    refused = client.get(
        "/api/v1/floor", params={"warehouse": "FRA"}, headers=auth(client, "lax-sup")
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "warehouse_forbidden")
    picker = client.get("/api/v1/floor", headers=auth(client, "picker"))
    assert (picker.status_code, picker.json()["code"]) == (403, "forbidden")


def test_picks_per_hour_count_only_the_last_hour(app_client: TestClient) -> None:
    client = app_client
    lax = sign_on(client, "picker", "LAX")
    confirm(client, "picker", lax["lines"][0])
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with transaction(sessions) as session:
        (now,) = floor.pickers_on_shift(session, warehouse="LAX")[0]
        later = dt.datetime.now(dt.UTC) + floor.RATE_WINDOW + dt.timedelta(minutes=1)
        (then,) = floor.pickers_on_shift(session, warehouse="LAX", now=later)[0]
    assert (now.picks_last_hour, then.picks_last_hour) == (1, 0)
    assert now.lines_done == then.lines_done == 1
