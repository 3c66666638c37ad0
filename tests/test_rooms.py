"""Rooms against real server processes (SQLite, and PostgreSQL where the database matters)
and real aiortc peers: three participants each receive and decode the others' audio and
video; leaving, rejoining and vanishing; who may open, see and join a room; and malformed
signaling, after which the room goes on."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import websockets
from alembic import command

from rtc.client import RoomClient, RoomRefused
from rtc.synthetic import ColorTrack, ToneTrack, dominant_frequency, mean_rgb
from server.db import make_engine, make_session_factory, transaction
from server.migrate import alembic_config, upgrade
from server.security import issue_token
from server.services import catalog, rooms
from server.tables import ExceptionKind, PickException, Role
from tests import factories as f
from tests.conftest import (
    PG_ADMIN,
    REPO,
    TEST_SECRET,
    ServerProcess,
    create_pg_database,
    drop_pg_database,
    require_service,
)

# what each test participant sends: a tone (Hz) and a colour, told apart at the receiver
TONES = {"ana": 400.0, "ben": 700.0, "cai": 1000.0, "dee": 1300.0}
COLORS = {
    "ana": (200, 40, 40),
    "ben": (40, 200, 40),
    "cai": (40, 40, 200),
    "dee": (200, 200, 40),
}
MEDIA_WITHIN = 60  # s: a generous bound for media to flow on a loaded machine


@dataclass
class Floor:
    """A real server with warehouses LAX and FRA: the users per role work in both,
    `picker2` in LAX and `fra-manager` in FRA only."""

    server: ServerProcess
    database_url: str
    tickets_used: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30)

    def ticket(self, username: str) -> str:
        with self.http() as http:
            issued = http.post("/api/v1/auth/ticket", headers=f.auth(http, username))
            assert issued.status_code == 200, issued.text
            ticket: str = issued.json()["ticket"]
            return ticket

    def socket(self, room: int | str, query: str = "") -> str:
        base = self.server.url.replace("http://", "ws://", 1)
        return f"{base}/ws/rooms/{room}" + (f"?{query}" if query else "")

    def room_url(self, room: int | str, username: str) -> str:
        return self.socket(room, f"ticket={self.ticket(username)}")

    def open_room(
        self, *, exception_id: int | None = None, warehouse: str = "LAX", by: str = "supervisor"
    ) -> int:
        with self.http() as http:
            body = {"warehouse": warehouse, "exception_id": exception_id}
            opened = http.post("/api/v1/rooms", json=body, headers=f.auth(http, by))
            assert opened.status_code in (200, 201), opened.text
            room: int = opened.json()["id"]
            return room

    def raise_exception(self, *, warehouse: str = "LAX", by: str = "picker") -> int:
        """A call for help from the floor, as the headset records one."""
        engine = make_engine(self.database_url)
        try:
            with transaction(make_session_factory(engine)) as session:
                place = catalog.get_warehouse(session, warehouse)
                exception = PickException(
                    kind=ExceptionKind.help, warehouse_id=place.id, reported_by=by
                )
                session.add(exception)
                session.flush()
                return exception.id
        finally:
            engine.dispose()


class Floors:
    """Servers shared by this module's tests, started when first wanted."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: dict[str, Floor] = {}
        self.databases: list[str] = []

    def get(self, kind: str) -> Floor:
        if kind not in self.started:
            self.started[kind] = self._start(kind)
        return self.started[kind]

    def _start(self, kind: str) -> Floor:
        folder = self.folder / kind
        folder.mkdir()
        if kind == "sqlite":
            url = f"sqlite:///{folder / 'wavepick.db'}"
        else:
            try:
                with psycopg.connect(PG_ADMIN, connect_timeout=3):
                    pass
            except psycopg.Error as exc:
                require_service("PostgreSQL on 127.0.0.1:5432", str(exc))
            name, url = create_pg_database(PG_ADMIN)
            self.databases.append(name)
        upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        f.seed_users(sessions)
        with transaction(sessions) as session:
            f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
            f.warehouse(session, "FRA", country="DE", at=f.FRANKFURT)
        engine.dispose()
        server = ServerProcess(url, folder, {"WAVEPICK_SESSION_CHECK_SECONDS": "1"})
        with httpx.Client(base_url=server.url, timeout=30) as http:
            f.user(http, "picker2", "picker", "LAX")
            f.user(http, "fra-manager", "manager", "FRA")
        return Floor(server, url)

    def stop_all(self) -> None:
        for floor in self.started.values():
            floor.server.stop()
        for name in self.databases:
            drop_pg_database(PG_ADMIN, name)


