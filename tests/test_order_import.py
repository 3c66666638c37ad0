"""The CSV order import: bounded batches (other writers get the lock between them),
malformed files refused with their rows, NUL refused alike on SQLite and PostgreSQL, and
cells that look like formulas stored as given but neutralised on CSV export."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.db import make_engine, make_session_factory
from server.problems import Conflict
from server.services import orders
from server.tables import Order
from tests.conftest import ServerProcess, make_settings
from tests.factories import auth, make_warehouse, receive, seed_users

HEADER = "order,sku,quantity,country,region,carrier,postcode,channel,latitude\n"
IMPORT = "/api/v1/orders/import"


def _csv(count: int, prefix: str = "IMP") -> str:
    return HEADER + "".join(
        f"{prefix}-{n},SKU-1,1,US,CA,UPS,90001,web,34.0\n" for n in range(count)
    )


def _upload(client: TestClient | httpx.Client, text: str | bytes, **params: Any) -> httpx.Response:
    return client.post(
        IMPORT,
        files={"file": ("orders.csv", text, "text/csv")},
        params=params,
        headers=auth(client, "supervisor"),
    )


def _order_count(client: TestClient) -> int:
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with sessions() as session:
        return session.scalar(select(func.count(Order.id))) or 0


@pytest.fixture
def app_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on SQLite and on PostgreSQL, 100 orders per import batch, with LAX and
    SKU-1."""
    settings = make_settings(database_url, tmp_path).model_copy(update={"import_batch_orders": 100})
    app = create_app(settings)
    seed_users(app.state.sessions)
    with TestClient(app) as client:
        make_warehouse(client)
        yield client


def test_a_large_import_commits_in_bounded_batches(app_client: TestClient) -> None:
    """450 orders: no transaction creates more than 100 of them, so no writer waits for
    the whole file; every order is there in the end."""
    sessions = app_client.app.state.sessions  # type: ignore[attr-defined]
    created_by_transaction: list[int] = []
    pending: dict[int, int] = {}

    def count_new(session: Session, _context: Any, _objects: Any) -> None:
        new = sum(isinstance(obj, Order) for obj in session.new)
        pending[id(session)] = pending.get(id(session), 0) + new

    def on_commit(session: Session) -> None:
        created_by_transaction.append(pending.pop(id(session), 0))

    event.listen(sessions, "before_flush", count_new)
    event.listen(sessions, "after_commit", on_commit)
    try:
        answer = _upload(app_client, _csv(450))
    finally:
        event.remove(sessions, "before_flush", count_new)
        event.remove(sessions, "after_commit", on_commit)
    assert answer.status_code == 201, answer.text
    assert answer.json()["imported"] == 450
    assert sum(created_by_transaction) == 450
    assert max(created_by_transaction) <= 100
    assert _order_count(app_client) == 450


