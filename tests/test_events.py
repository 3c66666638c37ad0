"""Events v1 at `/ws/events`, end to end: what a supervisor sees of their warehouses while
pickers work over HTTP and by headset, who is refused or cut off, that only committed work
is published and each fact once, that events cross server processes through Redis, and
that a client too slow to read is dropped while the others go on. Real server processes
(or the real app served by uvicorn in this process, where the test reaches into it),
SQLite and PostgreSQL, and Redis.

No assertion waits for a fact to be absent: a frame that must not come would arrive
before a later one that must, since one process publishes in commit order."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
import websockets
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from websockets.asyncio.client import ClientConnection

from server import events
from server.app import create_app
from server.config import Settings
from server.db import Database, make_engine, make_session_factory, transaction
from server.events import EventBus
from server.headset.client import HeadsetClient
from server.migrate import upgrade
from server.problems import Conflict
from server.services import allocation, picking, waves
from server.services.floor_events import (
    ExceptionOpened,
    LastHeard,
    RoomClosed,
    RoomOpened,
    Whereabouts,
    announce_picker,
    whereabouts_of,
)
from server.tables import (
    ExceptionKind,
    HeardAnswer,
    PickException,
)
from tests.conftest import ServerProcess, free_port, make_settings, require_service
from tests.factories import (
    FRANKFURT,
    LOS_ANGELES,
    auth,
    make_warehouse,
    order,
    pick_floor,
    seed_users,
    sku,
    stock,
    user,
    warehouse,
)

CHECK_S = 1.0  # WAVEPICK_SESSION_CHECK_SECONDS of the shared server
Frame = dict[str, Any]


# ---- helpers ----


def ws_base(url: str) -> str:
    return url.replace("http://", "ws://", 1)


def ticket(http: httpx.Client, username: str) -> str:
    issued = http.post("/api/v1/auth/ticket", headers=auth(http, username))
    assert issued.status_code == 200, issued.text
    value: str = issued.json()["ticket"]
    return value


async def watch(url: str, http: httpx.Client, username: str, **options: Any) -> ClientConnection:
    """An events socket of `username`, opened with a ticket, past its `subscribed` frame."""
    ws = await websockets.connect(f"{ws_base(url)}/ws/events?ticket={ticket(http, username)}")
    subscribed = await next_frame(ws)
    assert subscribed["type"] == "subscribed" and subscribed["user"] == username, subscribed
    return ws


async def next_frame(ws: ClientConnection, within: float = 30) -> Frame:
    async with asyncio.timeout(within):
        frame: Frame = json.loads(await ws.recv())
        return frame


async def frames_until(
    ws: ClientConnection, last: Callable[[Frame], bool], within: float = 30
) -> list[Frame]:
    """Every frame up to and including the first that `last` picks."""
    frames: list[Frame] = []
    async with asyncio.timeout(within):
        while not frames or not last(frames[-1]):
            frames.append(json.loads(await ws.recv()))
    return frames


async def until_closed(ws: ClientConnection, within: float = 30) -> tuple[list[Frame], int, str]:
    """Every frame up to the close, the close code and its reason."""
    frames: list[Frame] = []
    async with asyncio.timeout(within):
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return frames, closed.rcvd.code, closed.rcvd.reason


def call(http: httpx.Client, method: str, path: str, body: Frame | None, username: str) -> Any:
    """A successful request as `username`; its JSON answer (None for 204)."""
    response = http.request(method, path, json=body, headers=auth(http, username))
    assert response.is_success, response.text
    return response.json() if response.status_code != 204 else None


def post(http: httpx.Client, path: str, body: Frame | None, username: str) -> Any:
    return call(http, "POST", path, body, username)


def shape(frame: Frame, *keys: str) -> tuple[Any, ...]:
    return tuple(frame[key] for key in ("type", "warehouse", *keys))


def two_floors(database_url: str) -> None:
    """LAX and FRA, each with one released assignment of two lines (LAX: 2 CASE at
    A-01-01 then 3 LAMP at A-01-02; FRA: 2 CABLE, 3 PLUG), every SKU at one slot only."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    seed_users(sessions)
    floors = (
        ("LAX", "US", LOS_ANGELES, ("CASE", "LAMP")),
        ("FRA", "DE", FRANKFURT, ("CABLE", "PLUG")),
    )
    with transaction(sessions) as session:
        for code, country, at, skus in floors:
            warehouse(session, code, country=country, at=at)
            for n, sku_code in enumerate(skus, start=1):
                sku(session, sku_code)
                stock(session, code, f"A-01-{n:02d}", sku_code, 10)
            order(session, f"{code}-1", [(skus[0], 2), (skus[1], 3)], country=country)
    with transaction(sessions) as session:
        for code, *_ in floors:
            allocation.allocate_order(session, f"{code}-1")
    with transaction(sessions) as session:
        for code, *_ in floors:
            waves.release_wave(session, code, waves.WaveCriteria(), actor="supervisor")
    engine.dispose()


