"""Who may be connected, and for how long: tokens are revoked by a password, role or status
change; the last admin stays; a headset session needs a role that may pick, ends within
seconds of its user being disabled, changed or their token expiring (and writes nothing
after), is taken over by the operator's next connection, and closes cleanly at shutdown.
Sockets are opened with a one-use ticket, and no secret reaches the server's log. Real
server processes on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from server import schemas
from server.db import make_engine, make_session_factory, transaction
from server.headset.client import HeadsetClient
from server.security import issue_token
from server.services import users
from server.tables import Movement, MovementKind, Role
from tests.conftest import TEST_SECRET, ServerProcess
from tests.factories import HELLO, PASSWORD, pick_floor

CHECK_S = 1.0  # WAVEPICK_SESSION_CHECK_SECONDS of the test servers


@pytest.fixture
def floor_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with an assignment for `picker` in LAX, that re-checks sockets every
    second, and logs what uvicorn logs by default (INFO, access lines)."""
    pick_floor(database_url)
    server = ServerProcess(
        database_url,
        tmp_path,
        {"WAVEPICK_SESSION_CHECK_SECONDS": str(CHECK_S)},
        log_level="info",
    )
    yield server
    server.stop()


def login(http: httpx.Client, username: str, password: str = PASSWORD) -> str:
    """A fresh token (not the test run's shared one: these tests revoke tokens)."""
    response = http.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ws_url(server: ServerProcess) -> str:
    return server.url.replace("http://", "ws://") + "/ws/headset"


def picks_by(database_url: str, actor: str) -> int:
    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine), write=False) as session:
            query = select(func.count(Movement.id)).where(
                Movement.actor == actor, Movement.kind == MovementKind.pick
            )
            return session.scalar(query) or 0
    finally:
        engine.dispose()


async def until_closed(ws: Any, within: float = 15) -> tuple[list[dict[str, Any]], int | None]:
    """Every text frame up to the close, and the close code."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        try:
            while True:
                message = await ws.recv()
                if isinstance(message, str):
                    frames.append(json.loads(message))
        except websockets.ConnectionClosed as closed:
            return frames, closed.rcvd.code if closed.rcvd else None


async def at_quantity(client: HeadsetClient) -> None:
    """Connect and walk to the first line's quantity prompt (pick 3 at A-01-01)."""
    await client.connect()
    await client.say("ready")
    turn = await client.say("57")
    assert turn.prompt is not None and turn.prompt["state"] == "quantity", turn


# ---- accounts: revocation and the last admin (point 9) ----


def test_an_old_token_stops_working_after_a_password_role_or_status_change(
    server_process: ServerProcess,
) -> None:
    with httpx.Client(base_url=server_process.url) as http:
        admin = bearer(login(http, "admin"))
        changes = {
            "picker": {"password": "a-brand-new-password"},
            "supervisor": {"role": "manager"},
            "manager": {"active": False},
        }
        old = {name: bearer(login(http, name)) for name in changes}
        untouched = bearer(login(http, "picker"))
        renamed = http.patch("/api/v1/users/picker", json={"full_name": "P"}, headers=admin)
        assert renamed.status_code == 200
        assert http.get("/api/v1/users/me", headers=untouched).status_code == 200
        for name, change in changes.items():
            assert http.patch(f"/api/v1/users/{name}", json=change, headers=admin).is_success
            refused = http.get("/api/v1/users/me", headers=old[name])
            assert refused.status_code == 401, (name, change)
            assert refused.headers["content-type"].startswith("application/problem+json")
        assert http.get("/api/v1/users/me", headers=untouched).status_code == 401
        fresh = bearer(login(http, "picker", "a-brand-new-password"))
        assert http.get("/api/v1/users/me", headers=fresh).json()["username"] == "picker"
        demoted = bearer(login(http, "supervisor"))
        assert http.get("/api/v1/users/me", headers=demoted).json()["role"] == "manager"


