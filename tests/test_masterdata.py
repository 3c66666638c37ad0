"""The process's master-data cache (`server.masterdata`): users, memberships, warehouses,
SKUs and locations are kept between requests, and every change made in the process is
seen by the very next request (SQLite and PostgreSQL). Each test first makes the cache
hold the old state, then changes it and checks that the next move sees the change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from server import masterdata
from server.app import create_app
from server.db import make_engine, make_session_factory, transaction
from server.services import allocation, catalog, ledger, picking, waves
from server.services.waves import WaveCriteria
from server.tables import Location, Order, OrderStatus, PickLine, Sku
from tests import factories as f
from tests.conftest import make_settings
from tests.factories import LOS_ANGELES, auth, make_warehouse, receive, seed_users, user


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """LAX (A-01 with 100 units of SKU-1, A-02) and FRA, the app in-process."""
    app = create_app(make_settings(database_url, tmp_path))
    seed_users(app.state.sessions)
    with TestClient(app) as client:
        make_warehouse(client, "LAX", locations=("A-01", "A-02"))
        make_warehouse(client, "FRA", locations=("F-01",))
        assert receive(client, "LAX", "SKU-1", "A-01", 100).status_code == 201
        yield client


def move(
    client: TestClient, headers: dict[str, str], *, to: str = "A-02", **extra: object
) -> httpx.Response:
    body = {"warehouse": "LAX", "sku": "SKU-1", "from_location": "A-01", "to_location": to}
    return client.post("/api/v1/movements", json={**body, "quantity": 1, **extra}, headers=headers)


def sessions_of(client: TestClient) -> sessionmaker[Session]:
    found: sessionmaker[Session] = client.app.state.sessions  # type: ignore[attr-defined]
    return found


def test_a_membership_taken_away_or_given_applies_to_the_next_move(api: TestClient) -> None:
    mover = user(api, "mover", "supervisor", "LAX")
    admin = auth(api, "admin")
    assert move(api, mover).status_code == 201  # the user and their LAX membership cached
    moved = api.put("/api/v1/users/mover/warehouses", json={"warehouses": ["FRA"]}, headers=admin)
    assert moved.status_code == 200, moved.text
    refused = move(api, mover)
    assert (refused.status_code, refused.json()["code"]) == (403, "warehouse_forbidden")
    back = api.put("/api/v1/users/mover/warehouses", json={"warehouses": ["LAX"]}, headers=admin)
    assert back.status_code == 200, back.text
    assert move(api, mover).status_code == 201


def test_a_disabled_or_demoted_user_is_refused_at_once(api: TestClient) -> None:
    admin = auth(api, "admin")
    for username, change in (("leaver", {"active": False}), ("demoted", {"role": "manager"})):
        headers = user(api, username, "supervisor", "LAX")
        assert move(api, headers).status_code == 201
        changed = api.patch(f"/api/v1/users/{username}", json=change, headers=admin)
        assert changed.status_code == 200, changed.text
        assert move(api, headers).status_code == 401, username


def test_a_location_renamed_and_a_sku_made_lot_controlled_apply_to_the_next_move(
    api: TestClient,
) -> None:
    """Written through the ORM in this process, as the services that change master data
    write: no API renames a location or changes a SKU's rules yet, and whichever does will
    be seen without doing anything for the cache."""
    supervisor = auth(api, "supervisor")
    assert move(api, supervisor).status_code == 201  # LAX, SKU-1, A-01 and A-02 cached
    with transaction(sessions_of(api)) as session:
        session.execute(update(Location).where(Location.code == "A-02").values(code="A-02X"))
    gone = move(api, supervisor)
    assert (gone.status_code, gone.json()["code"]) == (404, "location_not_found")
    assert move(api, supervisor, to="A-02X").status_code == 201
    with transaction(sessions_of(api)) as session:
        sku = session.scalars(select(Sku).where(Sku.code == "SKU-1")).one()
        sku.lot_controlled = True
    refused = move(api, supervisor, to="A-02X")
    assert (refused.status_code, refused.json()["code"]) == (422, "lot_required")


def test_a_location_created_after_a_miss_is_found(api: TestClient) -> None:
    supervisor = auth(api, "supervisor")
    missing = move(api, supervisor, to="A-03")
    assert (missing.status_code, missing.json()["code"]) == (404, "location_not_found")
    created = api.post(
        "/api/v1/warehouses/LAX/locations", json={"code": "A-03"}, headers=auth(api, "admin")
    )
    assert created.status_code == 201, created.text
    assert move(api, supervisor, to="A-03").status_code == 201


def test_what_was_read_before_a_change_committed_is_not_served_after_it(
    database_url: str,
) -> None:
    """A reader that caches a SKU while a writer's change is flushed but not committed
    reads the old rules; once the writer commits, the cache reads the table again."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    cache = masterdata.attach(sessions, ttl_seconds=60)
    try:
        with transaction(sessions) as session:
            catalog.create_sku(session, code="SKU-9", description="Item")
        with transaction(sessions) as writer:
            row = writer.scalars(select(Sku).where(Sku.code == "SKU-9")).one()
            row.serialized = True
            writer.flush()
            with transaction(sessions, write=False) as reader:
                before = cache.sku(reader, "SKU-9")
            assert before is not None and not before.serialized
        with transaction(sessions, write=False) as reader:
            after = cache.sku(reader, "SKU-9")
        assert after is not None and after.serialized
    finally:
        engine.dispose()


