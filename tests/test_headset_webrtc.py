"""WebRTC audio for the headset (protocol v1's `rtc_offer` extension) with a real aiortc peer
against a real server process: the microphone streams human digit recordings in real time
on an Opus track and they are heard; prompts come back on the track; talking over a prompt
stops it there as on the socket; when the peer connection closes, or the headset leaves it,
the socket carries the audio again; offers the server cannot take, or a server that takes
none, get an `error` frame and the socket goes on. A whole assignment walked over WebRTC
audio (stock equal to the ledger after it) is in tests/test_walk.py; the headset page's
WebRTC in tests/test_headset_page.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from websockets.asyncio.client import ClientConnection

from bench._human_voice import HumanVoice
from bench._microphone import Microphone, NoiseFloor
from bench._walker import Earpiece, PromptSeen, connect_webrtc
from server.app import create_app
from server.config import Settings
from server.headset.client_peer import ClientPeer
from server.migrate import upgrade
from tests.conftest import FSDD, ServerProcess, require_service
from tests.factories import HELLO, auth, pick_floor, seed_users

RATE = 8000
SPEAKER = "jackson"
WITHIN = 60.0  # seconds anything may take on a loaded machine: a timeout, never a measure


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, on the three-line floor of `pick_floor` (A-01-01: check
    digits 57, pick 3)."""
    data_dir = tmp_path_factory.mktemp("webrtc")
    database_url = f"sqlite:///{data_dir / 'wavepick.db'}"
    upgrade(database_url)
    pick_floor(database_url)
    server = ServerProcess(database_url, data_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def voice() -> HumanVoice:
    if not FSDD.is_dir():
        require_service("the human recordings of fsdd-dev", f"not found at {FSDD}")
    return HumanVoice(FSDD, SPEAKER, RATE, gap_ms=150, gain_db=-10.0)


@dataclass
class Headset:
    """A headset on the socket that may move its audio to WebRTC: everything the server
    sends (`ear`), the microphone streaming in real time on the track while WebRTC is up
    and as binary frames otherwise (`on_track`)."""

    ws: ClientConnection
    ear: Earpiece
    peer: ClientPeer
    mic: Microphone
    on_track: bool = False

    async def type(self, text: str, state: str | None = None) -> PromptSeen:
        """Type an answer; the prompt that follows it (in `state`, when given)."""
        before = len(self.ear.prompts)
        await self.ws.send(json.dumps({"type": "say", "text": text}))
        return await self.prompt_after(before, state)

    async def prompt_after(self, count: int, state: str | None = None) -> PromptSeen:
        ear = self.ear

        def arrived() -> bool:
            return any(state in (None, p.state) for p in ear.prompts[count:])

        assert await ear.until(arrived, WITHIN), f"no {state or ''} prompt: {ear.prompts}"
        return next(p for p in ear.prompts[count:] if state in (None, p.state))

    def heard_since(self, count: int) -> bool:
        return len(self.ear.heard) > count

    async def played(self, prompt: PromptSeen) -> None:
        assert await self.ear.until(lambda: prompt.ended_at is not None, WITHIN), prompt

    async def say(self, voice: HumanVoice, digits: str, state: str, takes: int = 6) -> PromptSeen:
        """Say `digits` (other takes while they are not taken) until the dialog moves to
        `state`; that prompt."""
        rng = random.Random(1)
        for _ in range(takes):
            before = len(self.ear.prompts)
            await self.mic.say(voice.say(digits, rng).samples)
            assert await self.ear.until(partial(self.heard_since, len(self.ear.heard)), WITHIN)
            prompt = await self.prompt_after(before)
            if prompt.state == state:
                return prompt
            await self.played(prompt)
        pytest.fail(f"{digits} never taken: heard {self.ear.heard}")


@contextlib.asynccontextmanager
async def headset(server: ServerProcess) -> AsyncIterator[Headset]:
    """Hello at 8 kHz, the first prompt, then WebRTC audio offered and up."""
    with httpx.Client(base_url=server.url) as http:
        headers = auth(http, "picker")
    url = server.url.replace("http://", "ws://") + "/ws/headset"
    ear = Earpiece()
    peer = ClientPeer(RATE, on_audio=ear.take_track_audio)
    async with websockets.connect(url, additional_headers=headers) as ws:

        async def microphone(pcm: bytes) -> None:
            await (peer.microphone.send(pcm) if on.on_track else ws.send(pcm))

        on = Headset(ws, ear, peer, Microphone(microphone, RATE, NoiseFloor(-60.0, seed=3)))
        tasks = [asyncio.create_task(ear.run(ws)), asyncio.create_task(on.mic.run())]
        try:
            await ws.send(json.dumps({**HELLO, "audio": {"sample_rate": RATE}}))
            await connect_webrtc(ws, peer, ear)
            assert ear.rtc_states == ["connected"], (ear.rtc_states, ear.errors)
            on.on_track = True
            yield on
        finally:
            on.mic.stop()
            await peer.close()
            await ws.close()
            await asyncio.gather(*tasks, return_exceptions=True)


def test_answers_are_heard_and_prompts_played_over_webrtc_audio(
    server: ServerProcess, voice: HumanVoice
) -> None:
    """Check digits spoken on the track are heard and taken, said over "help", which they
    stop there (`prompt_end` says so); every prompt after the connection comes on the
    track, none as binary frames."""

    async def scene() -> None:
        async with headset(server) as on:
            ear = on.ear
            first = await on.prompt_after(0, "assignment")
            await on.played(first)
            socket_audio = ear.socket_audio_bytes  # the first prompt's, before WebRTC was up
            location = await on.type("ready", "location")
            await on.played(location)
            assert location.first_audio_at is not None and ear.track_audio_samples > 0

            help_prompt = await on.type("help")
            assert await ear.until(lambda: help_prompt.first_audio_at is not None, WITHIN)
            quantity = await on.say(voice, "57", "quantity")  # said over "help"
            assert help_prompt.interrupted, help_prompt
            assert quantity.text == "Pick 3."
            await on.played(quantity)
            assert quantity.first_audio_at is not None

            spoken = [h for h in ear.heard if h.source == "speech"]
            assert [h.text for h in spoken if h.accepted] == ["five seven"], spoken
            assert on.peer.microphone.samples_sent > 0
            assert ear.socket_audio_bytes == socket_audio, "prompt audio came as binary frames"
            assert ear.errors == []

    asyncio.run(scene())


@pytest.mark.parametrize("leaves", ["peer_connection_closed", "rtc_close"])
def test_when_webrtc_audio_ends_the_socket_carries_it_again(
    server: ServerProcess, voice: HumanVoice, leaves: str
) -> None:
    """The headset's peer connection closes (the server says `rtc_state` closed), or the
    headset says `rtc_close`: prompts come as binary frames again and speech sent as
    binary frames is heard."""

    async def scene() -> None:
        async with headset(server) as on:
            ear = on.ear
            await on.played(await on.prompt_after(0))
            if leaves == "rtc_close":
                await on.ws.send(json.dumps({"type": "rtc_close"}))
            else:
                await on.peer.pc.close()
                assert await ear.until(lambda: ear.rtc_states[-1:] == ["closed"], WITHIN)
            on.on_track = False
            socket_audio = ear.socket_audio_bytes
            repeated = await on.type("say_again")
            await on.played(repeated)
            assert ear.socket_audio_bytes > socket_audio, "no prompt audio on the socket"

            heard = len(ear.heard)
            await on.mic.say(voice.say("57", random.Random(2)).samples)
            assert await ear.until(lambda: len(ear.heard) > heard, WITHIN)
            assert ear.heard[-1].source == "speech" and ear.heard[-1].text, ear.heard
            assert ear.errors == []

    asyncio.run(scene())


async def _offer_errors(url: str, headers: dict[str, str], offers: list[str]) -> list[str]:
    """The error codes of each offer after hello; then "say again" is still answered."""
    codes = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps(HELLO))
        ear = Earpiece()
        reading = asyncio.create_task(ear.run(ws))
        assert await ear.until(lambda: bool(ear.prompts), WITHIN)
        for sdp in offers:
            await ws.send(json.dumps({"type": "rtc_offer", "sdp": sdp}))
            assert await ear.until(lambda: len(ear.errors) > len(codes), WITHIN)
            codes.append(ear.errors[-1]["code"])
        prompts = len(ear.prompts)
        await ws.send(json.dumps({"type": "say", "text": "say_again"}))
        assert await ear.until(lambda: len(ear.prompts) > prompts, WITHIN)
        await ws.close()
        await reading
    assert ear.rtc_answer is None
    return codes