@pytest.fixture(scope="module")
def floors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floors]:
    floors = Floors(tmp_path_factory.mktemp("rooms"))
    yield floors
    floors.stop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def floor(request: pytest.FixtureRequest, floors: Floors) -> Floor:
    """A shared server on SQLite, and one on PostgreSQL."""
    return floors.get(request.param)


@pytest.fixture
def sqlite_floor(floors: Floors) -> Floor:
    """The shared SQLite server, for tests where the database does not matter."""
    return floors.get("sqlite")


def participant(floor: Floor, room: int, name: str, username: str = "manager") -> RoomClient:
    """A client that sends `name`'s tone and colour, joining with a one-use ticket."""
    return RoomClient(
        floor.room_url(room, username),
        display_name=name,
        tracks=[ToneTrack(TONES[name]), ColorTrack(COLORS[name])],
    )


def gets(client: RoomClient, other: RoomClient, name: str, *, frames: int = 5) -> bool:
    """Whether `client` has decoded `other`'s audio and video, and they are `name`'s tone
    and colour."""
    assert other.participant is not None
    audio = client.last_frame(other.participant, "audio")
    video = client.last_frame(other.participant, "video")
    if audio is None or video is None:
        return False
    if min(client.received[(other.participant, k)] for k in ("audio", "video")) < frames:
        return False
    tone_ok = abs(dominant_frequency(audio) - TONES[name]) <= 60
    colour_ok = all(abs(a - b) <= 40 for a, b in zip(mean_rgb(video), COLORS[name], strict=True))
    return tone_ok and colour_ok


def everyone_gets_everyone(clients: dict[str, RoomClient]) -> bool:
    return all(
        gets(client, other, name)
        for receiver, client in clients.items()
        for name, other in clients.items()
        if name != receiver
    )


def m_lines(client: RoomClient) -> int:
    assert client.pc is not None and client.pc.localDescription is not None
    return client.pc.localDescription.sdp.count("\nm=")


# ---- media: three participants, leaving, rejoining, vanishing ----


def test_three_participants_each_receive_the_others_audio_and_video(
    sqlite_floor: Floor,
) -> None:
    room = sqlite_floor.open_room()

    async def main() -> None:
        clients = {
            name: participant(sqlite_floor, room, name, user)
            for name, user in (("ana", "manager"), ("ben", "supervisor"), ("cai", "admin"))
        }
        try:
            for client in clients.values():
                await client.join()
            await clients["ana"].until(lambda: everyone_gets_everyone(clients), MEDIA_WITHIN)
            ana, ben, cai = clients.values()
            assert set(ana.participants) == {ben.participant, cai.participant}
            assert ana.participants[ben.participant or ""]["display_name"] == "ben"
            assert all(not c.errors for c in clients.values()), [c.errors for c in clients.values()]
        finally:
            for client in clients.values():
                await client.close()

    asyncio.run(main())


def test_a_participant_who_leaves_is_gone_and_one_who_rejoins_is_forwarded_again(
    sqlite_floor: Floor,
) -> None:
    room = sqlite_floor.open_room()

    async def main() -> None:
        ana = participant(sqlite_floor, room, "ana")
        ben = participant(sqlite_floor, room, "ben", "supervisor")
        again: RoomClient | None = None
        try:
            await ana.join()
            await ben.join()
            await ben.until(lambda: gets(ben, ana, "ana") and gets(ana, ben, "ben"), MEDIA_WITHIN)
            lines = m_lines(ben)
            gone = ana.participant
            assert await ana.leave() == 1000
            await ben.until(lambda: gone not in ben.participants)
            left = [fr for fr in ben.frames if fr["type"] == "participant_left"]
            assert [fr["participant"]["id"] for fr in left] == [gone]

            again = participant(sqlite_floor, room, "ana")
            joined = await again.join()
            assert [p["id"] for p in joined["participants"]] == [ben.participant]
            await ben.until(
                lambda: gets(ben, again, "ana") and gets(again, ben, "ben"), MEDIA_WITHIN
            )
            assert again.participant != gone
            # the m-lines that carried the one who left carry the one who came back
            assert m_lines(ben) == lines
        finally:
            for client in (ana, ben, again):
                if client is not None:
                    await client.close()

    asyncio.run(main())