@contextmanager
def live_app(settings: Settings) -> Iterator[FastAPI]:
    """The real app served by uvicorn on loopback from a thread of this process, so that a
    test can run work on its database and publish on its bus directly."""
    app = create_app(settings)
    seed_users(app.state.sessions)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, ws_per_message_deflate=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-app", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the app stopped while starting"
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.05)
        app.state.url = f"http://127.0.0.1:{port}"
        yield app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# ---- what a supervisor sees ----


@pytest.fixture
def floors(database_url: str, tmp_path: Path) -> Iterator[str]:
    """The URL of the app serving `two_floors` on SQLite and on PostgreSQL."""
    two_floors(database_url)
    with live_app(make_settings(database_url, tmp_path)) as app:
        yield app.state.url


async def test_a_supervisor_sees_each_fact_of_their_warehouse_once(floors: str) -> None:
    """Picking over HTTP in LAX and FRA: a supervisor of LAX gets every LAX fact, in order
    and once, and nothing of FRA; an admin gets both floors."""
    with httpx.Client(base_url=floors) as http:
        user(http, "lax-sup", "supervisor", "LAX")
        everywhere = await watch(floors, http, "admin")
        lax = await watch(floors, http, "lax-sup")

        fra_work = post(http, "/api/v1/assignments/sign-on", {"warehouse": "FRA"}, "supervisor")
        lax_work = post(http, "/api/v1/assignments/sign-on", {"warehouse": "LAX"}, "picker")
        fra1, fra2 = fra_work["lines"]
        case, lamp = lax_work["lines"]
        post(
            http,
            f"/api/v1/pick-lines/{fra1['id']}/confirm",
            {"quantity": 2, "token": "f1"},
            "supervisor",
        )
        confirm = {"quantity": 2, "token": "l1"}
        post(http, f"/api/v1/pick-lines/{case['id']}/confirm", confirm, "picker")
        # the same answer again is a replay: nothing changes, nothing is published
        post(http, f"/api/v1/pick-lines/{case['id']}/confirm", confirm, "picker")
        post(http, f"/api/v1/pick-lines/{fra2['id']}/skip", None, "supervisor")
        damage = {"kind": "damage", "note": "crushed"}
        post(http, f"/api/v1/pick-lines/{fra2['id']}/exceptions", damage, "supervisor")
        short = {"picked": 1, "token": "l2", "note": "only one"}
        shorted = post(http, f"/api/v1/pick-lines/{lamp['id']}/short", short, "picker")
        exception = shorted["exception"]["id"]
        post(http, f"/api/v1/exceptions/{exception}/resolve", {"resolution": "accepted"}, "manager")
        post(http, f"/api/v1/assignments/{lax_work['number']}/complete", None, "picker")
        post(http, f"/api/v1/assignments/{lax_work['number']}/complete", None, "picker")  # again
        post(http, "/api/v1/assignments/sign-off", None, "picker")
        assert post(http, "/api/v1/assignments/sign-on", {"warehouse": "LAX"}, "picker") is None

    def waiting(frame: Frame) -> bool:
        return frame["type"] == "picker_status" and frame["status"] == "waiting"

    seen = await frames_until(lax, waiting)
    number = lax_work["number"]
    assert [shape(f) for f in seen] == [
        ("picker_status", "LAX"),
        ("pick_confirmed", "LAX"),
        ("pick_confirmed", "LAX"),
        ("exception_opened", "LAX"),
        ("exception_resolved", "LAX"),
        ("assignment_completed", "LAX"),
        ("picker_status", "LAX"),
        ("picker_status", "LAX"),
    ], seen
    signed_on, picked, shorted_line, opened, resolved, completed, signed_off, _ = seen
    assert signed_on | {"at": None} == {
        "type": "picker_status",
        "warehouse": "LAX",
        "at": None,
        "picker": "picker",
        "status": "picking",
        "assignment": number,
        "lines": 2,
        "lines_done": 0,
        "heard": None,
        "reprompts": None,
        "dialog_state": None,
    }
    assert picked | {"at": None} == {
        "type": "pick_confirmed",
        "warehouse": "LAX",
        "at": None,
        "picker": "picker",
        "assignment": number,
        "line": case["id"],
        "order": "LAX-1",
        "sku": "CASE",
        "location": "A-01-01",
        "lot": None,
        "quantity": 2,
        "picked": 2,
        "outcome": "picked",
        "remaining": 1,
    }
    assert shape(shorted_line, "line", "sku", "location", "quantity", "picked", "outcome") == (
        *("pick_confirmed", "LAX", lamp["id"], "LAMP", "A-01-02", 3, 1, "short"),
    )
    assert shorted_line["remaining"] == 0
    assert opened | {"at": None, "note": None} == {
        "type": "exception_opened",
        "warehouse": "LAX",
        "at": None,
        "exception": exception,
        "kind": "short",
        "picker": "picker",
        "assignment": number,
        "line": lamp["id"],
        "sku": "LAMP",
        "location": "A-01-02",
        "quantity": 2,
        "note": None,
    }
    assert opened["note"].startswith("only one")
    assert shape(resolved, "exception", "kind", "resolved_by", "resolution", "picker") == (
        *("exception_resolved", "LAX", exception, "short", "manager", "accepted", "picker"),
    )
    assert resolved["opened_at"] == opened["at"]
    assert shape(completed, "assignment", "picker", "staging", "lines", "lines_short") == (
        *("assignment_completed", "LAX", number, "picker", "STAGE-1", 2, 1),
    )
    assert (completed["units"], completed["wave_completed"]) == (3, True)
    assert completed["started_at"] is not None
    assert shape(signed_off, "picker", "status", "assignment") == (
        *("picker_status", "LAX", "picker", "signed_off", None),
    )
    for frame in seen:
        assert frame["at"].endswith("Z"), frame

    everything = await frames_until(everywhere, waiting)
    assert [shape(f) for f in everything] == [
        ("picker_status", "FRA"),
        ("picker_status", "LAX"),
        ("pick_confirmed", "FRA"),
        ("pick_confirmed", "LAX"),
        ("pick_skipped", "FRA"),
        ("exception_opened", "FRA"),
        ("pick_confirmed", "LAX"),
        ("exception_opened", "LAX"),
        ("exception_resolved", "LAX"),
        ("assignment_completed", "LAX"),
        ("picker_status", "FRA"),  # the picker signed off in every warehouse they work in
        ("picker_status", "LAX"),
        ("picker_status", "LAX"),
    ], everything
    assert [f for f in everything if f["warehouse"] == "LAX"] == seen
    skipped = everything[4]
    assert shape(skipped, "picker", "line", "sku", "location", "remaining") == (
        *("pick_skipped", "FRA", "supervisor", fra2["id"], "PLUG", "A-01-02", 1),
    )
    for ws in (everywhere, lax):
        await ws.close()


