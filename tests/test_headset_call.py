"""A picker's headset in the manager's call, end to end: the picker says "call supervisor"
(spoken), the manager watching the floor is told and joins the room the words opened from
a WebRTC client, they hear each other (the headset's microphone on the socket, the
manager's voice back as the headset's audio), the manager settles it (stock corrected with
a reason), and when the manager leaves, the dialog picks up where it stopped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
import websockets

from rtc.client import RoomClient
from rtc.synthetic import ColorTrack, ToneTrack, dominant_frequency
from server.headset.client import HeadsetClient
from tests.browser import speak_to_wav
from tests.conftest import ServerProcess, serving
from tests.factories import auth, pick_floor

RATE = 16000
PICKER_TONE = 1000.0  # what the headset's microphone says
MANAGER_TONE = 440.0  # what the manager's microphone says


@pytest.fixture
def floor(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    pick_floor(sqlite_url)
    with serving(sqlite_url, tmp_path) as server:
        yield server


def tone(frequency: float, seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")


def main_frequency(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))])


class Listening:
    """Everything the server sends the headset from now on: JSON frames, and the audio
    that came after the call started."""

    def __init__(self, headset: HeadsetClient) -> None:
        assert headset.ws is not None
        self.ws = headset.ws
        self.frames: list[dict[str, Any]] = []
        self.call_audio = bytearray()
        self.in_call = False
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if isinstance(message, bytes):
                if self.in_call:
                    self.call_audio += message
                continue
            frame = json.loads(message)
            self.frames.append(frame)
            if frame["type"] == "call":
                self.in_call = frame["state"] == "started"
            self._changed.set()

    async def until(self, condition: Any, within: float = 30) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


async def next_event(events: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            frame: dict[str, Any] = json.loads(await events.recv())
            if frame["type"] == kind:
                return frame


async def in_a_call(server: ServerProcess, call_supervisor: np.ndarray) -> dict[str, Any]:
    ws_url = server.url.replace("http", "ws", 1)
    with httpx.Client(base_url=server.url) as http:
        token = auth(http, "picker")["Authorization"].split()[1]
        manager = auth(http, "manager")
    async with httpx.AsyncClient(base_url=server.url) as http:
        watching = (await http.post("/api/v1/auth/ticket", headers=manager)).json()["ticket"]
    events = await websockets.connect(f"{ws_url}/ws/events?ticket={watching}")
    headset = HeadsetClient(f"{ws_url}/ws/headset", token, ticket=True)
    await headset.connect()
    await headset.say("ready")
    called = await headset.speak(call_supervisor)
    assert called.heard is not None and called.heard["accepted"], called
    assert called.heard["text"] == "call supervisor"
    listening = Listening(headset)
    opened = await next_event(events, "room_opened")  # the manager is told
    await events.close()
    async with httpx.AsyncClient(base_url=server.url) as http:
        room = (await http.get(f"/api/v1/rooms/{opened['room']}", headers=manager)).json()
        ticket = (await http.post("/api/v1/auth/ticket", headers=manager)).json()["ticket"]
    assert room["opened_by"] == "picker" and room["exception_id"] == opened["exception"]
    client = RoomClient(
        f"{ws_url}/ws/rooms/{room['id']}?ticket={ticket}",
        display_name="Manager",
        tracks=[ToneTrack(MANAGER_TONE)],
    )
    joined = await client.join()
    (picker,) = joined["participants"]  # the headset waits in the room it opened
    await listening.until(lambda: listening.in_call)
    microphone = tone(PICKER_TONE, 3.0)
    for start in range(0, len(microphone), RATE // 50):  # 20 ms frames, in real time
        await headset.ws.send(microphone[start : start + RATE // 50].tobytes())  # type: ignore[union-attr]
        await asyncio.sleep(0.02)
    heard_from_picker = client.last_frame(picker["id"], "audio")
    # settled in the call: two cases of stock found damaged beside the slot, written off
    decision = {
        "resolution": "two crushed cases, written off",
        "outcome": "adjusted",
        "quantity": -2,
        "reason": "damaged",
    }
    async with httpx.AsyncClient(base_url=server.url) as http:
        resolved = await http.post(
            f"/api/v1/exceptions/{opened['exception']}/resolve", json=decision, headers=manager
        )
        ledger = (await http.get("/api/v1/movements?limit=500", headers=manager)).json()
    mark = len(listening.frames)
    await client.leave()
    await listening.until(lambda: not listening.in_call)
    await listening.until(lambda: any(f["type"] == "prompt" for f in listening.frames[mark:]))
    after = listening.frames[mark:]
    await headset.close()
    listening.task.cancel()
    return {
        "resolved": resolved.json(),
        "resolved_status": resolved.status_code,
        "ledger": ledger["items"],
        "room": room,
        "picker": picker,
        "heard_from_picker": heard_from_picker,
        "call_audio": bytes(listening.call_audio),
        "after": after,
        "frames": listening.frames,
    }


def test_a_manager_and_a_picker_on_a_headset_hear_each_other_in_the_call(
    floor: ServerProcess, tmp_path: Path
) -> None:
    wav = speak_to_wav("call supervisor", tmp_path / "call.wav", trailing_silence_ms=0)
    spoken, rate = sf.read(wav, dtype="int16")
    if rate != RATE:
        from voice.audio import resample

        spoken = resample(spoken, rate, RATE)
    call = asyncio.run(in_a_call(floor, spoken))
    assert call["picker"]["display_name"] == "Picker"
    started = [f for f in call["frames"] if f["type"] == "call"]
    assert [f["state"] for f in started] == ["started", "ended"]
    # the manager hears the headset's microphone
    assert call["heard_from_picker"] is not None
    assert abs(dominant_frequency(call["heard_from_picker"]) - PICKER_TONE) < 30
    # the headset hears the manager
    assert len(call["call_audio"]) > RATE * 2  # more than a second of it
    assert abs(main_frequency(call["call_audio"]) - MANAGER_TONE) < 30
    # the call over, the dialog says its prompt again
    prompt = next(f for f in call["after"] if f["type"] == "prompt")
    assert prompt["state"] == "location"
    # the decision: on the exception (who, the room, the ledger entry) and in the ledger
    assert call["resolved_status"] == 200, call["resolved"]
    exception = call["resolved"]
    assert (exception["status"], exception["outcome"], exception["resolved_by"]) == (
        *("resolved", "adjusted", "manager"),
    )
    assert exception["room"] == call["room"]["id"]
    (movement,) = [m for m in call["ledger"] if m["id"] == exception["movement"]]
    assert (movement["actor"], movement["reason"], movement["sku"]) == (
        "manager",
        "damaged",
        "CASE",
    )
    assert (movement["from_location"], movement["quantity"]) == ("A-01-01", 2)


async def bridged(tmp_path: Path) -> dict[str, Any]:
    """In one process: a headset call nobody joins, then one a recorder and a manager
    join, the manager alone counting as someone to talk to."""
    from rtc.hub import RoomHub
    from rtc.loopback import LoopbackSignaling
    from rtc.recorder import RoomRecorder
    from rtc.room import Member
    from server.headset.call import HeadsetCall, HereCalls

    hub = RoomHub()
    seen: list[str] = []
    happened = {"started": asyncio.Event(), "ended": asyncio.Event()}

    async def started(call: HeadsetCall) -> None:
        seen.append("started")
        happened["started"].set()

    async def ended(call: HeadsetCall) -> None:
        seen.append("ended")
        happened["ended"].set()

    picker = Member("picker", "Picker", "picker")
    alone = HeadsetCall(
        HereCalls(hub, picker), 1, RATE, on_started=started, on_ended=ended, wait_for_others_s=1
    )
    over = asyncio.Event()
    alone.when_over(over.set)
    await asyncio.wait_for(over.wait(), 10)
    nobody_came = list(seen)

    call = HeadsetCall(HereCalls(hub, picker), 2, RATE, on_started=started, on_ended=ended)
    filed: list[Any] = []

    async def file(tracks: list[Any]) -> None:
        filed.append(tracks)

    recorder = RoomRecorder(hub.room("2"), tmp_path / "rec", on_done=file)
    await asyncio.sleep(2)
    before_manager = list(seen)
    manager = RoomClient(
        url="",
        display_name="Mia",
        tracks=[ToneTrack(MANAGER_TONE), ColorTrack((200, 30, 30))],
        connection=LoopbackSignaling(hub.room("2"), Member("manager", "Mia", "manager")),
    )
    await manager.join()
    await asyncio.wait_for(happened["started"].wait(), 10)
    assert manager.participant is not None
    kinds = {(manager.participant, "audio"), (manager.participant, "video")}
    await call.client.until(lambda: all(call.client.received[k] > 10 for k in kinds))
    decoded = {
        kind: call.client.last_frame(manager.participant, kind) for kind in ("audio", "video")
    }
    await manager.leave()
    await asyncio.wait_for(happened["ended"].wait(), 10)
    await asyncio.wait_for(recorder.task, 20)  # then the recorder is left alone, and goes
    await call.hang_up()
    return {
        "nobody_came": nobody_came,
        "before_manager": before_manager,
        "seen": seen,
        "filed": filed,
        "room_gone": "2" not in hub,
        "decoded": decoded,
    }


def test_a_call_nobody_joins_is_given_up_and_a_recorder_is_nobody_to_talk_to(
    tmp_path: Path,
) -> None:
    result = asyncio.run(bridged(tmp_path))
    assert result["nobody_came"] == []  # given up quietly: the dialog never left
    assert result["before_manager"] == []  # the recorder alone starts no call
    assert result["seen"] == ["started", "ended"]
    assert result["filed"]  # the recorder left once the people had
    assert result["room_gone"]
    # the headset hears the manager and never looks: the camera's frames are not decoded
    assert result["decoded"]["audio"] is not None and result["decoded"]["video"] is None
