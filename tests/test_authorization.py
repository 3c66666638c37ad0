"""Every API route × every role × the caller's own warehouse or another: who is let
through, who gets 403 for their role (`forbidden`) and who for the warehouse
(`warehouse_forbidden`), and 401 without a token. A route missing from the matrix fails
the test, so new routes must declare here who may call them, and whether they act in a
warehouse (then they are called in both) or are warehouse-free.

The floor: LAX (the callers' own warehouse), FRA and SZX (others); picker, supervisor and
manager work in LAX only, the admin everywhere. Each warehouse has stock, FRA and LAX a
released assignment with an open exception (and its room), and there are transfers
LAX→FRA, FRA→LAX and FRA→SZX."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from server import schemas
from server.app import create_app
from server.db import transaction
from server.services import allocation, membership, picking, rooms, transfers, waves
from server.tables import ExceptionKind, Role
from tests import factories as f
from tests.conftest import make_settings
from tests.factories import auth

ALL = {"picker", "supervisor", "manager", "admin"}
MATRIX: dict[tuple[str, str], set[str]] = {
    ("POST", "/api/v1/auth/ticket"): ALL,
    ("GET", "/api/v1/users/me"): ALL,
    ("GET", "/api/v1/users"): {"admin"},
    ("POST", "/api/v1/users"): {"admin"},
    ("PATCH", "/api/v1/users/{username}"): {"admin"},
    ("PUT", "/api/v1/users/{username}/warehouses"): {"admin"},
    ("GET", "/api/v1/audit"): {"admin"},
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
    ("GET", "/api/v1/waves"): {"supervisor", "manager", "admin"},
    ("PATCH", "/api/v1/waves/{number}"): {"supervisor", "admin"},
    ("GET", "/api/v1/kpis"): {"supervisor", "manager", "admin"},
    ("GET", "/api/v1/kpis/export"): {"supervisor", "manager", "admin"},
    ("GET", "/api/v1/floor"): {"supervisor", "manager", "admin"},
    ("GET", "/api/v1/assignments"): ALL,
    ("POST", "/api/v1/assignments/sign-on"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/assignments/sign-off"): {"picker", "supervisor", "admin"},
    ("GET", "/api/v1/assignments/{number}"): ALL,
    ("PATCH", "/api/v1/assignments/{number}"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/assignments/{number}/complete"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/pick-lines/{line_id}/confirm"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/pick-lines/{line_id}/short"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/pick-lines/{line_id}/skip"): {"picker", "supervisor", "admin"},
    ("POST", "/api/v1/pick-lines/{line_id}/exceptions"): {"picker", "supervisor", "admin"},
    ("GET", "/api/v1/exceptions"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/exceptions/{exception_id}/resolve"): {"supervisor", "manager", "admin"},
    ("POST", "/api/v1/rooms"): {"supervisor", "manager", "admin"},
    ("GET", "/api/v1/rooms"): {"supervisor", "manager", "admin"},
    # every role; a picker only the room of an exception they raised (403 room_forbidden)
    ("GET", "/api/v1/rooms/{room_id}"): ALL,
    ("POST", "/api/v1/rooms/{room_id}/close"): {"supervisor", "manager", "admin"},
    ("PATCH", "/api/v1/warehouses/{code}"): {"admin"},
    # recorded calls: their warehouse's managers only
    ("GET", "/api/v1/recordings"): {"manager", "admin"},
    ("GET", "/api/v1/recordings/{recording_id}/file"): {"manager", "admin"},
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
    "{room_id}": "1",
    "{recording_id}": "1",
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


def _code(response: Any) -> str | None:
    if response.status_code < 400:
        return None
    assert response.headers["content-type"] == "application/problem+json", response.text
    code: str = response.json()["code"]
    return code


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_is_allowed_exactly_its_routes(floor: Floor, role: str) -> None:
    """Sample path values name the caller's own warehouse and its work (empty bodies):
    the role decides alone."""
    client = floor.client
    headers = auth(client, role)
    for (method, path), allowed in MATRIX.items():
        for placeholder, value in SAMPLE_PATH_VALUES.items():
            path = path.replace(placeholder, floor.own.get(placeholder.strip("{}"), value))
        body = {} if method in {"POST", "PATCH", "PUT"} else None
        response = client.request(method, path, json=body, headers=headers)
        code = _code(response)
        if role in allowed:
            assert response.status_code != 401 and code != "forbidden", (
                f"{role} refused on {method} {path}: {response.status_code} {code}"
            )
        else:
            assert (response.status_code, code) == (403, "forbidden"), (
                f"{role} got {response.status_code} {code} on {method} {path}, expected 403"
            )


# --- Warehouses -------------------------------------------------------------------------

Side = dict[str, str]
Body = Callable[[Side], dict[str, Any]] | None


def _move_to(location: str) -> Body:
    return lambda w: {
        "warehouse": w["code"],
        "sku": "SKU-1",
        "from_location": "A-01-01",
        "to_location": location,
        "quantity": 1,
    }


# (matrix route, the path to call with a side's values, its body): every route that acts
# in or shows one warehouse, called in the caller's own warehouse and in another.
SCOPED: list[tuple[tuple[str, str], str, Body]] = [
    (("GET", "/api/v1/warehouses/{code}"), "/api/v1/warehouses/{code}", None),
    (("GET", "/api/v1/warehouses/{code}/locations"), "/api/v1/warehouses/{code}/locations", None),
    (
        ("POST", "/api/v1/warehouses/{code}/locations"),
        "/api/v1/warehouses/{code}/locations",
        lambda w: {"code": "B-09-09"},
    ),
    (
        ("POST", "/api/v1/receipts"),
        "/api/v1/receipts",
        lambda w: {
            "warehouse": w["code"],
            "lines": [{"sku": "SKU-1", "location": "A-01-01", "quantity": 1, "damaged": 1}],
        },
    ),
    (("GET", "/api/v1/stock"), "/api/v1/stock?warehouse={code}", None),
    (("GET", "/api/v1/serials"), "/api/v1/serials?warehouse={code}", None),
    (("POST", "/api/v1/movements"), "/api/v1/movements", _move_to("A-01-02")),
    (("POST", "/api/v1/movements"), "/api/v1/movements", _move_to("DAMAGED")),
    (("POST", "/api/v1/movements"), "/api/v1/movements", _move_to("IN-TRANSIT")),
    (("GET", "/api/v1/movements"), "/api/v1/movements?warehouse={code}", None),
    (
        ("POST", "/api/v1/adjustments"),
        "/api/v1/adjustments",
        lambda w: {
            "warehouse": w["code"],
            "sku": "SKU-1",
            "location": "A-01-01",
            "quantity": -1,
            "reason": "damaged",
        },
    ),
    (("GET", "/api/v1/reconcile"), "/api/v1/reconcile?warehouse={code}", None),
    (
        ("POST", "/api/v1/transfers"),  # the sender ships
        "/api/v1/transfers",
        lambda w: {
            "from_warehouse": w["code"],
            "to_warehouse": w["elsewhere"],
            "lines": [{"sku": "SKU-1", "from_location": "A-01-02", "quantity": 1}],
        },
    ),
    (("GET", "/api/v1/transfers/{transfer_id}"), "/api/v1/transfers/{transfer_seen}", None),
    (
        ("POST", "/api/v1/transfers/{transfer_id}/receive"),  # the destination receives
        "/api/v1/transfers/{transfer_to_receive}/receive",
        lambda w: {"lines": [{"line": 1, "to_location": "A-01-03", "quantity": 1}]},
    ),
    (
        ("PUT", "/api/v1/shipping-rates"),
        "/api/v1/shipping-rates",
        lambda w: {
            "warehouse": w["code"],
            "destination": "US",
            "max_weight_g": 1000,
            "cost_cents": 700,
        },
    ),
    (("POST", "/api/v1/waves"), "/api/v1/waves", lambda w: {"warehouse": w["code"]}),
    (("GET", "/api/v1/waves/{number}"), "/api/v1/waves/{wave}", None),
    (("GET", "/api/v1/waves"), "/api/v1/waves?warehouse={code}", None),
    (("PATCH", "/api/v1/waves/{number}"), "/api/v1/waves/{wave}", lambda w: {"priority": 2}),
    (("GET", "/api/v1/kpis"), "/api/v1/kpis?warehouse={code}", None),
    (
        ("GET", "/api/v1/kpis/export"),
        "/api/v1/kpis/export?table=pickers&warehouse={code}",
        None,
    ),
    (("GET", "/api/v1/floor"), "/api/v1/floor?warehouse={code}", None),
    (("GET", "/api/v1/assignments"), "/api/v1/assignments?warehouse={code}", None),
    (
        ("POST", "/api/v1/assignments/sign-on"),
        "/api/v1/assignments/sign-on",
        lambda w: {"warehouse": w["code"]},
    ),
    (("GET", "/api/v1/assignments/{number}"), "/api/v1/assignments/{number}", None),
    (
        ("PATCH", "/api/v1/assignments/{number}"),
        "/api/v1/assignments/{number}",
        lambda w: {"picker": "picker"},
    ),
    (
        ("POST", "/api/v1/assignments/{number}/complete"),
        "/api/v1/assignments/{number}/complete",
        None,
    ),
    (
        ("POST", "/api/v1/pick-lines/{line_id}/exceptions"),
        "/api/v1/pick-lines/{line_id}/exceptions",
        lambda w: {"kind": "damage"},
    ),
    (
        ("POST", "/api/v1/pick-lines/{line_id}/skip"),
        "/api/v1/pick-lines/{line_id}/skip",
        None,
    ),
    (
        ("POST", "/api/v1/pick-lines/{line_id}/confirm"),
        "/api/v1/pick-lines/{line_id}/confirm",
        lambda w: {"quantity": 2, "token": "matrix-confirm"},
    ),
    (
        ("POST", "/api/v1/pick-lines/{line_id}/short"),
        "/api/v1/pick-lines/{line_id}/short",
        lambda w: {"picked": 0, "token": "matrix-short"},
    ),
    (("GET", "/api/v1/exceptions"), "/api/v1/exceptions?warehouse={code}", None),
    (
        ("POST", "/api/v1/exceptions/{exception_id}/resolve"),
        "/api/v1/exceptions/{exception_id}/resolve",
        lambda w: {"resolution": "checked on camera"},
    ),
    (("POST", "/api/v1/rooms"), "/api/v1/rooms", lambda w: {"warehouse": w["code"]}),
    (("GET", "/api/v1/rooms"), "/api/v1/rooms?warehouse={code}", None),
    (("GET", "/api/v1/rooms/{room_id}"), "/api/v1/rooms/{room_id}", None),
    (("POST", "/api/v1/rooms/{room_id}/close"), "/api/v1/rooms/{room_id}/close", None),
]
# Routes that act in no one warehouse: accounts and the audit trail (admin), the shared
# catalog, orders (allocation chooses their warehouse: they are seller-wide) and the
# allocation policy, and lists that show only the caller's warehouses (tested below).
WAREHOUSE_FREE = {
    ("PATCH", "/api/v1/warehouses/{code}"),  # admins only, who act everywhere
    ("GET", "/api/v1/recordings"),
    # another warehouse's recording is not found (tests/test_recordings.py)
    ("GET", "/api/v1/recordings/{recording_id}/file"),
    ("GET", "/api/v1/orders/export"),
    ("POST", "/api/v1/auth/ticket"),
    ("GET", "/api/v1/users/me"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/{username}"),
    ("PUT", "/api/v1/users/{username}/warehouses"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/warehouses"),
    ("POST", "/api/v1/warehouses"),
    ("GET", "/api/v1/skus"),
    ("POST", "/api/v1/skus"),
    ("GET", "/api/v1/skus/{sku}"),
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/orders"),
    ("POST", "/api/v1/orders/import"),
    ("GET", "/api/v1/orders/{number}"),
    ("POST", "/api/v1/orders/{number}/allocate"),
    ("POST", "/api/v1/orders/{number}/cancel"),
    ("GET", "/api/v1/allocation-policy"),
    ("PUT", "/api/v1/allocation-policy"),
    ("GET", "/api/v1/shipping-rates"),
    ("POST", "/api/v1/assignments/sign-off"),
}


class Floor:
    def __init__(self, client: TestClient, own: Side, other: Side) -> None:
        self.client, self.own, self.other = client, own, other


def _build_floor(sessions: sessionmaker[Session]) -> tuple[Side, Side]:
    with transaction(sessions) as session:
        for code, country, at in (
            ("LAX", "US", f.LOS_ANGELES),
            ("FRA", "DE", f.FRANKFURT),
            ("SZX", "CN", f.SHENZHEN),
        ):
            f.warehouse(session, code, country=country, at=at)
        f.sku(session, "SKU-1")
        for code in ("LAX", "FRA", "SZX"):
            for location in ("A-01-01", "A-01-02"):
                f.stock(session, code, location, "SKU-1", 50)
        f.order(session, "O-LAX", [("SKU-1", 2)], country="US")
        f.order(session, "O-FRA", [("SKU-1", 2)], country="DE")
        for username in f.MEMBERS:
            membership.set_user_warehouses(session, username, ["LAX"])
    with transaction(sessions) as session:
        for number in ("O-LAX", "O-FRA"):
            allocation.allocate_order(session, number)
    sides: dict[str, Side] = {}
    with transaction(sessions) as session:
        for code, picker in (("LAX", "picker"), ("FRA", "admin")):
            wave = waves.release_wave(session, code, waves.WaveCriteria(), actor="admin")
            assignment = picking.sign_on(session, picker, code)
            assert assignment is not None and assignment.warehouse.code == code
            line = picking.next_open_line(session, assignment.id)
            assert line is not None
            exception = picking.report_exception(
                session, ExceptionKind.help, picker, line_id=line.id
            )
            room = rooms.open_room_for_exception(session, exception.id, picker)
            sides[code] = {
                "code": code,
                "wave": str(wave.id),
                "number": str(assignment.id),
                "line_id": str(line.id),
                "exception_id": str(exception.id),
                "room_id": str(room.id),
            }

        def ship(source: str, destination: str) -> str:
            line = schemas.TransferLineIn(sku="SKU-1", from_location="A-01-02", quantity=2)
            body = schemas.TransferCreate(
                from_warehouse=source, to_warehouse=destination, lines=[line]
            )
            return str(transfers.ship(session, body, actor="admin").id)

        lax_to_fra, fra_to_lax, fra_to_szx = (
            ship("LAX", "FRA"),
            ship("FRA", "LAX"),
            ship("FRA", "SZX"),
        )
    own = {
        **sides["LAX"],
        "elsewhere": "FRA",
        "transfer_seen": lax_to_fra,
        "transfer_id": lax_to_fra,
        "transfer_to_receive": fra_to_lax,
    }
    other = {
        **sides["FRA"],
        "elsewhere": "LAX",
        "transfer_seen": fra_to_szx,
        "transfer_id": fra_to_szx,
        "transfer_to_receive": lax_to_fra,  # LAX shipped it, but only FRA receives it
    }
    return own, other


@pytest.fixture
def floor(database_url: str, tmp_path: Path) -> Iterator[Floor]:
    """The app on the floor above, on SQLite and on PostgreSQL."""
    app = create_app(make_settings(database_url, tmp_path))
    f.seed_users(app.state.sessions)
    own, other = _build_floor(app.state.sessions)
    with TestClient(app) as client:
        yield Floor(client, own, other)


def test_every_route_says_whether_it_acts_in_a_warehouse() -> None:
    scoped = {route for route, _path, _body in SCOPED}
    assert not scoped & WAREHOUSE_FREE
    assert scoped | WAREHOUSE_FREE == set(MATRIX)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_acts_only_in_its_own_warehouses(floor: Floor, role: str) -> None:
    """Route × role × own/other warehouse. In its own warehouse a role may do what its
    role allows (the answer may still be a domain refusal, such as another picker's
    assignment or a room about an exception someone else raised, but never a 403 for role
    or warehouse); in another it gets 403
    `warehouse_forbidden`, except the admin, who works everywhere."""
    client = floor.client
    headers = auth(client, role)
    for route, path, body in SCOPED:
        method = route[0]
        for side_name, side in (("own", floor.own), ("other", floor.other)):
            url = path.format(**side)
            response = client.request(
                method, url, json=body(side) if body else None, headers=headers
            )
            code = _code(response)
            where = f"{role} {method} {url} in {side_name} warehouse"
            assert response.status_code < 500, f"{where}: {response.text}"
            if role not in MATRIX[route]:
                assert (response.status_code, code) == (403, "forbidden"), where
            elif side_name == "own" or role == "admin":
                assert response.status_code != 401, where
                assert code not in ("forbidden", "warehouse_forbidden"), f"{where}: {code}"
            else:
                assert (response.status_code, code) == (403, "warehouse_forbidden"), (
                    f"{where}: {response.status_code} {response.text}"
                )


def test_lists_show_only_the_callers_warehouses(floor: Floor) -> None:
    client = floor.client

    def listed(path: str, role: str) -> list[dict[str, Any]]:
        response = client.get(path, params={"limit": 500}, headers=auth(client, role))
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    for role in ("supervisor", "manager"):
        assert [w["code"] for w in listed("/api/v1/warehouses", role)] == ["LAX"]
        stock = listed("/api/v1/stock", role)
        assert stock and {s["warehouse"] for s in stock} == {"LAX"}
        movements = listed("/api/v1/movements", role)
        assert movements
        assert all("LAX" in (m["warehouse"], m["to_warehouse"]) for m in movements)
        assert {a["warehouse"] for a in listed("/api/v1/assignments", role)} == {"LAX"}
        assert {e["warehouse"] for e in listed("/api/v1/exceptions", role)} == {"LAX"}
        assert [(p["picker"], p["warehouse"]) for p in listed("/api/v1/floor", role)] == [
            ("picker", "LAX")
        ]
    assert {s["warehouse"] for s in listed("/api/v1/stock", "picker")} == {"LAX"}
    everywhere = {s["warehouse"] for s in listed("/api/v1/stock", "admin")}
    assert everywhere == {"LAX", "FRA", "SZX"}
    assert {e["warehouse"] for e in listed("/api/v1/exceptions", "admin")} == {"LAX", "FRA"}
    assert {p["warehouse"] for p in listed("/api/v1/floor", "admin")} == {"LAX", "FRA"}