# ---- who may watch: the shared server ----


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One SQLite server for the tests of who may watch: `picker`'s assignment in LAX (for
    the headset), an empty FRA, and sockets re-checked every second."""
    folder = tmp_path_factory.mktemp("events")
    url = f"sqlite:///{folder / 'wavepick.db'}"
    upgrade(url)
    pick_floor(url)
    server = ServerProcess(url, folder, {"WAVEPICK_SESSION_CHECK_SECONDS": str(CHECK_S)})
    with httpx.Client(base_url=server.url) as http:
        make_warehouse(http, "FRA", locations=("B-01",), skus=())
    yield server
    server.stop()


async def test_pickers_and_strangers_are_refused(watched: ServerProcess) -> None:
    with httpx.Client(base_url=watched.url) as http:
        picker_ticket = ticket(http, "picker")
        used = ticket(http, "supervisor")
        manager = auth(http, "manager")
    base = f"{ws_base(watched.url)}/ws/events"
    async with websockets.connect(f"{base}?ticket={picker_ticket}") as ws:
        frames, code, _reason = await until_closed(ws)
        assert code == 4403
        assert [(f["type"], f["code"]) for f in frames] == [("error", "forbidden")]
    for url in (base, f"{base}?ticket=made-up", f"{base}?token=made-up"):
        async with websockets.connect(url) as ws:
            frames, code, _reason = await until_closed(ws)
            assert (frames, code) == ([], 4401), url
    async with websockets.connect(f"{base}?ticket={used}") as ws:
        assert (await next_frame(ws))["type"] == "subscribed"
    async with websockets.connect(f"{base}?ticket={used}") as ws:  # a ticket opens one socket
        assert (await until_closed(ws))[1] == 4401
    async with websockets.connect(base, additional_headers=manager) as ws:  # native clients
        subscribed = await next_frame(ws)
        assert subscribed == {
            "type": "subscribed",
            "protocol": 1,
            "user": "manager",
            "warehouses": ["FRA", "LAX"],
        }
        await ws.send("hello?")
        assert (await next_frame(ws))["code"] == "unexpected_frame"


async def test_a_revoked_watcher_is_disconnected(watched: ServerProcess) -> None:
    with httpx.Client(base_url=watched.url) as http:
        user(http, "leaving", "manager", "LAX")
        ws = await watch(watched.url, http, "leaving")
        call(http, "PATCH", "/api/v1/users/leaving", {"active": False}, "admin")
    frames, code, reason = await until_closed(ws)
    assert (code, reason) == (4401, "session_revoked")
    assert [(f["type"], f["code"]) for f in frames] == [("error", "session_revoked")]


async def test_a_watcher_moved_to_another_warehouse_follows_it(watched: ServerProcess) -> None:
    with httpx.Client(base_url=watched.url) as http:
        user(http, "mover", "supervisor", "LAX")
        user(http, "lax-hand", "picker", "LAX")
        user(http, "fra-hand", "picker", "FRA")
        ws = await watch(watched.url, http, "mover")
        call(http, "PUT", "/api/v1/users/mover/warehouses", {"warehouses": ["FRA"]}, "admin")
        assert await next_frame(ws, within=10 * CHECK_S) == {
            "type": "subscribed",
            "protocol": 1,
            "user": "mover",
            "warehouses": ["FRA"],
        }
        post(http, "/api/v1/assignments/sign-off", None, "lax-hand")
        post(http, "/api/v1/assignments/sign-off", None, "fra-hand")
    first = await next_frame(ws)
    assert shape(first, "picker", "status") == ("picker_status", "FRA", "fra-hand", "signed_off")
    await ws.close()


async def test_the_headset_dialog_publishes_through_the_same_services(
    watched: ServerProcess,
) -> None:
    """The dialog's writes publish their facts; the headset adds the picker's live status:
    connected, each answer heard (and kept for the recognition figures), offline when the
    headset goes without signing off."""
    with httpx.Client(base_url=watched.url) as http:
        ws = await watch(watched.url, http, "supervisor")
        token = auth(http, "picker")["Authorization"].split()[1]
    headset = HeadsetClient(f"{ws_base(watched.url)}/ws/headset", token, ticket=True)
    await headset.connect()  # signs on: picker_status
    await headset.say("ready")
    await headset.say("58")  # heard right, but not the check digits of A-01-01 (57)
    await headset.say("banana")  # not an answer: refused, asked again
    await headset.say("57")
    turn = await headset.say("3")  # the quantity: pick_confirmed
    assert turn.prompt is not None and turn.prompt["state"] == "location", turn
    await headset.close()
    frames = await frames_until(ws, lambda f: f.get("status") == "offline")
    statuses = [f["status"] for f in frames if f["type"] == "picker_status"]
    assert {"connected", "picking"} == set(statuses[:3])  # connected in LAX and in FRA
    heard = [
        (f["heard"]["text"], f["heard"]["accepted"], f["dialog_state"], f["reprompts"])
        for f in frames
        if f.get("status") == "heard"
    ]
    assert heard == [  # where the dialog is after each answer, re-prompted how often
        ("ready", True, "location", 0),
        ("58", True, "location", 0),
        ("banana", False, "location", 1),
        ("57", True, "quantity", 0),
        ("3", True, "location", 0),
    ]
    assert statuses[-1] == "offline"
    (confirmed,) = [f for f in frames if f["type"] == "pick_confirmed"]
    assert shape(confirmed, "picker", "sku", "location", "picked") == (
        *("pick_confirmed", "LAX", "picker", "CASE", "A-01-01", 3),
    )
    await ws.close()
    engine = make_engine(watched.database_url)
    with make_session_factory(engine)() as session:
        kept = session.execute(
            select(
                HeardAnswer.text,
                HeardAnswer.source,
                HeardAnswer.accepted,
                HeardAnswer.dialog_state,
                HeardAnswer.reprompts,
            )
            .where(HeardAnswer.picker == "picker")
            .order_by(HeardAnswer.id)
        ).all()
    engine.dispose()
    assert [tuple(row) for row in kept] == [  # the prompt each answered, and its re-prompts
        ("ready", "text", True, "assignment", 0),
        ("58", "text", True, "location", 0),
        ("banana", "text", False, "location", 0),
        ("57", "text", True, "location", 1),
        ("3", "text", True, "quantity", 0),
    ]


async def test_a_picker_calling_a_supervisor_by_voice_opens_a_call_for_the_managers(
    watched: ServerProcess,
) -> None:
    with httpx.Client(base_url=watched.url) as http:
        ws = await watch(watched.url, http, "manager")
        token = auth(http, "picker")["Authorization"].split()[1]
        manager = auth(http, "manager")
        headset = HeadsetClient(f"{ws_base(watched.url)}/ws/headset", token, ticket=True)
        await headset.connect()
        await headset.say("ready")
        called = await headset.say("call supervisor")
        assert called.heard is not None and called.heard["accepted"], called
        await headset.close()
        frames = await frames_until(ws, lambda f: f["type"] == "room_opened")
        await ws.close()
        opened = next(f for f in frames if f["type"] == "exception_opened")
        room = frames[-1]
        assert (opened["kind"], opened["picker"]) == ("help", "picker")
        assert (room["exception"], room["opened_by"]) == (opened["exception"], "picker")
    room_url = f"{watched.url}/api/v1/rooms/{room['room']}"
    async with httpx.AsyncClient() as client:
        joinable = await client.get(room_url, headers=manager)
    assert joinable.status_code == 200 and joinable.json()["closed_at"] is None


# ---- committed facts only, once ----


class SerializationFailure(Exception):
    sqlstate = "40001"  # what PostgreSQL says when a transaction lost a race: retried


def test_where_a_batch_of_pickers_is_read_in_a_few_statements(database_url: str) -> None:
    """Each heard answer goes to the board of its picker's whereabouts, read for a whole
    batch of answers at once: the assignment in progress with its progress, else every
    warehouse the picker works in (an admin: all), and none for a name that is no user."""
    pick_floor(database_url)  # LAX, whose one released assignment the picker signs on to
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    try:
        with transaction(sessions) as session:
            warehouse(session, "FRA", country="DE", at=FRANKFURT)  # the seeded users' too
        with transaction(sessions) as session:
            assignment = picking.sign_on(session, "picker", "LAX")
            assert assignment is not None
            first = picking.next_task(session, assignment.id)
            assert first is not None
            picking.confirm_pick(
                session, first.line_id, first.quantity, "picker", idempotency_token="t1"
            )
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        with transaction(sessions) as session:
            where = whereabouts_of(session, ["picker", "supervisor", "admin", "nobody", "picker"])
        assert where == {
            "picker": Whereabouts(assignment.id, 3, 1, ("LAX",)),
            "supervisor": Whereabouts(None, None, None, ("FRA", "LAX")),
            "admin": Whereabouts(None, None, None, ("FRA", "LAX")),
            "nobody": Whereabouts(None, None, None, ()),
        }
        reads = [s for s in statements if s.startswith("SELECT")]
        assert len(reads) == 3  # in progress; memberships; every warehouse, for the admin
    finally:
        engine.dispose()


async def test_rolled_back_work_publishes_nothing(database_url: str, tmp_path: Path) -> None:
    """Work that rolls back, a savepoint that rolls back and an attempt retried after a
    serialization failure publish nothing; what commits is published once."""
    pick_floor(database_url)
    with live_app(make_settings(database_url, tmp_path)) as app:
        db: Database = app.state.db
        with httpx.Client(base_url=app.state.url) as http:
            ws = await watch(app.state.url, http, "supervisor")
            work = post(http, "/api/v1/assignments/sign-on", {"warehouse": "LAX"}, "picker")
        assert shape(await next_frame(ws), "status") == ("picker_status", "LAX", "picking")
        line = work["lines"][0]["id"]

        def report(session: Session, note: str) -> PickException:
            kind = ExceptionKind.help
            return picking.report_exception(session, kind, "picker", line_id=line, note=note)

        def rolled_back(session: Session) -> None:
            report(session, "rolled back")
            raise Conflict("changed my mind", code="test")

        def in_a_savepoint(session: Session) -> int:
            savepoint = session.begin_nested()
            report(session, "savepoint rolled back")
            savepoint.rollback()
            return report(session, "committed").id

        attempts: list[str] = []

        def retried(session: Session) -> int:
            attempts.append(f"attempt {len(attempts) + 1}")
            exception = report(session, attempts[-1])
            if len(attempts) == 1:
                raise OperationalError("COMMIT", {}, SerializationFailure())
            return exception.id

        with pytest.raises(Conflict):
            await asyncio.to_thread(db.run, rolled_back)
        committed = await asyncio.to_thread(db.run, in_a_savepoint)
        second = await asyncio.to_thread(db.run, retried)
        assert attempts == ["attempt 1", "attempt 2"]
        with httpx.Client(base_url=app.state.url) as http:
            post(http, "/api/v1/assignments/sign-off", None, "picker")

        frames = await frames_until(ws, lambda f: f["type"] == "picker_status")
        await ws.close()
    assert [f["type"] for f in frames] == [
        "exception_opened",
        "exception_opened",
        "picker_status",  # signed off
    ], frames
    assert [shape(f, "exception", "note") for f in frames[:-1]] == [
        ("exception_opened", "LAX", committed, "committed"),
        ("exception_opened", "LAX", second, "attempt 2"),
    ]
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine), write=False) as session:
        notes = session.scalars(select(PickException.note).order_by(PickException.id)).all()
    engine.dispose()
    assert notes == ["committed", "attempt 2"]


# ---- what other code publishes ----


async def test_rooms_and_a_headsets_live_status_are_published_as_documented(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The calls docs/events.md gives other code: a room recorded in a unit of work, one
    published at once, and a picker's live status from the headset."""
    pick_floor(sqlite_url)
    with live_app(make_settings(sqlite_url, tmp_path)) as app:
        db: Database = app.state.db
        bus: EventBus = app.state.events
        with httpx.Client(base_url=app.state.url) as http:
            ws = await watch(app.state.url, http, "manager")
            work = post(http, "/api/v1/assignments/sign-on", {"warehouse": "LAX"}, "picker")
        assert shape(await next_frame(ws), "status") == ("picker_status", "LAX", "picking")

        def open_room(session: Session) -> None:
            opened = RoomOpened(warehouse="LAX", room=7, exception=None, opened_by="manager")
            events.record(session, opened)

        await asyncio.to_thread(db.run, open_room)
        bus.publish(
            RoomClosed(warehouse="LAX", room=7, exception=None, closed_by=None, reason="empty")
        )
        heard = LastHeard(text="five seven", confidence=0.93, accepted=True)
        await announce_picker(
            db, bus, "picker", "heard", heard=heard, reprompts=1, dialog_state="location"
        )
        await announce_picker(db, bus, "other", "offline")  # no such user: nowhere to go
        frames = [await next_frame(ws) for _ in range(3)]
        await ws.close()
    assert [shape(f, "room", "exception") for f in frames[:2]] == [
        ("room_opened", "LAX", 7, None),
        ("room_closed", "LAX", 7, None),
    ]
    assert (frames[0]["opened_by"], frames[1]["closed_by"], frames[1]["reason"]) == (
        *("manager", None, "empty"),
    )
    status = frames[2]
    assert shape(status, "picker", "status", "assignment", "lines", "lines_done") == (
        *("picker_status", "LAX", "picker", "heard", work["number"], 3, 0),
    )
    assert status["heard"] == {"text": "five seven", "confidence": 0.93, "accepted": True}
    assert (status["reprompts"], status["dialog_state"]) == (1, "location")