def test_sessions_of_other_factories_are_not_cached(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    try:
        with transaction(sessions) as session:
            catalog.create_sku(session, code="SKU-8", description="Item")
            assert masterdata.of(session).ttl == 0
            assert catalog.sku_ref(session, "SKU-8").code == "SKU-8"
    finally:
        engine.dispose()


def test_a_confirmation_answers_with_its_slot_and_sku_as_they_are_now(
    sessions: sessionmaker[Session],
) -> None:
    """A confirmation reads its line's slot, SKU and staging location from the cache, by
    id: the first pick of an order caches them, a change made in this process in between
    is what the second pick answers with, and the first pick puts its order in `picking`."""
    masterdata.attach(sessions, ttl_seconds=60)
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=LOS_ANGELES)
        f.sku(session, "CASE")
        f.stock(session, "LAX", "A-01-05", "CASE", 10)
        f.order(session, "O-1", [("CASE", 2)])
        f.order(session, "O-2", [("CASE", 1)])
    with transaction(sessions) as session:
        for number in ("O-1", "O-2"):
            allocation.allocate_order(session, number)
        waves.release_wave(session, "LAX", WaveCriteria(), actor="sup")
        assignment = picking.sign_on(session, "picker1", "LAX")
        assert assignment is not None
        first, second = (line.id for line in assignment.lines)

    def confirm(line_id: int) -> picking.LineContext:
        with transaction(sessions) as session:
            quantity = session.get_one(PickLine, line_id).quantity
            result = picking.confirm_pick(
                session, line_id, quantity, "picker1", idempotency_token=f"t-{line_id}"
            )
            return result.context

    before = confirm(first)
    assert (before.slot.code, before.sku.description) == ("A-01-05", "CASE item")
    assert before.assignment.staging.code == "STAGE-1"
    with transaction(sessions) as session:
        statuses = {row.id: row.status for row in session.execute(select(Order.id, Order.status))}
        assert statuses.pop(session.get_one(PickLine, first).order_id) == OrderStatus.picking
        assert list(statuses.values()) == [OrderStatus.released]
        session.execute(update(Sku).values(description="Phone case, blue"))
        session.execute(update(Location).where(Location.code == "A-01-05").values(code="A-1-5"))
    after = confirm(second)
    assert (after.slot.code, after.sku.description) == ("A-1-5", "Phone case, blue")
    assert after.slot.id == before.slot.id
    with transaction(sessions) as session:
        assert ledger.reconcile(session).consistent
