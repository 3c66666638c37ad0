"""Calls when rooms are hosted by another process (`WAVEPICK_ROOMS_URL`, as `wavepick serve
--workers N` sets it for all but its first process): two real server processes on one
database, A hosting the rooms and B forwarding to it. A picker's headset on B opens a call
that A holds; a manager who reaches A and a supervisor who reaches B are in the same call
with the headset, and hear each other; B answers who is in the call and closes it. A
process that cannot reach the rooms says so."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from rtc.client import RoomClient, RoomRefused
from rtc.synthetic import ToneTrack, dominant_frequency
from server.app import create_app
from server.config import Settings
from server.headset.client import HeadsetClient
from tests.conftest import ServerProcess, free_port, make_settings
from tests.factories import auth, pick_floor, seed_users, socket_ticket
from tests.test_headset_call import (
    MANAGER_TONE,
    PICKER_TONE,
    RATE,
    Listening,
    main_frequency,
    next_event,
    tone,
)

SUPERVISOR_TONE = 660.0


@pytest.fixture
def two_processes(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A hosts the rooms; B forwards them to A. LAX's pick floor, one user per role."""
    pick_floor(sqlite_url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    hosting = ServerProcess(sqlite_url, tmp_path / "a")
    try:
        forwarding = ServerProcess(
            sqlite_url, tmp_path / "b", extra_env={"WAVEPICK_ROOMS_URL": hosting.url}
        )
        try:
            yield hosting, forwarding
        finally:
            forwarding.stop()
    finally:
        hosting.stop()


def test_one_call_across_the_process_that_hosts_it_and_one_that_forwards(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    hosting, forwarding = two_processes
    with httpx.Client(base_url=forwarding.url, timeout=30) as http:
        picker, manager, supervisor = (
            auth(http, who) for who in ("picker", "manager", "supervisor")
        )
    seen = asyncio.run(across(hosting, forwarding, picker, manager, supervisor))

    # all three in A's room, whichever process they reached
    assert seen["on_headset"]["user"] == "picker"
    assert {p["user"] for p in seen["supervisor_saw"]} == {"picker", "manager"}
    # they hear each other: the headset on B, the manager on A, the supervisor through B
    assert (
        abs(main_frequency(seen["call_audio"]) - MANAGER_TONE) < 30
        or abs(main_frequency(seen["call_audio"]) - SUPERVISOR_TONE) < 30
    )
    assert abs(dominant_frequency(seen["manager_heard_picker"]) - PICKER_TONE) < 30
    assert abs(dominant_frequency(seen["manager_heard_supervisor"]) - SUPERVISOR_TONE) < 30
    assert abs(dominant_frequency(seen["supervisor_heard_manager"]) - MANAGER_TONE) < 30
    # B says who is in the call, as A holds it, and closes it for everyone
    assert seen["listed"]["status"] == 200
    assert sorted(p["user"] for p in seen["listed"]["participants"]) == [
        "manager",
        "picker",
        "supervisor",
    ]
    assert seen["closed"]["status"] == 200, seen["closed"]
    assert seen["closed"]["again"] == 200  # the same Idempotency-Key: the kept answer
    assert (seen["manager_closed"], seen["supervisor_closed"]) == (4404, 4404)
    assert [f["state"] for f in seen["call_frames"]] == ["started", "ended"]
    # a bad ticket through B is refused by A, and the close code comes back whole
    assert seen["refused"] == (4401, "unauthorized")


async def across(
    hosting: ServerProcess,
    forwarding: ServerProcess,
    picker: dict[str, str],
    manager: dict[str, str],
    supervisor: dict[str, str],
) -> dict[str, Any]:
    a, b = (p.url.replace("http", "ws", 1) for p in (hosting, forwarding))
    watching = await asyncio.to_thread(socket_ticket, forwarding.url, manager)
    events = await websockets.connect(f"{b}/ws/events?ticket={watching}")
    headset = HeadsetClient(f"{b}/ws/headset", picker["Authorization"].split()[1], ticket=True)
    await headset.connect()
    await headset.say("ready")
    called = await headset.say("call supervisor")
    assert called.heard is not None and called.heard["accepted"], called
    listening = Listening(headset)
    opened = await next_event(events, "room_opened")
    await events.close()
    room = opened["room"]
    seen: dict[str, Any] = {}

    to_a = await asyncio.to_thread(socket_ticket, hosting.url, manager)
    to_b = await asyncio.to_thread(socket_ticket, forwarding.url, supervisor)
    on_a = RoomClient(
        f"{a}/ws/rooms/{room}?ticket={to_a}",
        display_name="Manager",
        tracks=[ToneTrack(MANAGER_TONE)],
    )
    through_b = RoomClient(
        f"{b}/ws/rooms/{room}?ticket={to_b}",
        display_name="Supervisor",
        tracks=[ToneTrack(SUPERVISOR_TONE)],
    )
    try:
        (seen["on_headset"],) = (await on_a.join())["participants"]
        seen["supervisor_saw"] = (await through_b.join())["participants"]
        await listening.until(lambda: listening.in_call)
        microphone = tone(PICKER_TONE, 3.0)
        for start in range(0, len(microphone), RATE // 50):  # 20 ms frames, in real time
            await headset.ws.send(microphone[start : start + RATE // 50].tobytes())  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
        picker_id = seen["on_headset"]["id"]
        await on_a.until(lambda: on_a.last_frame(picker_id, "audio") is not None)
        await on_a.until(lambda: on_a.last_frame(through_b.participant or "", "audio") is not None)
        await through_b.until(
            lambda: through_b.last_frame(on_a.participant or "", "audio") is not None
        )
        seen["manager_heard_picker"] = on_a.last_frame(picker_id, "audio")
        seen["manager_heard_supervisor"] = on_a.last_frame(through_b.participant or "", "audio")
        seen["supervisor_heard_manager"] = through_b.last_frame(on_a.participant or "", "audio")
        seen["call_audio"] = bytes(listening.call_audio)

        async with httpx.AsyncClient(base_url=forwarding.url, timeout=30) as http:
            listed = await http.get(f"/api/v1/rooms/{room}", headers=manager)
            seen["listed"] = {"status": listed.status_code, **listed.json()}
            once = {**manager, "Idempotency-Key": f"close-{room}"}
            closed = await http.post(f"/api/v1/rooms/{room}/close", headers=once)
            again = await http.post(f"/api/v1/rooms/{room}/close", headers=once)
            seen["closed"] = {"status": closed.status_code, "again": again.status_code}
        await on_a.until(lambda: on_a.close_code is not None, 15)
        await through_b.until(lambda: through_b.close_code is not None, 15)
        seen["manager_closed"], seen["supervisor_closed"] = on_a.close_code, through_b.close_code
        await listening.until(lambda: not listening.in_call)
        seen["call_frames"] = [f for f in listening.frames if f["type"] == "call"]
    finally:
        await on_a.close()
        await through_b.close()
        await headset.close()
        listening.task.cancel()

    stranger = RoomClient(f"{b}/ws/rooms/{room}?ticket=not-a-ticket")
    try:
        await stranger.join(within=15)
    except RoomRefused as refused:
        seen["refused"] = (refused.close_code, refused.code)
    finally:
        await stranger.close()
    return seen


@pytest.fixture
def cut_off(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """A process told rooms are hosted where nothing listens."""
    embedded = make_settings(sqlite_url, tmp_path).model_dump(exclude_unset=True)
    settings = Settings(**embedded, rooms_url=f"http://127.0.0.1:{free_port()}")
    app = create_app(settings)
    seed_users(app.state.sessions)
    with TestClient(app) as client:
        yield client


def test_rooms_that_cannot_be_reached_are_said_to_be_unavailable(cut_off: TestClient) -> None:
    answer = cut_off.get("/api/v1/rooms", headers=auth(cut_off, "manager"))
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "rooms_unavailable"
    assert answer.headers["retry-after"] == "5"
    with cut_off.websocket_connect("/ws/rooms/1") as socket:
        assert socket.receive_json()["code"] == "rooms_unavailable"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1013
    # a path that climbs out of the rooms is not forwarded anywhere
    manager = auth(cut_off, "manager")
    assert cut_off.get("/api/v1/rooms/%2e%2e/users/me", headers=manager).status_code == 404
    # the rest of the API does not depend on it
    assert cut_off.get("/api/v1/users/me", headers=auth(cut_off, "manager")).status_code == 200