def test_a_batch_that_fails_undoes_the_earlier_ones(
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = orders.create_order
    calls = 0

    def taken_on_the_250th(session: Session, body: Any, *, actor: str) -> Order:
        nonlocal calls
        calls += 1
        if calls == 250:  # as if another client had created this number meanwhile
            raise Conflict(f"order {body.number} already exists", code="duplicate_order")
        return create(session, body, actor=actor)

    monkeypatch.setattr(orders, "create_order", taken_on_the_250th)
    answer = _upload(app_client, _csv(300))
    assert (answer.status_code, answer.json()["code"]) == (409, "duplicate_order")
    assert _order_count(app_client) == 0


def test_other_writers_go_on_during_a_large_import(sqlite_url: str, tmp_path: Path) -> None:
    """On SQLite (one writer at a time): while 4,000 orders are imported, an adjustment
    is answered before the import is; the old single transaction made it wait for the
    whole file."""
    engine = make_engine(sqlite_url)
    seed_users(make_session_factory(engine))
    engine.dispose()
    server = ServerProcess(sqlite_url, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            make_warehouse(client)
            receive(client, "LAX", "SKU-1", "A-01", 10)
            finished = threading.Event()
            answers: list[httpx.Response] = []

            def run_import() -> None:
                with httpx.Client(base_url=server.url, timeout=300) as own:
                    answers.append(_upload(own, _csv(4000)))
                finished.set()

            importer = threading.Thread(target=run_import)
            importer.start()
            supervisor = auth(client, "supervisor")
            while not finished.is_set():  # the first batch is visible: the import runs
                listed = client.get("/api/v1/orders", params={"limit": 1}, headers=supervisor)
                if listed.json()["total"] > 0:
                    break
            adjusted = client.post(
                "/api/v1/adjustments",
                json={
                    "warehouse": "LAX",
                    "sku": "SKU-1",
                    "location": "A-01",
                    "quantity": 1,
                    "reason": "found",
                },
                headers=supervisor,
            )
            import_still_running = not finished.is_set()
            importer.join()
        assert adjusted.status_code == 201, adjusted.text
        assert answers[0].status_code == 201, answers[0].text
        assert import_still_running
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("text", "row", "words"),
    [
        (HEADER + 'A-1,SKU-1,1,US,"CA,UPS,90001,web,34.0\n', 2, "not a readable CSV"),
        (HEADER + 'A-1,SKU-1,1,US,"CA"x,UPS,90001,web,34.0\n', 2, "not a readable CSV"),
        ("order,sku,quantity,country,sku\nA-1,SKU-1,1,US,SKU-2\n", 1, "appears twice"),
        (
            "order,sku,quantity,country," + ",".join(f"c{n}" for n in range(10_000)) + "\n",
            1,
            "10004 columns",
        ),
        (HEADER + "A-1,SKU-1,1,US,CA,UPS,90001,web,34.0" + ",x" * 10_000 + "\n", 2, "fields"),
    ],
    ids=["unclosed-quote", "stray-quote", "duplicate-column", "wide-header", "wide-row"],
)
def test_malformed_csv_is_refused_with_its_rows(
    client: TestClient, text: str, row: int, words: str
) -> None:
    make_warehouse(client)
    answer = _upload(client, text)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == "invalid_csv"
    assert problem["errors"][0]["row"] == row
    assert words in problem["errors"][0]["msg"]
    assert _order_count(client) == 0


def test_every_bad_row_is_listed(client: TestClient) -> None:
    make_warehouse(client)
    text = HEADER + ",SKU-1,1,US,,,,,\nB-1,SKU-1,zero,US,,,,,\nC-1,SKU-1,1,US,,,,,,,,\n"
    problem = _upload(client, text).json()
    assert [e["row"] for e in problem["errors"]] == [2, 3, 4]


def test_nul_is_refused_alike_on_both_databases(app_client: TestClient) -> None:
    text = HEADER + "A-1,SKU-1,1,US,CA,UPS,90001,web,34.0\nB-1,SKU-1,1,US,C\x00A,UPS,1,web,1\n"
    answer = _upload(app_client, text.encode())
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "invalid_csv"
    assert problem["errors"] == [{"row": 3, "msg": "NUL character"}]
    assert _order_count(app_client) == 0


def test_formula_cells_are_stored_as_given_and_neutralised_on_export(
    app_client: TestClient,
) -> None:
    text = HEADER + 'F-1,SKU-1,1,US,"=HYPERLINK(""http://x"")",@SUM(A1),-90001,+1,-33.9\n'
    assert _upload(app_client, text).status_code == 201
    supervisor = auth(app_client, "supervisor")
    stored = app_client.get("/api/v1/orders/F-1", headers=supervisor).json()
    assert (stored["region"], stored["carrier"]) == ('=HYPERLINK("http://x")', "@SUM(A1)")
    assert (stored["postcode"], stored["channel"], stored["latitude"]) == ("-90001", "+1", -33.9)

    export = app_client.get("/api/v1/orders/export", headers=supervisor)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert rows[0]["order"] == "F-1"
    assert (rows[0]["region"], rows[0]["carrier"]) == ('\'=HYPERLINK("http://x")', "'@SUM(A1)")
    assert (rows[0]["postcode"], rows[0]["channel"]) == ("'-90001", "'+1")
    assert rows[0]["latitude"] == "-33.9"  # a number, not text: left as it is
    assert (rows[0]["sku"], rows[0]["quantity"]) == ("SKU-1", "1")


def test_refusals_after_parsing_name_the_rows(app_client: TestClient) -> None:
    """An unknown SKU, an order that exists and a lot asked of a SKU without lots: each
    error names the file's row (1 is the header), its order and its SKU."""
    supervisor = auth(app_client, "supervisor")
    lotted = {"sku": "LOT-1", "description": "lots", "lot_controlled": True}
    assert app_client.post("/api/v1/skus", json=lotted, headers=supervisor).status_code == 201
    head = "order,sku,quantity,country,lot\n"

    unknown = _upload(app_client, head + "U-1,SKU-1,1,US,\nU-2,NOPE,1,US,\nU-2,GONE,2,US,\n")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "sku_not_found")
    assert unknown.json()["errors"] == [
        {"row": 3, "order": "U-2", "sku": "NOPE", "msg": "unknown SKU"},
        {"row": 4, "order": "U-2", "sku": "GONE", "msg": "unknown SKU"},
    ]

    lotless = _upload(app_client, head + "L-1,LOT-1,1,US,B1\nL-2,SKU-1,1,US,\nL-2,SKU-1,1,US,B1\n")
    assert (lotless.status_code, lotless.json()["code"]) == (422, "lot_not_allowed")
    assert [(e["row"], e["order"], e["sku"]) for e in lotless.json()["errors"]] == [
        (4, "L-2", "SKU-1")
    ]

    assert _upload(app_client, head + "D-1,SKU-1,1,US,\n").status_code == 201
    taken = _upload(app_client, head + "D-0,SKU-1,1,US,\nD-1,SKU-1,1,US,\n")
    assert (taken.status_code, taken.json()["code"]) == (409, "duplicate_order")
    assert taken.json()["errors"] == [{"row": 3, "order": "D-1", "msg": "already exists"}]
    assert _order_count(app_client) == 1


def test_a_bad_line_is_refused_at_its_own_row(client: TestClient) -> None:
    make_warehouse(client)
    text = HEADER + "A-1,SKU-1,1,US,,,,,\nA-1,SKU-1,0,US,,,,,\n"
    errors = _upload(client, text).json()["errors"]
    assert [(e["row"], e["order"], e["sku"]) for e in errors] == [(3, "A-1", "SKU-1")]
    assert "lines.1.quantity" in errors[0]["msg"]
