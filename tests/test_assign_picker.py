"""A supervisor gives an assignment to a picker (`PATCH /api/v1/assignments/{n}`): the
picker gets it at their next sign-on and no one else does; only work nobody has started
is (re)assigned, only to an active picker of its warehouse; every change is audited. On
SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.db import transaction
from server.services import allocation, waves
from tests import factories as f
from tests.conftest import make_settings
from tests.factories import auth


@pytest.fixture
def floor(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, int]]:
    """LAX with one released, ready assignment of two lines (its number), and FRA."""
    app = create_app(make_settings(database_url, tmp_path))
    f.seed_users(app.state.sessions)
    with transaction(app.state.sessions) as session:
        f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
        f.warehouse(session, "FRA", country="DE", at=f.FRANKFURT)
        f.sku(session, "SKU-1")
        f.stock(session, "LAX", "A-01-01", "SKU-1", 5)
        f.stock(session, "LAX", "A-01-02", "SKU-1", 5)
        f.order(session, "O-1", [("SKU-1", 7)], country="US")
    with transaction(app.state.sessions) as session:
        allocation.allocate_order(session, "O-1")
        wave = waves.release_wave(session, "LAX", waves.WaveCriteria(), actor="supervisor")
        number = wave.assignments[0].id
    with TestClient(app) as client:
        yield client, number


def _assign(client: TestClient, number: int, picker: str | None, role: str = "supervisor") -> Any:
    return client.patch(
        f"/api/v1/assignments/{number}", json={"picker": picker}, headers=auth(client, role)
    )


def _sign_on(client: TestClient, username: str) -> Any:
    return client.post("/api/v1/assignments/sign-on", json={}, headers=auth(client, username))


def test_the_assigned_picker_gets_it_at_sign_on_and_no_one_else(
    floor: tuple[TestClient, int],
) -> None:
    client, number = floor
    f.user(client, "ana", "picker", "LAX")

    answer = _assign(client, number, "ana")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["picker"], answer.json()["status"]) == ("ana", "ready")
    assert answer.json()["lines"][0]["check_digits"]  # a supervisor sees them

    assert _sign_on(client, "picker").status_code == 204  # not the pool's any more
    taken = _sign_on(client, "ana")
    assert taken.status_code == 200, taken.text
    assert (taken.json()["number"], taken.json()["status"]) == (number, "in_progress")

    again = _assign(client, number, "picker")
    assert (again.status_code, again.json()["code"]) == (409, "assignment_in_progress")
    shown = client.get(f"/api/v1/assignments/{number}", headers=auth(client, "supervisor"))
    assert shown.json()["picker"] == "ana"

    events = client.get(
        "/api/v1/audit", params={"limit": 500}, headers=auth(client, "admin")
    ).json()["items"]
    assigned = [e for e in events if e["action"] == "assignment.assign"]
    assert [(e["actor"], e["subject"], e["old"], e["new"]) for e in assigned] == [
        ("supervisor", f"assignment:{number}", {"picker": None}, {"picker": "ana"})
    ]


def test_a_manager_reassigns_and_null_puts_it_back_in_the_pool(
    floor: tuple[TestClient, int],
) -> None:
    client, number = floor
    assert _assign(client, number, "picker", role="manager").json()["picker"] == "picker"
    back = _assign(client, number, None, role="manager")
    assert (back.status_code, back.json()["picker"]) == (200, None)
    assert _sign_on(client, "picker").json()["number"] == number  # the pool's again


def test_only_an_active_picker_of_the_warehouse(floor: tuple[TestClient, int]) -> None:
    client, number = floor
    f.user(client, "fra-picker", "picker", "FRA")
    f.user(client, "gone", "picker", "LAX")
    disabled = client.patch(
        "/api/v1/users/gone", json={"active": False}, headers=auth(client, "admin")
    )
    assert disabled.status_code == 200, disabled.text
    for name, code in (
        ("nobody", "not_a_picker"),
        ("supervisor", "not_a_picker"),
        ("gone", "not_a_picker"),
        ("fra-picker", "picker_not_member"),
    ):
        refused = _assign(client, number, name)
        assert (refused.status_code, refused.json()["code"]) == (422, code), name
    shown = client.get(f"/api/v1/assignments/{number}", headers=auth(client, "supervisor"))
    assert shown.json()["picker"] is None


def test_a_completed_assignment_is_not_reassigned(floor: tuple[TestClient, int]) -> None:
    client, number = floor
    picker = auth(client, "picker")
    assignment = _sign_on(client, "picker").json()
    for line in assignment["lines"]:
        confirmed = client.post(
            f"/api/v1/pick-lines/{line['id']}/confirm",
            json={"quantity": line["quantity"], "token": f"t-{line['id']}"},
            headers=picker,
        )
        assert confirmed.status_code == 200, confirmed.text
    done = client.post(f"/api/v1/assignments/{number}/complete", headers=picker)
    assert done.status_code == 200, done.text
    refused = _assign(client, number, "picker")
    assert (refused.status_code, refused.json()["code"]) == (409, "assignment_completed")


def test_other_warehouses_work_is_not_theirs_to_assign(floor: tuple[TestClient, int]) -> None:
    client, number = floor
    membership = {"warehouses": ["FRA"]}
    moved = client.put(
        "/api/v1/users/supervisor/warehouses", json=membership, headers=auth(client, "admin")
    )
    assert moved.status_code == 200, moved.text
    refused = _assign(client, number, "picker")
    assert (refused.status_code, refused.json()["code"]) == (403, "warehouse_forbidden")
    assert _assign(client, number, "picker", role="picker").status_code == 403
