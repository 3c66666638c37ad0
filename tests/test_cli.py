"""The `wavepick` command line, run as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

import pytest

from server.config import Settings
from tests.conftest import REPO, all_ended
from voice.stt import ENGINES


def wavepick(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from server.cli import main; main()", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "WAVEPICK_DATA_DIR": str(cwd), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        input=input,
    )


def test_db_upgrade_creates_the_default_sqlite_file_in_the_working_directory(
    tmp_path: Path,
) -> None:
    result = wavepick("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "wavepick.db").exists()
    reconcile = wavepick("reconcile", cwd=tmp_path)
    assert reconcile.returncode == 0 and '"consistent": true' in reconcile.stdout


def test_users_add_refuses_an_unknown_role(tmp_path: Path) -> None:
    wavepick("db", "upgrade", cwd=tmp_path)
    bad = wavepick(
        "users", "add", "ops", "--role", "boss", "--password", "long-enough-pw", cwd=tmp_path
    )
    assert bad.returncode != 0
    assert "role" in bad.stderr
    ok = wavepick(
        "users", "add", "ops", "--role", "admin", "--password", "long-enough-pw", cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    again = wavepick(
        "users", "add", "ops", "--role", "admin", "--password", "long-enough-pw", cwd=tmp_path
    )
    assert again.returncode == 1 and "already exists" in again.stderr


def test_users_add_gives_warehouses_and_is_audited(tmp_path: Path) -> None:
    from server.db import make_engine, make_session_factory, transaction
    from server.services import catalog, users
    from server.tables import AuditEvent

    wavepick("db", "upgrade", cwd=tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'wavepick.db'}")
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        for code in ("LAX", "FRA", "SZX"):
            catalog.create_warehouse(session, code=code, name=code, country="US", timezone="UTC")
    added = wavepick(
        "users",
        "add",
        "lead",
        "--role",
        "supervisor",
        "--password",
        "long-enough-pw",
        "--warehouse",
        "LAX",
        "--warehouse",
        "FRA",
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    unknown = wavepick(
        "users", "add", "x", "--role", "picker", "--password", "long-enough-pw",
        "--warehouse", "NOPE", cwd=tmp_path,
    )  # fmt: skip
    assert unknown.returncode == 1 and "NOPE" in unknown.stderr
    with transaction(sessions) as session:
        lead = users.get_by_username(session, "lead")
        assert lead is not None and [w.code for w in lead.warehouses] == ["FRA", "LAX"]
        assert users.get_by_username(session, "x") is None
        (event,) = session.query(AuditEvent).all()
        assert (event.action, event.actor, event.client, event.subject) == (
            "user.create",
            None,
            "cli",
            "lead",
        )
        assert event.new is not None and event.new["warehouses"] == ["FRA", "LAX"]
    engine.dispose()


def test_reconcile_of_an_unknown_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    wavepick("db", "upgrade", cwd=tmp_path)
    result = wavepick("reconcile", "--warehouse", "NOPE", cwd=tmp_path)
    assert result.returncode == 2 and "no warehouse NOPE" in result.stderr


def test_production_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    result = wavepick("db", "upgrade", cwd=tmp_path, env={"WAVEPICK_ENVIRONMENT": "production"})
    assert result.returncode == 2
    assert "WAVEPICK_SECRET_KEY" in result.stderr


def test_the_settings_offer_exactly_the_engines_voice_has() -> None:
    # settings name them without importing the engines (half a second at every start)
    assert get_args(Settings.model_fields["stt_engine"].annotation) == ENGINES


def test_an_unknown_recognition_engine_is_refused_at_start(tmp_path: Path) -> None:
    result = wavepick("db", "upgrade", cwd=tmp_path, env={"WAVEPICK_STT_ENGINE": "cascade"})
    assert result.returncode == 2
    assert "stt_engine" in result.stderr and "whisper" in result.stderr


def test_brokered_speech_and_speech_workers_need_redis(tmp_path: Path) -> None:
    brokered = {"WAVEPICK_SPEECH_BROKERED": "true"}
    refused = wavepick("serve", "--demo", cwd=tmp_path, env=brokered)
    assert refused.returncode == 2 and "needs WAVEPICK_REDIS_URL" in refused.stderr
    no_redis = wavepick("speech-worker", cwd=tmp_path)
    assert no_redis.returncode == 2 and "needs WAVEPICK_REDIS_URL" in no_redis.stderr
    unreachable = {"WAVEPICK_REDIS_URL": "redis://127.0.0.1:1/0"}
    down = wavepick("speech-worker", cwd=tmp_path, env=unreachable)
    assert down.returncode == 1 and "cannot reach Redis" in down.stderr


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    return children


@pytest.mark.slow
def test_a_speech_worker_stopped_while_it_warms_up_ends_with_its_worker(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    env = {"WAVEPICK_REDIS_URL": redis_url, "WAVEPICK_REDIS_PREFIX": prefix}
    log = tmp_path / "speech-worker.log"
    with log.open("w") as out:
        command = subprocess.Popen(
            [sys.executable, "-c", "from server.cli import main; main()", "speech-worker"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO), "WAVEPICK_DATA_DIR": str(tmp_path), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        children: list[int] = []
        deadline = time.monotonic() + 60
        while not children:
            assert command.poll() is None and time.monotonic() < deadline, log.read_text()
            children = children_of(command.pid)
            time.sleep(0.05)
        command.send_signal(signal.SIGTERM)
        assert command.wait(120) == 0, log.read_text()
        assert all_ended(children)
    finally:
        command.kill()


@pytest.mark.slow
def test_serve_demo_serves_stock_to_a_supervisor(tmp_path: Path) -> None:
    import httpx

    from tests.conftest import free_port

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from server.cli import main; main()",
            "serve",
            "--demo",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "WAVEPICK_DATA_DIR": str(tmp_path),
            "WAVEPICK_DEMO_PASSWORD": "demo-pass-1234",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                pytest.fail(process.stdout.read() if process.stdout else "serve exited")
            import time

            time.sleep(0.2)
        token = httpx.post(
            f"{url}/api/v1/auth/token",
            data={"username": "supervisor", "password": "demo-pass-1234"},
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        warehouses = httpx.get(f"{url}/api/v1/warehouses", headers=headers).json()
        assert {w["code"] for w in warehouses["items"]} == {"SZX", "LAX", "FRA"}
        stock = httpx.get(f"{url}/api/v1/stock", params={"warehouse": "FRA"}, headers=headers)
        assert stock.json()["total"] > 100
        locations = httpx.get(
            f"{url}/api/v1/warehouses/LAX/locations", params={"limit": 500}, headers=headers
        ).json()
        assert locations["total"] >= 100
        assert all(len(loc["check_digits"]) in (2, 3) for loc in locations["items"])
        assert httpx.get(f"{url}/api/v1/reconcile", headers=headers).json()["consistent"]
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "demo-pass-1234" in output  # the credentials are printed at start
    assert f"http://127.0.0.1:{port}" in output
