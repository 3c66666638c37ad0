"""Call recordings: a warehouse that records its calls gets each participant's audio and
video as files (a "Recording" participant everyone sees), for its managers only, deleted
after their days."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from rtc.client import RoomClient
from rtc.synthetic import ColorTrack, ToneTrack
from server.call_recordings import CallRecordings
from server.db import Database, make_engine, make_session_factory, transaction
from server.services.recordings import RecordedFile, file_recordings
from server.tables import Room, Warehouse
from tests import factories as f
from tests.conftest import ServerProcess, serving


@pytest.fixture
def recorded(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """LAX records its calls; FRA does not, and has a manager of its own."""
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    f.seed_users(sessions)
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
        f.warehouse(session, "FRA", country="DE", at=f.FRANKFURT)
    engine.dispose()
    with serving(sqlite_url, tmp_path) as server, httpx.Client(base_url=server.url) as http:
        f.user(http, "fra-manager", "manager", "FRA")
        admin = f.auth(http, "admin")
        switched = http.patch("/api/v1/warehouses/LAX", json={"record_calls": True}, headers=admin)
        assert switched.status_code == 200 and switched.json()["record_calls"] is True
        assert http.get("/api/v1/warehouses/FRA", headers=admin).json()["record_calls"] is False
        yield server


def a_call(server: ServerProcess, room: int) -> list[str]:
    """The manager (a tone and a picture) and the supervisor (a tone) talk for 6 s (the
    recorder's peer connection takes a few seconds to receive them); who they saw."""
    with httpx.Client(base_url=server.url) as http:
        tickets = {
            who: http.post("/api/v1/auth/ticket", headers=f.auth(http, who)).json()["ticket"]
            for who in ("manager", "supervisor")
        }
    return asyncio.run(talk(server.url.replace("http", "ws", 1), room, tickets))


async def talk(ws: str, room: int, tickets: dict[str, str]) -> list[str]:
    manager = RoomClient(
        f"{ws}/ws/rooms/{room}?ticket={tickets['manager']}",
        display_name="Mia",
        tracks=[ToneTrack(440.0), ColorTrack((200, 40, 40))],
    )
    supervisor = RoomClient(
        f"{ws}/ws/rooms/{room}?ticket={tickets['supervisor']}",
        display_name="Sam",
        tracks=[ToneTrack(880.0)],
    )
    await manager.join()
    await supervisor.join()
    await asyncio.sleep(6)
    seen = sorted(p["display_name"] for p in manager.participants.values())
    await supervisor.leave()
    await manager.leave()
    return seen


def recordings_of(http: httpx.Client, room: int, who: str) -> list[dict[str, Any]]:
    answer = http.get(f"/api/v1/recordings?room={room}", headers=f.auth(http, who))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_a_recorded_call_leaves_each_participants_audio_and_video_for_the_managers(
    recorded: ServerProcess, tmp_path: Path
) -> None:
    with httpx.Client(base_url=recorded.url, timeout=30) as http:
        opened = http.post(
            "/api/v1/rooms", json={"warehouse": "LAX"}, headers=f.auth(http, "manager")
        )
        room = opened.json()["id"]
        seen = a_call(recorded, room)
        assert seen == ["Recording", "Sam"]  # everyone in the call sees it is recorded

        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
        while len(files := recordings_of(http, room, "manager")) < 3:
            assert dt.datetime.now(dt.UTC) < deadline, files
            time.sleep(0.5)
        kinds = sorted((r["participant"], r["kind"], r["media_type"]) for r in files)
        assert kinds == [
            ("Mia", "audio", "audio/ogg"),
            ("Mia", "video", "video/webm"),
            ("Sam", "audio", "audio/ogg"),
        ]
        for recording in files:
            download = http.get(recording["file"], headers=f.auth(http, "manager"))
            assert download.status_code == 200
            assert download.headers["content-type"] == recording["media_type"]
            path = tmp_path / f"{recording['id']}.{recording['media_type'].split('/')[1]}"
            path.write_bytes(download.content)
            assert seconds_of(path, recording["kind"]) > 1.0, recording

        # nobody else may hear it: not a supervisor, not a manager of another warehouse
        supervisor = f.auth(http, "supervisor")
        assert http.get("/api/v1/recordings", headers=supervisor).status_code == 403
        assert http.get(files[0]["file"], headers=supervisor).status_code == 403
        assert recordings_of(http, room, "fra-manager") == []
        elsewhere = http.get(files[0]["file"], headers=f.auth(http, "fra-manager"))
        assert elsewhere.status_code == 404


def seconds_of(path: Path, kind: str) -> float:
    """How much decodable media the file holds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0] if kind == "audio" else container.streams.video[0]
        frames = list(container.decode(stream))
    if kind == "audio":
        return sum(frame.samples for frame in frames) / frames[0].sample_rate
    return float((frames[-1].pts - frames[0].pts) * frames[0].time_base) if frames else 0.0


def test_calls_are_not_recorded_where_the_warehouse_did_not_ask(
    recorded: ServerProcess,
) -> None:
    with httpx.Client(base_url=recorded.url, timeout=30) as http:
        manager = f.auth(http, "manager")
        room = http.post("/api/v1/rooms", json={"warehouse": "FRA"}, headers=manager).json()
        seen = a_call(recorded, room["id"])
        assert seen == ["Sam"]
        assert recordings_of(http, room["id"], "manager") == []
        forbidden = http.patch(
            "/api/v1/warehouses/FRA", json={"record_calls": True}, headers=manager
        )
        assert forbidden.status_code == 403  # only an admin decides


def test_recordings_past_their_days_are_deleted_with_their_files(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    f.seed_users(sessions)
    base = tmp_path / "recordings"
    now = dt.datetime.now(dt.UTC)
    with transaction(sessions) as session:
        lax = f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
        warehouse = session.get(Warehouse, lax.id)
        assert warehouse is not None
        room = Room(warehouse_id=warehouse.id, opened_by="manager")
        session.add(room)
        session.flush()
        files = []
        for name, age in (("old", 31), ("new", 29)):
            path = base / f"room-{room.id}" / name / "01-p-audio.ogg"
            path.parent.mkdir(parents=True)
            path.write_bytes(b"ogg")
            started = now - dt.timedelta(days=age)
            files.append(RecordedFile(name, "audio", path, "audio/ogg", 3, started, started))
        file_recordings(session, room.id, files, base)
    expired = asyncio.run(CallRecordings(Database(sessions), base, days=30).expire())
    engine.dispose()
    assert expired == 1
    assert not (base / f"room-{room.id}" / "old").exists()
    assert (base / f"room-{room.id}" / "new" / "01-p-audio.ogg").exists()