def test_a_participant_that_vanishes_is_removed_within_ten_seconds(sqlite_floor: Floor) -> None:
    """One participant's process is killed (its socket goes at once); another's is
    stopped (socket and peer connection stay open, nothing more comes from it)."""
    room = sqlite_floor.open_room()

    def spawn_participant(name: str) -> subprocess.Popen[str]:
        with sqlite_floor.http() as http:
            token = f.token(http, "manager")
        return subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tests" / "room_participant.py"),
                sqlite_floor.socket(room),
                str(TONES[name]),
                ",".join(map(str, COLORS[name])),
            ],
            env={**os.environ, "ROOM_TOKEN": token, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            text=True,
        )

    async def joined(process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        participant_id: str = json.loads(line)["participant"]
        return participant_id

    async def main(killed: subprocess.Popen[str], stopped: subprocess.Popen[str]) -> None:
        ana = participant(sqlite_floor, room, "ana")
        try:
            await ana.join()
            killed_id, stopped_id = await joined(killed), await joined(stopped)
            await ana.until(
                lambda: (
                    ana.received[(killed_id, "video")] > 5
                    and ana.received[(stopped_id, "video")] > 5
                ),
                MEDIA_WITHIN,
            )
            for process, gone in ((killed, killed_id), (stopped, stopped_id)):
                process.send_signal(signal.SIGKILL if process is killed else signal.SIGSTOP)
                vanished = time.monotonic()
                await ana.until(lambda gone=gone: gone not in ana.participants, 10)
                assert time.monotonic() - vanished <= 10
            assert not ana.errors
        finally:
            await ana.close()

    killed, stopped = spawn_participant("ben"), spawn_participant("cai")
    try:
        asyncio.run(main(killed, stopped))
    finally:
        for process in (killed, stopped):
            process.kill()
            process.wait()


def test_a_muted_kind_is_no_longer_forwarded(sqlite_floor: Floor) -> None:
    room = sqlite_floor.open_room()

    async def main() -> None:
        ana = participant(sqlite_floor, room, "ana")
        ben = participant(sqlite_floor, room, "ben", "supervisor")
        try:
            await ana.join()
            await ben.join()
            await ben.until(lambda: gets(ben, ana, "ana"), MEDIA_WITHIN)
            await ana.send({"type": "mute", "kind": "video", "muted": True})
            assert ana.participant is not None
            key = ana.participant

            def audio_grows_by(frames: int) -> Callable[[], bool]:
                start = ben.received[(key, "audio")]
                return lambda: ben.received[(key, "audio")] >= start + frames

            # a second of audio lets what was on its way when the mute came arrive...
            await ben.until(audio_grows_by(50))
            video = ben.received[(key, "video")]
            # ...and in the next second no video comes, while audio does
            await ben.until(audio_grows_by(50))
            assert ben.received[(key, "video")] == video
            await ana.send({"type": "mute", "kind": "video", "muted": False})
            await ben.until(lambda: ben.received[(key, "video")] > video + 5)
        finally:
            await ana.close()
            await ben.close()

    asyncio.run(main())


# ---- malformed signaling ----


def test_malformed_signaling_gets_an_error_and_the_room_goes_on(sqlite_floor: Floor) -> None:
    room = sqlite_floor.open_room()
    bad_frames = [
        ("this is not json", "malformed_json"),
        ("[1, 2]", "malformed_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "mute", "kind": "smell", "muted": true}', "invalid_frame"),
        ('{"type": "offer", "sdp": "v=0 and nothing else"}', "invalid_sdp"),
        ('{"type": "answer", "sdp": "v=0"}', "unexpected_answer"),
        (
            '{"type": "candidate", "candidate": {"candidate": "candidate:x", "sdpMid": "0"}}',
            "invalid_candidate",
        ),
        ('{"type": "join"}', "already_joined"),
        (json.dumps({"type": "offer", "sdp": "x" * 70_000}), "frame_too_large"),
    ]

    async def main() -> None:
        ana = participant(sqlite_floor, room, "ana")
        ben = participant(sqlite_floor, room, "ben", "supervisor")
        try:
            await ana.join()
            for text, code in bad_frames:
                await ana.send_text(text)
                assert (await ana.next_error())["code"] == code, text
            await ana.send_bytes(b"\x00\x01")
            assert (await ana.next_error())["code"] == "binary_frame"
            await ben.join()
            await ben.until(lambda: gets(ben, ana, "ana") and gets(ana, ben, "ben"), MEDIA_WITHIN)
            assert ana.close_code is None
        finally:
            await ana.close()
            await ben.close()

        async with websockets.connect(sqlite_floor.room_url(room, "manager")) as early:
            await early.send(json.dumps({"type": "offer", "sdp": "v=0"}))
            frame = json.loads(await asyncio.wait_for(early.recv(), 15))
            assert frame["code"] == "not_joined"

    asyncio.run(main())


# ---- who may join ----


async def refused(url: str, headers: dict[str, str] | None = None) -> tuple[str | None, int | None]:
    client = RoomClient(url, headers=headers)
    with pytest.raises(RoomRefused) as refusal:
        await client.join()
    return refusal.value.code, refusal.value.close_code


def test_who_may_join_a_room(floor: Floor) -> None:
    exception = floor.raise_exception(by="picker")
    room = floor.open_room(exception_id=exception)
    closed = floor.open_room()
    with floor.http() as http:
        assert http.post(
            f"/api/v1/rooms/{closed}/close", headers=f.auth(http, "manager")
        ).is_success
        token = f.token(http, "manager")
    expired = issue_token("manager", Role.manager, key=TEST_SECRET, ttl=dt.timedelta(seconds=-5))

    async def main() -> None:
        # the sign-in: none, a bad or expired token, a ticket used twice
        assert await refused(floor.socket(room)) == ("unauthorized", 4401)
        assert await refused(floor.socket(room, "token=not-a-token")) == ("unauthorized", 4401)
        assert await refused(floor.socket(room, f"token={expired}")) == ("unauthorized", 4401)
        ticket = floor.ticket("manager")
        first = RoomClient(floor.socket(room, f"ticket={ticket}"))
        await first.join()
        assert await refused(floor.socket(room, f"ticket={ticket}")) == ("unauthorized", 4401)
        await first.close()
        # the room: not a number, unknown, closed
        assert await refused(floor.room_url("abc", "manager")) == ("malformed_room", 4400)
        assert await refused(floor.room_url(99_999, "manager")) == ("room_not_found", 4404)
        assert await refused(floor.room_url(closed, "manager")) == ("room_closed", 4404)
        # the user: of another warehouse, a picker who did not raise the exception
        assert await refused(floor.room_url(room, "fra-manager")) == (
            "warehouse_forbidden",
            4403,
        )
        assert await refused(floor.room_url(room, "picker2")) == ("room_forbidden", 4403)
        # the picker who raised it, by ticket, header or the older ?token=
        picker = RoomClient(floor.room_url(room, "picker"))
        assert (await picker.join())["participant"].startswith("p-")
        header = RoomClient(floor.socket(room), headers={"Authorization": f"Bearer {token}"})
        await header.join()
        older = RoomClient(floor.socket(room, f"token={token}"))
        await older.join()
        for client in (picker, header, older):
            await client.close()

    asyncio.run(main())


def test_a_room_of_another_warehouse_is_forbidden_to_its_non_members(floor: Floor) -> None:
    room = floor.open_room(warehouse="FRA")

    async def main() -> None:
        assert await refused(floor.room_url(room, "picker2")) == ("warehouse_forbidden", 4403)
        member = RoomClient(floor.room_url(room, "fra-manager"))
        await member.join()
        await member.close()

    asyncio.run(main())


def test_a_revoked_or_expired_sign_in_ends_its_room_session(floor: Floor) -> None:
    room = floor.open_room()
    username = f"rev-{floor.database_url[-12:].replace('/', '').replace('.', '')}"
    with floor.http() as http:
        f.user(http, username, "manager", "LAX")
    short = issue_token("manager", Role.manager, key=TEST_SECRET, ttl=dt.timedelta(seconds=3))

    async def main() -> None:
        revoked = RoomClient(floor.room_url(room, username))
        expiring = RoomClient(floor.socket(room, f"token={short}"))
        await revoked.join()
        await expiring.join()
        with floor.http() as http:
            changed = await asyncio.to_thread(
                http.patch,
                f"/api/v1/users/{username}",
                json={"active": False},
                headers=f.auth(http, "admin"),
            )
            assert changed.status_code == 200, changed.text
        await revoked.until(lambda: revoked.close_code is not None, 15)
        assert revoked.close_code == 4401
        assert revoked.errors[-1]["code"] == "session_revoked"
        await expiring.until(lambda: expiring.close_code is not None, 20)
        assert expiring.close_code == 4401
        assert expiring.errors[-1]["code"] == "token_expired"
        for client in (revoked, expiring):
            await client.close()

    asyncio.run(main())


# ---- the HTTP API ----


def test_rooms_over_http(floor: Floor) -> None:
    exception = floor.raise_exception(by="picker")
    fra_exception = floor.raise_exception(warehouse="FRA", by="picker")
    with floor.http() as http:
        supervisor, manager = f.auth(http, "supervisor"), f.auth(http, "manager")

        def post(body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            return http.post("/api/v1/rooms", json=body, headers=headers)

        opened = post({"warehouse": "LAX", "exception_id": exception}, supervisor)
        assert opened.status_code == 201, opened.text
        room = opened.json()
        assert room["exception_id"] == exception and room["opened_by"] == "supervisor"
        assert room["socket"] == f"/ws/rooms/{room['id']}" and room["closed_at"] is None
        # an exception has one open room
        again = post({"warehouse": "LAX", "exception_id": exception}, manager)
        assert again.status_code == 200 and again.json()["id"] == room["id"]
        # who may open one, and where
        for body, headers, status, code in (
            ({"warehouse": "LAX"}, f.auth(http, "picker"), 403, "forbidden"),
            ({"warehouse": "FRA"}, f.auth(http, "picker2"), 403, "forbidden"),
            ({"warehouse": "LAX"}, f.auth(http, "fra-manager"), 403, "warehouse_forbidden"),
            (
                {"warehouse": "LAX", "exception_id": fra_exception},
                manager,
                422,
                "exception_elsewhere",
            ),
            ({"warehouse": "LAX", "exception_id": 99_999}, manager, 404, "exception_not_found"),
            ({"warehouse": "NOPE"}, f.auth(http, "admin"), 404, "warehouse_not_found"),
            ({"exception_id": exception}, manager, 422, "invalid"),
        ):
            answer = post(body, headers)
            assert (answer.status_code, answer.json()["code"]) == (status, code), (body, answer)
            assert answer.headers["content-type"].startswith("application/problem+json")
        # reading: the picker who raised it may, others of the floor may not
        assert http.get(f"/api/v1/rooms/{room['id']}", headers=f.auth(http, "picker")).is_success
        assert (
            http.get(f"/api/v1/rooms/{room['id']}", headers=f.auth(http, "picker2")).json()["code"]
            == "room_forbidden"
        )
        listed = http.get("/api/v1/rooms", params={"open_only": True}, headers=manager).json()
        assert room["id"] in [r["id"] for r in listed["items"]]
        fra = http.get("/api/v1/rooms", headers=f.auth(http, "fra-manager")).json()
        assert {r["warehouse"] for r in fra["items"]} <= {"FRA"}
        refused_list = http.get(
            "/api/v1/rooms", params={"warehouse": "LAX"}, headers=f.auth(http, "fra-manager")
        )
        assert refused_list.json()["code"] == "warehouse_forbidden"
        # closing: once over, the exception's next call opens a new room
        closed = http.post(f"/api/v1/rooms/{room['id']}/close", headers=manager)
        assert closed.status_code == 200 and closed.json()["closed_by"] == "manager"
        reopened = post({"warehouse": "LAX", "exception_id": exception}, supervisor)
        assert reopened.status_code == 201 and reopened.json()["id"] != room["id"]
        # a retried POST with its Idempotency-Key answers the first room, no new one
        key = {"Idempotency-Key": f"room-{room['id']}", **supervisor}
        first = post({"warehouse": "LAX"}, key)
        retried = post({"warehouse": "LAX"}, key)
        assert first.json()["id"] == retried.json()["id"]
        assert retried.headers.get("idempotent-replayed") == "true"


def test_opening_an_exceptions_room_at_once_gives_one_room(floor: Floor) -> None:
    exception = floor.raise_exception(by="picker")
    with floor.http() as http:
        headers = [f.auth(http, user) for user in ("supervisor", "manager", "admin")] * 2

    def open_as(headers: dict[str, str]) -> int:
        with floor.http() as http:
            answer = http.post(
                "/api/v1/rooms",
                json={"warehouse": "LAX", "exception_id": exception},
                headers=headers,
            )
            assert answer.status_code in (200, 201), answer.text
            room: int = answer.json()["id"]
            return room

    results, errors = f.at_once(*(lambda h=h: open_as(h) for h in headers))
    assert not errors and len(set(results)) == 1


def test_rooms_migrate_down_and_up(database_url: str) -> None:
    """0007 goes down and up again on a database that holds rooms."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    try:
        with transaction(sessions) as session:
            f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
            rooms.open_room(session, warehouse="LAX", exception_id=None, actor="test")
        command.downgrade(alembic_config(database_url), "0006")
        upgrade(database_url)
        with transaction(sessions) as session:
            opened = rooms.open_room(session, warehouse="LAX", exception_id=None, actor="test")
            assert opened.created and opened.room.closed_at is None
    finally:
        engine.dispose()