async def test_opening_and_closing_a_room_tells_the_warehouses_watchers(
    watched: ServerProcess,
) -> None:
    with httpx.Client(base_url=watched.url) as http:
        lax = await watch(watched.url, http, "manager")
        user(http, "fra-only", "supervisor", "FRA")
        fra = await watch(watched.url, http, "fra-only")
        room = post(http, "/api/v1/rooms", {"warehouse": "LAX"}, "supervisor")
        post(http, f"/api/v1/rooms/{room['id']}/close", None, "supervisor")
        opened, closed = await next_frame(lax), await next_frame(lax)
        await lax.close()
        fra_frames, _code, _reason = await until_closed_soon(fra)
    assert shape(opened, "room", "exception", "opened_by") == (
        *("room_opened", "LAX", room["id"], None, "supervisor"),
    )
    assert shape(closed, "room", "closed_by", "reason") == (
        *("room_closed", "LAX", room["id"], "supervisor", "closed"),
    )
    assert [f["type"] for f in fra_frames] == []  # nothing of LAX reaches FRA's watcher


async def until_closed_soon(ws: ClientConnection) -> tuple[list[Frame], int, str]:
    """What reached a socket that is then closed by the test: frames already in flight."""
    await asyncio.sleep(CHECK_S)
    await ws.close()
    return await until_closed(ws)


