"""`Idempotency-Key`: a replayed mutation changes nothing and answers as the first time."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.app import create_app
from server.db import transaction
from server.idempotency import IdempotencyMiddleware, _fingerprint
from server.tables import IdempotencyRecord, utcnow
from tests.conftest import ServerProcess, make_settings
from tests.factories import auth, make_warehouse, receive, seed_users, stock_at

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


def test_keyed_writers_at_once_are_never_told_committed_work_failed(
    server_process: ServerProcess,
) -> None:
    """Writers with keys, at once: every answer is the real outcome (no 5xx), every 201
    is one movement, and every retry replays its answer."""
    with httpx.Client(base_url=server_process.url, timeout=60) as client:
        make_warehouse(client)
        receive(client, "LAX", "SKU-1", "A-01", 1000)
        before = _ledger_size(client)
        picker = auth(client, "picker")
        move = {**MOVE, "quantity": 1}
        keys = [f"writer-{w}-move-{m}" for w in range(8) for m in range(12)]

        async def writer(c: httpx.AsyncClient, mine: list[str]) -> list[httpx.Response]:
            return [
                await c.post(
                    "/api/v1/movements", json=move, headers={**picker, "Idempotency-Key": k}
                )
                for k in mine
            ]

        async def everyone() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server_process.url, timeout=60) as c:
                answers = await asyncio.gather(*(writer(c, keys[w::8]) for w in range(8)))
            return [r for answer in answers for r in answer]

        answers = asyncio.run(everyone())
        statuses = [r.status_code for r in answers]
        assert all(s < 500 for s in statuses), statuses
        applied = statuses.count(201)
        assert _ledger_size(client) == before + applied
        assert stock_at(client, "LAX", "SKU-1", "A-01") == 1000 - applied

        for key, first in zip(keys[::8], answers[: len(keys) // 8], strict=False):
            retry = client.post(
                "/api/v1/movements", json=move, headers={**picker, "Idempotency-Key": key}
            )
            assert retry.headers.get("idempotent-replayed") == "true"
            assert retry.status_code == first.status_code
        assert _ledger_size(client) == before + applied


@pytest.fixture
def keyed_app(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app in-process on SQLite and PostgreSQL, claims expiring after 5 s."""
    settings = make_settings(database_url, tmp_path).model_copy(
        update={"idempotency_claim_seconds": 5}
    )
    app = create_app(settings)
    seed_users(app.state.sessions)
    with TestClient(app) as test_client:
        yield test_client


def test_an_answer_lost_after_the_commit_is_replayed_from_the_work(
    keyed_app: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies between the commit and storing the answer: the retry learns
    that the move was done (201 and its movement), and nothing is applied twice."""
    make_warehouse(keyed_app)
    receive(keyed_app, "LAX", "SKU-1", "A-01", 10)
    monkeypatch.setattr(IdempotencyMiddleware, "_complete", lambda *args: None)
    headers = {**auth(keyed_app, "picker"), "Idempotency-Key": "lost-answer"}
    first = keyed_app.post("/api/v1/movements", json=MOVE, headers=headers)
    assert first.status_code == 201
    monkeypatch.undo()

    retry = keyed_app.post("/api/v1/movements", json=MOVE, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert stock_at(keyed_app, "LAX", "SKU-1", "A-01") == 8


def _claim_left_by_a_crash(app: TestClient, age: dt.timedelta) -> None:
    scope = {"method": "POST", "path": "/api/v1/movements", "query_string": b""}
    sessions = app.app.state.sessions  # type: ignore[attr-defined]
    with transaction(sessions) as session:
        session.add(
            IdempotencyRecord(
                principal="picker",
                key="crashed",
                method="POST",
                path="/api/v1/movements",
                request_hash=_fingerprint(scope, json.dumps(MOVE).encode()),
                created_at=utcnow() - age,
            )
        )


def test_a_claim_left_by_a_crash_expires_and_the_retry_runs(keyed_app: TestClient) -> None:
    make_warehouse(keyed_app)
    receive(keyed_app, "LAX", "SKU-1", "A-01", 10)
    _claim_left_by_a_crash(keyed_app, dt.timedelta(minutes=1))
    headers = {**auth(keyed_app, "picker"), "Idempotency-Key": "crashed"}

    retry = keyed_app.post("/api/v1/movements", json=MOVE, headers=headers)
    assert retry.status_code == 201, retry.text
    again = keyed_app.post("/api/v1/movements", json=MOVE, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert stock_at(keyed_app, "LAX", "SKU-1", "A-01") == 8


def test_a_fresh_claim_is_still_in_progress(keyed_app: TestClient) -> None:
    make_warehouse(keyed_app)
    receive(keyed_app, "LAX", "SKU-1", "A-01", 10)
    _claim_left_by_a_crash(keyed_app, dt.timedelta(seconds=0))
    headers = {**auth(keyed_app, "picker"), "Idempotency-Key": "crashed"}
    answer = keyed_app.post("/api/v1/movements", json=MOVE, headers=headers)
    assert answer.status_code == 409
    assert answer.json()["code"] == "idempotency_in_progress"
    assert answer.headers["content-type"] == "application/problem+json"
    assert stock_at(keyed_app, "LAX", "SKU-1", "A-01") == 10


def test_an_answer_recorded_with_the_work_is_the_route_s_model(
    keyed_app: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user created with a key, its answer lost: the replay is the route's `UserOut`,
    never the stored row (no password hash kept with the key)."""
    monkeypatch.setattr(IdempotencyMiddleware, "_complete", lambda *args: None)
    headers = {**auth(keyed_app, "admin"), "Idempotency-Key": "new-user"}
    body = {"username": "picker9", "password": "long-enough-9", "role": "picker"}
    first = keyed_app.post("/api/v1/users", json=body, headers=headers)
    assert first.status_code == 201, first.text
    monkeypatch.undo()

    replay = keyed_app.post("/api/v1/users", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert (replay.status_code, replay.json()) == (201, first.json())
    sessions = keyed_app.app.state.sessions  # type: ignore[attr-defined]
    with transaction(sessions) as session:
        stored = session.scalars(select(IdempotencyRecord.response_body)).all()
    assert not any("argon2" in (text or "") for text in stored)
