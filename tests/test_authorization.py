"""Every API route × every role: who is let through and who gets 403 (and 401 without a
token). A route missing from the matrix fails the test, so new routes must declare here
who may call them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from server.tables import Role
from tests.factories import auth

ALL = {"picker", "supervisor", "manager", "admin"}
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/users/me"): ALL,
    ("GET", "/api/v1/users"): {"admin"},
    ("POST", "/api/v1/users"): {"admin"},
    ("PATCH", "/api/v1/users/{username}"): {"admin"},
    ("GET", "/api/v1/warehouses"): ALL,
    ("POST", "/api/v1/warehouses"): {"admin"},
    ("GET", "/api/v1/warehouses/{code}"): ALL,
    ("GET", "/api/v1/warehouses/{code}/locations"): {"supervisor", "admin"},
    ("POST", "/api/v1/warehouses/{code}/locations"): {"supervisor", "admin"},
    ("GET", "/api/v1/skus"): ALL,
    ("POST", "/api/v1/skus"): {"supervisor", "admin"},
    ("GET", "/api/v1/skus/{sku}"): ALL,
    ("POST", "/api/v1/receipts"): {"supervisor", "admin"},
    ("GET", "/api/v1/stock"): ALL,
    ("GET", "/api/v1/serials"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/movements"): {"picker", "supervisor", "admin"},
    ("GET", "/api/v1/movements"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/adjustments"): {"supervisor", "admin"},
    ("GET", "/api/v1/reconcile"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/transfers"): {"supervisor", "admin"},
    ("GET", "/api/v1/transfers/{transfer_id}"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/transfers/{transfer_id}/receive"): {"supervisor", "admin"},
    ("POST", "/api/v1/orders"): {"supervisor", "admin"},
    ("GET", "/api/v1/orders"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/orders/import"): {"supervisor", "admin"},
    ("GET", "/api/v1/orders/export"): {"supervisor", "manager", "admin"},
    ("GET", "/api/v1/orders/{number}"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/orders/{number}/allocate"): {"supervisor", "admin"},
    ("POST", "/api/v1/orders/{number}/cancel"): {"supervisor", "admin"},
    ("GET", "/api/v1/allocation-policy"): {"supervisor", "manager", "admin"},
    ("PUT", "/api/v1/allocation-policy"): {"supervisor", "admin"},
    ("GET", "/api/v1/shipping-rates"): {"supervisor", "manager", "admin"},
    ("PUT", "/api/v1/shipping-rates"): {"supervisor", "admin"},
    ("POST", "/api/v1/waves"): {"supervisor", "admin"},
    ("GET", "/api/v1/waves/{number}"): {"supervisor", "manager", "admin"},
    ("GET", "/api/v1/assignments"): ALL,
    ("POST", "/api/v1/assignments/sign-on"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/assignments/sign-off"): {"picker", "supervisor", "admin"},
    ("GET", "/api/v1/assignments/{number}"): ALL,
    ("POST", "/api/v1/assignments/{number}/complete"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/pick-lines/{line_id}/confirm"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/pick-lines/{line_id}/short"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/pick-lines/{line_id}/skip"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/pick-lines/{line_id}/exceptions"): {"picker", "supervisor", "admin"},
    ("GET", "/api/v1/exceptions"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/exceptions/{exception_id}/resolve"): {"supervisor", "manager", "admin"},
}
PUBLIC = {("POST", "/api/v1/auth/token")}
SAMPLE_PATH_VALUES = {
    "{username}": "picker",
    "{code}": "LAX",
    "{sku}": "SKU-1",
    "{transfer_id}": "1",
    "{number}": "1",
    "{line_id}": "1",
    "{exception_id}": "1",
}


def _api_routes(client: TestClient) -> set[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def test_every_route_is_in_the_matrix(client: TestClient) -> None:
    assert _api_routes(client) == set(MATRIX) | PUBLIC


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    for placeholder, value in SAMPLE_PATH_VALUES.items():
        path = path.replace(placeholder, value)
    body = {} if method in {"POST", "PATCH", "PUT"} else None
    return client.request(method, path, json=body, headers=headers).status_code


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_is_allowed_exactly_its_routes(client: TestClient, role: str) -> None:
    headers = auth(client, role)
    for (method, path), allowed in MATRIX.items():
        status = _call(client, method, path, headers)
        if role in allowed:
            assert status not in (401, 403), f"{role} refused on {method} {path}: {status}"
        else:
            assert status == 403, f"{role} got {status} on {method} {path}, expected 403"


def test_without_a_token_every_route_is_401(client: TestClient) -> None:
    for method, path in MATRIX:
        assert _call(client, method, path, {}) == 401, f"{method} {path}"


def test_a_disabled_user_is_locked_out(client: TestClient) -> None:
    picker = auth(client, "picker")
    disabled = client.patch(
        "/api/v1/users/picker", json={"active": False}, headers=auth(client, "admin")
    )
    assert disabled.status_code == 200
    assert client.get("/api/v1/users/me", headers=picker).status_code == 401