# ---- between processes ----


@pytest.fixture
def redis_url() -> str:
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis on 127.0.0.1:6379", str(exc))
    return url


@pytest.mark.redis
async def test_events_cross_server_processes_through_redis(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Two processes on one PostgreSQL and one Redis: what is committed on either reaches
    the watchers of both, each once and in the same order."""
    stream = f"wavepick-test:{uuid.uuid4().hex}"
    env = {"WAVEPICK_REDIS_URL": redis_url, "WAVEPICK_EVENTS_STREAM": stream}
    engine = make_engine(pg_url)
    seed_users(make_session_factory(engine))
    engine.dispose()
    with ExitStack() as running:
        running.callback(redis.Redis.from_url(redis_url).delete, stream)
        one = ServerProcess(pg_url, tmp_path, env)
        running.callback(one.stop)
        two = ServerProcess(pg_url, tmp_path, env)
        running.callback(two.stop)
        with httpx.Client(base_url=one.url) as on_one, httpx.Client(base_url=two.url) as on_two:
            make_warehouse(on_one, "LAX", locations=("A-01",), skus=())
            watchers = [
                await watch(one.url, on_one, "manager"),
                await watch(two.url, on_two, "supervisor"),
            ]
            post(on_one, "/api/v1/assignments/sign-on", {"warehouse": "LAX"}, "picker")
            post(on_two, "/api/v1/assignments/sign-off", None, "picker")
            post(on_one, "/api/v1/assignments/sign-on", {"warehouse": "LAX"}, "supervisor")
        seen = []
        for ws in watchers:
            frames = [await next_frame(ws) for _ in range(3)]
            seen.append([shape(f, "picker", "status") for f in frames])
        assert seen[0] == seen[1], seen
        assert sorted(seen[0]) == [
            ("picker_status", "LAX", "picker", "signed_off"),
            ("picker_status", "LAX", "picker", "waiting"),
            ("picker_status", "LAX", "supervisor", "waiting"),
        ]
        # nothing more came (no duplicate either): the next event is the next frame on both
        with httpx.Client(base_url=two.url) as on_two:
            post(on_two, "/api/v1/assignments/sign-off", None, "supervisor")
        for ws in watchers:
            last = await next_frame(ws)
            assert shape(last, "picker", "status") == (
                *("picker_status", "LAX", "supervisor", "signed_off"),
            )
            await ws.close()


# ---- a slow client ----


def unread_socket() -> socket.socket:
    """A client socket with the smallest receive buffer, so that frames it does not read
    back up to the server soon."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    return sock


async def test_a_client_too_slow_to_read_is_dropped_and_the_others_go_on(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(sqlite_url, tmp_path).model_copy(update={"events_queue": 256})
    with live_app(settings) as app:
        bus: EventBus = app.state.events
        url = app.state.url
        with httpx.Client(base_url=url) as http:
            make_warehouse(http, "LAX", locations=("A-01",), skus=())
            slow_ticket = ticket(http, "supervisor")
            fast = await watch(url, http, "manager")
        sock = unread_socket()
        sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        slow = await websockets.connect(
            f"{ws_base(url)}/ws/events?ticket={slow_ticket}", sock=sock, max_queue=1
        )
        assert (await next_frame(slow))["type"] == "subscribed"
        assert bus.subscribers == 2

        published: list[int] = []
        received: list[int] = []

        async def publish(count: int) -> None:
            """`count` exceptions with long notes (as a picker may leave), then read the fast
            client up to the last of them."""
            for _ in range(count):
                number = len(published)
                bus.publish(
                    ExceptionOpened(
                        warehouse="LAX",
                        exception=number,
                        kind="help",
                        picker="picker",
                        assignment=None,
                        line=None,
                        sku=None,
                        location=None,
                        quantity=None,
                        note=f"note {number}: " + "the carton is crushed " * 80,
                    )
                )
                published.append(number)
            while len(received) < len(published):
                received.append((await next_frame(fast))["exception"])

        while bus.subscribers == 2:
            assert len(published) < 200_000, "the slow client was never dropped"
            await publish(128)
        dropped_after = len(published)
        for _ in range(4):
            await publish(128)
        assert received == published  # every event, in order, once
        assert bus.subscribers == 1

        frames, code, reason = await until_closed(slow)
        assert (code, reason) == (4408, "events_overflow")
        assert len(frames) < dropped_after  # what was queued for it was let go
        await fast.close()
