"""Signing in: failed attempts are throttled per user and per client (429 problem+json
with `Retry-After`), at most a few passwords are hashed at once, and an unknown user costs
the same hashing as a known one."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from server import security
from server.app import create_app
from server.config import Settings
from server.db import make_engine, make_session_factory
from tests.conftest import ServerProcess, make_settings, require_service
from tests.factories import PASSWORD, seed_users

TOKEN = "/api/v1/auth/token"


def _server(sqlite_url: str, tmp_path: Path, **env: str) -> ServerProcess:
    engine = make_engine(sqlite_url)
    seed_users(make_session_factory(engine))
    engine.dispose()
    return ServerProcess(sqlite_url, tmp_path, extra_env=env)


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = _server(sqlite_url, tmp_path, WAVEPICK_LOGIN_USER_LIMIT="5 per 15 minutes")
    yield process
    process.stop()


def _login(client: httpx.Client | TestClient, username: str, password: str) -> httpx.Response:
    return client.post(TOKEN, data={"username": username, "password": password})


def test_after_wrong_passwords_even_the_right_one_waits(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            assert _login(client, "picker", "wrong-password").status_code == 401
        throttled = _login(client, "picker", PASSWORD)
        assert throttled.status_code == 429
        assert throttled.headers["content-type"] == "application/problem+json"
        assert throttled.json()["code"] == "login_throttled"
        assert 0 < int(throttled.headers["retry-after"]) <= 15 * 60
        # another user of the same client is not held back by picker's failures
        assert _login(client, "supervisor", PASSWORD).status_code == 200


def test_one_client_guessing_many_users_is_throttled(sqlite_url: str, tmp_path: Path) -> None:
    process = _server(sqlite_url, tmp_path, WAVEPICK_LOGIN_CLIENT_LIMIT="8 per 15 minutes")
    try:
        with httpx.Client(base_url=process.url) as client:
            statuses = [_login(client, f"user{n}", "guess-1234").status_code for n in range(9)]
            assert statuses == [401] * 8 + [429]
            assert _login(client, "admin", PASSWORD).status_code == 429
    finally:
        process.stop()


class HashingSpy:
    """Wraps the real password check: how many ran, and how many at once at most."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()
        self._verify = security.verify_password
        monkeypatch.setattr(security, "verify_password", self)

    def __call__(self, password: str, password_hash: str) -> bool:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self._verify(password, password_hash)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def app_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, tmp_path)


def test_an_unknown_user_costs_a_whole_password_check(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(app_settings)
    seed_users(app.state.sessions)
    spy = HashingSpy(monkeypatch)
    with TestClient(app) as client:
        assert _login(client, "nobody-here", "whatever-1").status_code == 401
        assert spy.calls == 1
        assert _login(client, "picker", "whatever-1").status_code == 401
        assert spy.calls == 2


def test_passwords_are_hashed_a_few_at_a_time(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve sign-ins at once: at most WAVEPICK_PASSWORD_HASH_CONCURRENCY (2) argon2
    checks of 64 MiB run together; the others wait or are told to come back (503)."""
    app = create_app(app_settings.model_copy(update={"login_queue": 6}))
    seed_users(app.state.sessions)
    spy = HashingSpy(monkeypatch)

    async def flood() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(
                *(
                    client.post(TOKEN, data={"username": "picker", "password": PASSWORD})
                    for _ in range(12)
                )
            )
        return [a.status_code for a in answers]

    statuses = asyncio.run(flood())
    assert spy.most <= 2
    assert statuses.count(200) >= 2
    assert set(statuses) <= {200, 503}
    assert spy.calls == statuses.count(200)


@pytest.mark.redis
def test_several_processes_share_the_counts_in_redis(sqlite_url: str, tmp_path: Path) -> None:
    """With WAVEPICK_REDIS_URL, failures counted by one server count for another."""
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis on 127.0.0.1:6379", str(exc))
    settings = make_settings(sqlite_url, tmp_path).model_copy(
        update={"redis_url": url, "login_user_limit": "3 per 15 minutes"}
    )
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        assert [_login(first, ghost, "guess-1234").status_code for _ in range(3)] == [401] * 3
        assert _login(second, ghost, "guess-1234").status_code == 429
