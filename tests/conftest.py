"""Fixtures for tests against real parts: SQLite files, a fresh PostgreSQL database per
test session, and real server processes on loopback.

PostgreSQL, Redis, Chromium and speech tests (espeak-ng, the human recordings, Whisper,
the Vosk model) skip with a reason when the part is missing, except under CI (CI=true),
where a missing part fails the run instead (`require_service`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.config import Settings
from server.db import make_engine, make_session_factory
from server.migrate import upgrade

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("WAVEPICK_TEST_REDIS", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("WAVEPICK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parents[1]
# the shared data beside the checkout (speech recordings); elsewhere with WAVEPICK_TEST_SHARED
SHARED = Path(os.environ.get("WAVEPICK_TEST_SHARED") or REPO.parent / "shared")
FSDD = SHARED / "speech" / "fsdd-dev"
TEST_SECRET = "test-secret-key-for-signing-tokens-0123456789"


def pytest_configure(config: pytest.Config) -> None:
    """One speech cache for the whole run, for the apps tests build and the servers they
    start: the words in synthetic voices are computed once, not in every test (about 25 s
    of CPU each time)."""
    os.environ["WAVEPICK_SPEECH_CACHE_DIR"] = tempfile.mkdtemp(prefix="wavepick-speech-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop("WAVEPICK_SPEECH_CACHE_DIR", ""), ignore_errors=True)


@cache
def warm_speech_cache() -> None:
    """Fill the run's speech cache before the first server starts, so that no server's
    first answer waits for it (a server's own warm-up is off: it would take every test's
    server seconds)."""
    from server.headset.speech import make_speech_services

    cache_dir = Path(os.environ["WAVEPICK_SPEECH_CACHE_DIR"])
    make_speech_services(Settings(data_dir=cache_dir, speech_workers=0)).warm_up()


def process_running(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def all_ended(pids: list[int], within: float = 10.0) -> bool:
    """Whether every one of `pids` has ended within `within` seconds."""
    deadline = time.monotonic() + within
    while any(process_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def require_service(what: str, reason: str) -> None:
    """Skip for a missing service, or fail when CI promised it."""
    if IN_CI:
        pytest.fail(f"{what} is required when CI=true: {reason}")
    pytest.skip(f"{what} not available: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        require_service("PostgreSQL on 127.0.0.1:5432", str(exc))
    return PG_ADMIN


def create_pg_database(admin_url: str) -> tuple[str, str]:
    name = f"wavepick_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_pg_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    name, url = create_pg_database(pg_server)
    upgrade(url)
    yield url
    drop_pg_database(pg_server, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'wavepick.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test that takes this runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


def make_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        data_dir=data_dir,
        speech_warm_up=False,
        speech_workers=0,  # in the test's threads, like a test server's (ServerProcess)
    )


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app in-process on a fresh SQLite database, seeded with one user per role."""
    from tests.factories import seed_users

    app = create_app(settings)
    seed_users(app.state.sessions)
    with TestClient(app) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`uvicorn server.app:create_app` in its own process, as production runs it (or, with
    `cli`, `wavepick serve`)."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        extra_env: dict[str, str] | None = None,
        *,
        log_level: str = "warning",
        cli: bool = False,
    ):
        warm_speech_cache()
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "WAVEPICK_DATABASE_URL": database_url,
            "WAVEPICK_SECRET_KEY": TEST_SECRET,
            "WAVEPICK_DATA_DIR": str(data_dir),
            "WAVEPICK_LOG_LEVEL": log_level.upper(),
            "WAVEPICK_SPEECH_WARM_UP": "false",  # each test's server would spend seconds on it
            # speech in the server's threads: workers would warm up at the first answer
            # (tests/voice/test_workers.py and test_walk.py run speech in workers)
            "WAVEPICK_SPEECH_WORKERS": "0",
            **(extra_env or {}),
        }
        self.log_path = data_dir / f"server-{self.port}.log"
        self.log = self.log_path.open("w")
        uvicorn = [
            *("-m", "uvicorn", "server.app:create_app", "--factory", "--host", "127.0.0.1"),
            *("--port", str(self.port), "--log-level", log_level),
        ]
        wavepick = ["-c", "from server.cli import main; main()", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [sys.executable, *(wavepick if cli else uvicorn)],
            env=env,
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@contextmanager
def serving(
    database_url: str, tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A real server process on `database_url`, with one user per role."""
    from server.db import make_engine, make_session_factory
    from tests.factories import seed_users

    engine = make_engine(database_url)
    seed_users(make_session_factory(engine))
    engine.dispose()
    server = ServerProcess(database_url, tmp_path, extra_env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server_process(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server process on SQLite and on PostgreSQL, with one user per role."""
    with serving(database_url, tmp_path) as server:
        yield server


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the SQLite and PostgreSQL databases of `database_url`."""
    engine = make_engine(database_url, pool_size=10)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis on 127.0.0.1:6379", str(exc))
    yield REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """Redis names of this test alone (other test runs may share the Redis)."""
    name = f"wavepick-test-{uuid.uuid4().hex[:12]}"
    yield name
    forget_keys(redis_url, name)


def forget_keys(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