async def _data_only_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("chat")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def test_an_offer_the_server_cannot_take_is_an_error_and_the_socket_goes_on(
    server: ServerProcess,
) -> None:
    url = server.url.replace("http://", "ws://") + "/ws/headset"
    with httpx.Client(base_url=server.url) as http:
        headers = auth(http, "picker")
    offers = ["v=0\r\nnonsense", asyncio.run(_data_only_offer())]
    assert asyncio.run(_offer_errors(url, headers, offers)) == ["invalid_offer"] * 2


def test_a_server_without_webrtc_says_so_and_the_socket_goes_on(settings: Settings) -> None:
    """`WAVEPICK_RTC_HEADSET_AUDIO=false`: an offer is answered with `rtc_unavailable`, and
    the headset goes on over the socket (the app in-process: no floor is needed)."""
    app = create_app(settings.model_copy(update={"rtc_headset_audio": False}))
    seed_users(app.state.sessions)
    offer = asyncio.run(_data_only_offer())
    with (
        TestClient(app) as client,
        client.websocket_connect("/ws/headset", headers=auth(client, "picker")) as ws,
    ):
        ws.send_json(HELLO)
        assert _next(ws, "welcome")["operator"] == "picker"
        _next(ws, "prompt")
        ws.send_json({"type": "rtc_offer", "sdp": offer})
        assert _next(ws, "error")["code"] == "rtc_unavailable"
        ws.send_json({"type": "say", "text": "say_again"})
        assert _next(ws, "heard")["accepted"] is True
        assert _next(ws, "prompt")["state"] == "no_work"


def _next(ws: WebSocketTestSession, kind: str) -> dict[str, Any]:
    """The next text frame of type `kind` (audio and other frames passed over)."""
    while True:
        message = ws.receive()
        if message.get("text") and json.loads(message["text"])["type"] == kind:
            frame: dict[str, Any] = json.loads(message["text"])
            return frame