def test_the_last_active_admin_is_kept(server_process: ServerProcess) -> None:
    with httpx.Client(base_url=server_process.url) as http:
        admin = bearer(login(http, "admin"))
        for change in ({"role": "supervisor"}, {"active": False}):
            refused = http.patch("/api/v1/users/admin", json=change, headers=admin)
            assert refused.status_code == 409, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == "last_admin"
        assert http.get("/api/v1/users/me", headers=admin).json()["role"] == "admin"
        created = http.post(
            "/api/v1/users",
            json={"username": "admin2", "password": PASSWORD, "role": "admin"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        other = bearer(login(http, "admin2"))
        # admin2 may demote the first admin; then admin2 is the last and stays
        assert http.patch(
            "/api/v1/users/admin", json={"role": "supervisor"}, headers=other
        ).is_success
        for change in ({"role": "picker"}, {"active": False}):
            refused = http.patch("/api/v1/users/admin2", json=change, headers=other)
            assert refused.status_code == 409 and refused.json()["code"] == "last_admin"


# ---- the headset socket: role (point 1) ----


@pytest.mark.parametrize("role", ["manager"])
def test_a_role_that_may_not_pick_gets_no_headset_session(
    floor_server: ServerProcess, database_url: str, role: str
) -> None:
    with httpx.Client(base_url=floor_server.url) as http:
        token = login(http, role)

    async def main() -> tuple[list[dict[str, Any]], int | None]:
        async with websockets.connect(ws_url(floor_server), additional_headers=bearer(token)) as ws:
            with contextlib.suppress(websockets.ConnectionClosed):  # closed meanwhile
                await ws.send(json.dumps(HELLO))
                await ws.send(json.dumps({"type": "say", "text": "ready"}))
            return await until_closed(ws)

    frames, code = asyncio.run(main())
    assert code == 4403
    assert [f["type"] for f in frames] == ["error"] and frames[0]["code"] == "forbidden"
    assert picks_by(database_url, role) == 0


# ---- revocation and expiry end sessions (point 2) ----


def test_disabling_a_picker_ends_their_session_and_nothing_more_is_picked(
    floor_server: ServerProcess, database_url: str
) -> None:
    with httpx.Client(base_url=floor_server.url) as http:
        token, admin = login(http, "picker"), bearer(login(http, "admin"))

        async def main() -> tuple[list[dict[str, Any]], int | None]:
            client = HeadsetClient(ws_url(floor_server), token, turn_timeout=30)
            await at_quantity(client)
            disabled = await asyncio.to_thread(
                http.patch, "/api/v1/users/picker", json={"active": False}, headers=admin
            )
            assert disabled.status_code == 200
            # the picker answers at once: the quantity would move stock
            with contextlib.suppress(websockets.ConnectionClosed):
                await client.send_json({"type": "say", "text": "3"})
            assert client.ws is not None
            return await until_closed(client.ws)

        frames, code = asyncio.run(main())
    assert code == 4401
    assert any(f["type"] == "error" and f["code"] == "session_revoked" for f in frames)
    assert picks_by(database_url, "picker") == 0


def test_a_change_made_elsewhere_ends_the_session_within_seconds(
    floor_server: ServerProcess, database_url: str
) -> None:
    """A password change made by another server process (here: straight in the database)
    is noticed by the periodic re-check."""
    with httpx.Client(base_url=floor_server.url) as http:
        token = login(http, "picker")

    async def main() -> tuple[list[dict[str, Any]], int | None]:
        client = HeadsetClient(ws_url(floor_server), token, turn_timeout=30)
        await client.connect()
        engine = make_engine(database_url)
        with transaction(make_session_factory(engine)) as session:
            users.update_user(session, "picker", schemas.UserUpdate(password="changed-elsewhere"))
        engine.dispose()
        assert client.ws is not None
        return await until_closed(client.ws, within=CHECK_S * 10)

    frames, code = asyncio.run(main())
    assert code == 4401
    assert frames[-1] == {
        "type": "error",
        "code": "session_revoked",
        "message": "this user may no longer work here",
    }


def test_a_session_ends_when_its_token_expires(floor_server: ServerProcess) -> None:
    token = issue_token("picker", Role.picker, key=TEST_SECRET, ttl=dt.timedelta(seconds=4))

    async def main() -> tuple[list[dict[str, Any]], int | None]:
        client = HeadsetClient(ws_url(floor_server), token, turn_timeout=30)
        await client.connect()
        assert client.ws is not None
        return await until_closed(client.ws, within=20)

    frames, code = asyncio.run(main())
    assert code == 4401
    assert frames[-1]["code"] == "token_expired"


def test_no_pick_is_written_for_a_revoked_session(database_url: str) -> None:
    """The guard under the socket: once the user's token version moved on, the session's
    work refuses to write, even before the socket is closed."""
    from server.db import Database
    from server.headset.work import DatabasePickWork
    from voice.dialog import PickRejected

    lines = pick_floor(database_url)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    work = DatabasePickWork(Database(sessions), "picker", token_version=0)
    assert work.current_assignment() is not None
    task = work.next_task()
    assert task is not None and task.check_digits == lines[0].check_digits
    with transaction(sessions) as session:
        users.update_user(session, "picker", schemas.UserUpdate(role=Role.supervisor))
    with pytest.raises(PickRejected) as refused:
        work.confirm_pick(task.line_id, task.quantity)
    assert refused.value.reason == "session_revoked"
    engine.dispose()
    assert picks_by(database_url, "picker") == 0


# ---- tickets, and no secret in the logs (point 3) ----


def test_a_socket_opens_with_a_one_use_ticket_and_no_secret_is_logged(
    floor_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=floor_server.url) as http:
        token = login(http, "picker")
        anonymous = http.post("/api/v1/auth/ticket")
        assert anonymous.status_code == 401
        issued = http.post("/api/v1/auth/ticket", headers=bearer(token))
        assert issued.status_code == 200, issued.text
        assert issued.json()["expires_in"] == 30
        ticket = issued.json()["ticket"]
        assert token not in ticket and len(ticket) >= 40

    async def main() -> None:
        async with websockets.connect(f"{ws_url(floor_server)}?ticket={ticket}") as ws:
            await ws.send(json.dumps(HELLO))
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert welcome["type"] == "welcome" and welcome["operator"] == "picker"
        # used once: the same ticket opens nothing more
        async with websockets.connect(f"{ws_url(floor_server)}?ticket={ticket}") as ws:
            _frames, code = await until_closed(ws)
            assert code == 4401
        # older clients may still send the token in the query: accepted, never logged
        async with websockets.connect(f"{ws_url(floor_server)}?token={token}") as ws:
            await ws.send(json.dumps(HELLO))
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert welcome["type"] == "welcome"
        client = HeadsetClient(ws_url(floor_server), token, ticket=True, turn_timeout=30)
        await client.connect()
        assert client.welcome is not None and client.welcome["operator"] == "picker"
        await client.close()

    asyncio.run(main())
    floor_server.stop()
    log = floor_server.log_path.read_text()
    assert "/ws/headset?ticket=[redacted]" in log, log[-2000:]  # the lines were there
    assert "/ws/headset?token=[redacted]" in log
    assert token not in log
    assert ticket not in log
    assert token.split(".")[1] not in log


def test_secrets_are_scrubbed_from_log_lines() -> None:
    from server.requestlog import scrub

    line = scrub(
        '127.0.0.1:1 - "GET /ws/headset?device=x&token=eyJa.eyJb.c1&ticket=T0p_Secret HTTP/1.1"'
        ' authorization: Bearer abc.def {"password": "hunter22"} username=a&password=hunter22'
    )
    for secret in ("eyJa", "T0p_Secret", "abc.def", "hunter22"):
        assert secret not in line
    assert "device=x" in line and "username=a" in line


def test_a_ticket_is_redeemed_once_and_not_after_it_expires(
    sessions: Any,
) -> None:
    from server.security import TokenClaims
    from server.services import tickets

    claims = TokenClaims("picker", Role.picker, 0, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    with transaction(sessions) as session:
        live = tickets.issue_ticket(session, claims, ttl=dt.timedelta(seconds=30))
        stale = tickets.issue_ticket(session, claims, ttl=dt.timedelta(seconds=-1))
    with transaction(sessions) as session:
        grant = tickets.redeem_ticket(session, live.ticket)
        assert grant is not None and grant.username == "picker"
        assert (grant.token_version, grant.token_expires_at) == (0, claims.expires_at)
    with transaction(sessions) as session:
        assert tickets.redeem_ticket(session, live.ticket) is None
        assert tickets.redeem_ticket(session, stale.ticket) is None
        assert tickets.redeem_ticket(session, "made-up") is None


# ---- one session per operator, and shutdown (point 13) ----


def test_a_second_headset_takes_over_and_the_first_is_told_why(
    floor_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=floor_server.url) as http:
        token = login(http, "picker")

    async def main() -> None:
        first = HeadsetClient(ws_url(floor_server), token, turn_timeout=30)
        await at_quantity(first)
        second = HeadsetClient(ws_url(floor_server), token, turn_timeout=30)
        assert first.ws is not None
        closing = asyncio.create_task(until_closed(first.ws))
        await second.connect()
        frames, code = await closing
        assert code == 4409
        assert frames[-1]["code"] == "session_replaced"
        # the newer headset goes on where the first one stood
        assert second.prompt is not None and second.prompt["state"] == "quantity"
        await second.close()

    asyncio.run(main())


def test_open_sessions_close_cleanly_at_shutdown(database_url: str, tmp_path: Path) -> None:
    """`wavepick serve` stopped (SIGTERM) while a headset is connected: the headset is told
    why and the socket closed with 1001, and the server exits without an error."""
    pick_floor(database_url)
    floor_server = ServerProcess(database_url, tmp_path, log_level="info", cli=True)
    with httpx.Client(base_url=floor_server.url) as http:
        token = login(http, "picker")

    async def main() -> tuple[list[dict[str, Any]], int | None]:
        client = HeadsetClient(ws_url(floor_server), token, turn_timeout=30)
        await client.connect()
        floor_server.process.send_signal(signal.SIGTERM)
        assert client.ws is not None
        return await until_closed(client.ws)

    frames, code = asyncio.run(main())
    assert code == 1001
    assert frames[-1]["code"] == "server_shutdown"
    # uvicorn re-raises the signal once it has shut down
    assert floor_server.process.wait(timeout=20) in (0, -signal.SIGTERM)
    floor_server.stop()
    log = floor_server.log_path.read_text()
    assert "Traceback" not in log and '"level": "error"' not in log, log[-3000:]
