"""The call page in a real headless Chromium (fake camera and microphone) against a real
server process: a manager opens the call of an exception from its link, an aiortc peer
(`rtc.client.RoomClient`) joins the same room, and each receives and decodes the other's
audio and video; the exception is shown beside the video, in en-US and zh-CN; mute is
said to the server; leaving is seen by the peer. A picker of another warehouse is told
they may not join (4403). A picker in a call shows the shelf from the headset page: its
back camera joins the call beside the headset's voice."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from fastapi.testclient import TestClient
from playwright.async_api import expect

from rtc.client import RoomClient
from rtc.synthetic import ColorTrack, ToneTrack
from server.db import make_engine, make_session_factory, transaction
from server.migrate import upgrade
from server.services import catalog
from server.tables import ExceptionKind, PickException
from tests import factories as f
from tests.browser import CHROMIUM, chromium_args, require_chromium
from tests.conftest import ServerProcess, serving
from tests.test_headset_call import next_event

WITHIN = 30  # s: for media to flow on a loaded machine
NOTE = "Carton crushed at A-01-02"


@dataclass
class CallFloor:
    """A real server with LAX and FRA: the seeded users work in both, `fra-picker` in FRA
    only; one damage exception raised in LAX by `picker`."""

    server: ServerProcess
    exception_id: int

    @property
    def url(self) -> str:
        return self.server.url

    def room_socket(self, room: str, username: str) -> str:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            issued = http.post("/api/v1/auth/ticket", headers=f.auth(http, username))
            assert issued.status_code == 200, issued.text
            ticket = issued.json()["ticket"]
        return f"{self.url.replace('http://', 'ws://', 1)}/ws/rooms/{room}?ticket={ticket}"


@pytest.fixture(scope="module")
def call_floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CallFloor]:
    require_chromium()
    folder = tmp_path_factory.mktemp("call")
    url = f"sqlite:///{folder / 'wavepick.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    f.seed_users(sessions)
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
        f.warehouse(session, "FRA", country="DE", at=f.FRANKFURT)
    f.seed_users(sessions)
    with transaction(sessions) as session:
        exception = PickException(
            kind=ExceptionKind.damage,
            warehouse_id=catalog.get_warehouse(session, "LAX").id,
            reported_by="picker",
            note=NOTE,
        )
        session.add(exception)
        session.flush()
        exception_id = exception.id
    engine.dispose()
    server = ServerProcess(url, folder)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            f.user(http, "fra-picker", "picker", "FRA")
        yield CallFloor(server, exception_id)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake microphone: a 500 Hz tone, 1 s, looped by Chromium."""
    path = tmp_path_factory.mktemp("media") / "tone.wav"
    rate = 48000
    t = np.arange(rate) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * 500 * t)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


class CallPage:
    """The call page in Chromium, with what the page says on its sockets and its errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.sent: list[dict[str, Any]] = []
        self.page_errors: list[str] = []
        self.console: list[str] = []
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("websocket", self._socket)

    def _socket(self, ws: Any) -> None:
        def sent(payload: str | bytes) -> None:
            if isinstance(payload, str):
                self.sent.append(json.loads(payload))

        ws.on("framesent", sent)

    async def hook(self) -> dict[str, Any]:
        hook: dict[str, Any] = await self.page.evaluate(
            "() => JSON.parse(JSON.stringify(window.wavepickCall))"
        )
        return hook

    async def until(self, condition: str, within: float = WITHIN) -> None:
        """Wait until `condition` (JavaScript, of `hook`) holds; fail with the hook."""
        try:
            await self.page.wait_for_function(
                f"() => {{ const hook = window.wavepickCall; return {condition}; }}",
                timeout=within * 1000,
                polling=200,
            )
        except Exception as exc:
            said = await self.page.evaluate(
                "() => [...document.querySelectorAll('[role=alert]')].map((n) => n.textContent)"
            )
            raise AssertionError(
                f"{condition}: never; the page: {await self.hook()}, said {said},"
                f" errors {self.page_errors}, console {self.console[-10:]}"
            ) from exc

    async def sign_in(self, url: str, username: str) -> None:
        await self.page.goto(url)
        await self.page.fill("#username", username)
        await self.page.fill("#password", f.PASSWORD)
        await self.page.click("#signin-button")


def _offered(peer: RoomClient) -> list[str]:
    keep = ("m=", "a=mid", "a=rtpmap", "a=sendonly", "a=recvonly", "a=inactive", "a=msid")
    offers = [fr["sdp"] for fr in peer.frames if fr["type"] == "offer"]
    return [ln for sdp in offers[-1:] for ln in sdp.splitlines() if ln.startswith(keep)]


@asynccontextmanager
async def call_page(base_url: str, microphone: Path) -> AsyncIterator[CallPage]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=chromium_args(microphone), headless=True
        )
        try:
            context = await browser.new_context(viewport={"width": 1024, "height": 768})
            await context.grant_permissions(["camera", "microphone"], origin=base_url)
            yield CallPage(await context.new_page())
        finally:
            await browser.close()


def test_the_call_page_is_served_and_linked(client: TestClient) -> None:
    for page in ("/call.html", "/call.js", "/call.css"):
        assert client.get(page).status_code == 200, page
    assert 'href="call.html"' in client.get("/").text


@asynccontextmanager
async def in_a_call(
    floor: CallFloor, microphone: Path
) -> AsyncIterator[tuple[CallPage, RoomClient, str]]:
    """The manager on the call page, joined from the exception's link, and an aiortc peer
    (a tone and a red picture) in the same room; the page's participant id."""
    async with call_page(floor.url, microphone) as call:
        # From the exception's link: the room is opened, then joined.
        await call.sign_in(f"{floor.url}/call.html?exception={floor.exception_id}", "manager")
        await call.until("hook.state === 'joined' && hook.room !== null")
        browser = await call.hook()
        room, me = browser["room"], browser["participant"]
        assert call.page.url.endswith(f"room={room}")
        peer = RoomClient(
            floor.room_socket(room, "supervisor"),
            display_name="Ana",
            tracks=[ToneTrack(700.0), ColorTrack((200, 40, 40))],
        )
        try:
            await peer.join()
            assert me in peer.participants
            yield call, peer, me
        finally:
            await peer.close()


@pytest.mark.browser
@pytest.mark.slow
def test_the_browser_sees_and_hears_an_aiortc_peer_then_leaves(
    call_floor: CallFloor, microphone: Path
) -> None:
    asyncio.run(_browser_side(call_floor, microphone))


async def _browser_side(floor: CallFloor, microphone: Path) -> None:
    async with in_a_call(floor, microphone) as (call, peer, me):
        # the browser decodes the peer's video and receives its audio
        await call.until(
            "hook.framesDecoded >= 10 && hook.audioPacketsReceived >= 20"
            " && hook.remoteTracks.video === 1 && hook.remoteTracks.audio === 1"
        )
        shown = await call.hook()
        assert shown["packetsSent"]["audio"] > 0 and shown["packetsSent"]["video"] > 0, shown
        assert [p["display_name"] for p in shown["participants"]] == ["Ana"]
        assert await call.page.text_content("#grid figcaption") == "Ana"
        assert shown["lastError"] is None, shown

        # The exception beside the video, its time in the viewer's zone.
        assert await call.page.locator("#exception-panel").is_visible()
        assert await call.page.text_content("#exception-kind") == "Damage"
        assert await call.page.text_content("#exception-note") == NOTE
        assert await call.page.text_content("#exception-reporter") == "picker"
        assert await call.page.get_attribute("#exception-created", "datetime")
        assert (await call.page.text_content("#exception-created") or "").strip()

        # Mute is said to the server; the page in Chinese.
        await call.page.click("#mute-audio")
        assert {"type": "mute", "kind": "audio", "muted": True} in call.sent
        assert await call.page.get_attribute("#mute-audio", "aria-pressed") == "true"
        await call.page.select_option("#call-locale", "zh-CN")
        assert await call.page.text_content("#leave") == "离开"
        assert await call.page.text_content("#exception-kind") == "破损"
        assert await call.page.get_attribute("html", "lang") == "zh-CN"

        # Leaving: the peer sees the browser go.
        await call.page.click("#leave")
        await peer.until(lambda: me not in peer.participants, WITHIN)
        left = [fr for fr in peer.frames if fr["type"] == "participant_left"]
        assert [fr["participant"]["id"] for fr in left] == [me]
        await call.until("hook.state === 'left'")
        assert {"type": "leave"} in call.sent
        assert call.page_errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_an_aiortc_peer_decodes_the_browsers_audio_and_video(
    call_floor: CallFloor, microphone: Path
) -> None:
    asyncio.run(_peer_side(call_floor, microphone))


async def _peer_side(floor: CallFloor, microphone: Path) -> None:
    async with in_a_call(floor, microphone) as (call, peer, me):
        await call.until("hook.packetsSent.audio > 0 && hook.packetsSent.video > 0")
        try:
            await peer.until(
                lambda: peer.received[(me, "video")] >= 10 and peer.received[(me, "audio")] >= 20,
                15,
            )
        except TimeoutError:
            raise AssertionError(
                f"the peer got {peer.received} on {peer.receptions} from {me};"
                f" the page: {await call.hook()}; offered {_offered(peer)}"
            ) from None
        video = peer.last_frame(me, "video")
        assert video is not None and video.width >= 320, video


@pytest.mark.browser
@pytest.mark.slow
def test_a_picker_of_another_warehouse_is_told_they_may_not_join(
    call_floor: CallFloor, microphone: Path
) -> None:
    with httpx.Client(base_url=call_floor.url, timeout=30) as http:
        opened = http.post(
            "/api/v1/rooms",
            json={"warehouse": "LAX", "exception_id": call_floor.exception_id},
            headers=f.auth(http, "manager"),
        )
        assert opened.status_code in (200, 201), opened.text
        room = opened.json()["id"]
    asyncio.run(_refused(call_floor, microphone, room))


async def _refused(floor: CallFloor, microphone: Path, room: int) -> None:
    async with call_page(floor.url, microphone) as call:
        await call.sign_in(f"{floor.url}/call.html?room={room}", "fra-picker")
        await call.until("hook.state === 'error'")
        error = (await call.hook())["lastError"]
        assert (error["closeCode"], error["code"]) == (4403, "warehouse_forbidden"), error
        shown = await call.page.text_content("#error")
        assert shown is not None and "may not join" in shown
        assert await call.page.is_visible("#error")
        assert call.page_errors == []


@pytest.mark.browser
def test_the_manager_settles_the_exception_from_the_call(
    call_floor: CallFloor, microphone: Path
) -> None:
    engine = make_engine(call_floor.server.database_url)
    with transaction(make_session_factory(engine)) as session:
        crushed = PickException(
            kind=ExceptionKind.damage,
            warehouse_id=catalog.get_warehouse(session, "LAX").id,
            reported_by="picker",
            note="carton crushed",
        )
        session.add(crushed)
        session.flush()
        exception_id = crushed.id
    engine.dispose()
    asyncio.run(_settle(call_floor, microphone, exception_id))


async def _settle(floor: CallFloor, microphone: Path, exception_id: int) -> None:
    async with call_page(floor.url, microphone) as call:
        await call.sign_in(f"{floor.url}/call.html?exception={exception_id}", "manager")
        await call.until("hook.state === 'joined' && hook.room !== null")
        room = (await call.hook())["room"]
        page = call.page
        # no line and no assignment to change: it is settled in words
        offered = await page.eval_on_selector_all(
            "#decide-outcome option", "options => options.map(o => o.value)"
        )
        assert offered == ["noted"]
        await page.click("#decide-button")
        assert await page.text_content("#decide-message") == "Say what was decided."
        await page.fill("#decide-resolution", "photographed; a claim to the carrier")
        await page.click("#decide-button")
        await call.until("hook.decision !== null")
        decision = (await call.hook())["decision"]
        assert (decision["status"], decision["resolved_by"], decision["room"]) == (
            *("resolved", "manager", int(room)),
        )
        assert await page.locator("#decide-form").is_hidden()
        assert "photographed" in (await page.text_content("#decided") or "")
        assert call.page_errors == []


@pytest.fixture
def pick_server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server with LAX's pick floor: one assignment for `picker`."""
    require_chromium()
    f.pick_floor(sqlite_url)
    with serving(sqlite_url, tmp_path) as server:
        yield server


@pytest.mark.browser
@pytest.mark.slow
def test_a_picker_in_a_call_shows_the_shelf_from_the_headset_page(
    pick_server: ServerProcess, microphone: Path
) -> None:
    with httpx.Client(base_url=pick_server.url, timeout=30) as http:
        manager = f.auth(http, "manager")
    asyncio.run(_show_the_shelf(pick_server, microphone, manager))


async def _until(frame: Any, condition: str, what: str, console: list[str]) -> None:
    """Wait until `condition` (JavaScript) holds in a page or frame; fail saying `what`,
    the pages' hooks and the last of the `console`."""
    try:
        await frame.wait_for_function(f"() => {condition}", timeout=WITHIN * 1000, polling=200)
    except Exception as exc:
        hooks = await frame.evaluate(
            "JSON.stringify({headset: window.wavepick, call: window.wavepickCall})"
        )
        raise AssertionError(f"{what}: never ({condition}); {hooks}; {console[-8:]}") from exc


async def _show_the_shelf(server: ServerProcess, microphone: Path, manager: dict[str, str]) -> None:
    ws_url = server.url.replace("http", "ws", 1)
    watching = await asyncio.to_thread(f.socket_ticket, server.url, manager)
    events = await websockets.connect(f"{ws_url}/ws/events?ticket={watching}")
    async with call_page(server.url, microphone) as headset:
        page = headset.page
        await headset.sign_in(f"{server.url}/headset.html", "picker")
        await _until(
            page, "window.wavepick.lastPrompt !== null", "the first prompt", headset.console
        )
        first = await page.evaluate("window.wavepick.lastPrompt.id")
        await page.click("#tab-commands")
        await page.click('#commands button[data-say="ready"]')
        await _until(
            page, f"window.wavepick.lastPrompt.id !== {first}", "the first pick", headset.console
        )
        assert await page.locator("#shelf-panel").is_hidden()  # no call, no camera
        await page.click('#commands button[data-say="call_supervisor"]')
        opened = await next_event(events, "room_opened")
        await events.close()
        room = opened["room"]
        joining = await asyncio.to_thread(f.socket_ticket, server.url, manager)
        peer = RoomClient(
            f"{ws_url}/ws/rooms/{room}?ticket={joining}",
            display_name="Manager",
            tracks=[ToneTrack(440.0)],
        )
        try:
            (on_headset,) = (await peer.join())["participants"]
            await _until(
                page, f"window.wavepick.call === {room}", "the call on the headset", headset.console
            )
            assert await page.text_content("#shelf-button") == "Show the shelf"

            # The shelf: the back camera joins the call, with no sound of its own.
            await page.click("#shelf-button")
            shelf = page.frame_locator("#shelf-frame")
            # the framed page marks its body once its script has run, not when the body exists
            await expect(shelf.locator("body")).to_have_attribute(
                "data-mode", "shelf", timeout=WITHIN * 1000
            )
            (framed,) = [fr for fr in page.frames if "shelf=1" in fr.url]
            await _until(
                framed,
                "window.wavepickCall.state === 'joined'",
                "the shelf joined",
                headset.console,
            )
            await peer.until(lambda: len(peer.participants) == 2, WITHIN)
            (camera,) = [p for p in peer.participants.values() if p["id"] != on_headset["id"]]
            assert (camera["user"], camera["display_name"]) == ("picker", "picker · shelf camera")
            await peer.until(lambda: peer.received[(camera["id"], "video")] >= 10, WITHIN)
            picture = peer.last_frame(camera["id"], "video")
            assert picture is not None and picture.width >= 320, picture
            shown = await framed.evaluate("JSON.parse(JSON.stringify(window.wavepickCall))")
            assert (shown["facingMode"], shown["packetsSent"]["audio"]) == ("environment", 0)
            assert peer.received[(camera["id"], "audio")] == 0
            # the manager is seen there, and heard on the headset only
            await _until(
                framed,
                "window.wavepickCall.remoteTracks.audio >= 1",
                "the manager",
                headset.console,
            )
            assert await framed.eval_on_selector_all(
                "#grid video", "videos => videos.length > 0 && videos.every((v) => v.muted)"
            )
            assert await page.get_attribute("#shelf-button", "aria-pressed") == "true"
            assert await page.text_content("#shelf-button") == "Stop the camera"

            # Stopped: the camera leaves, the headset stays in the call.
            await page.click("#shelf-button")
            await peer.until(lambda: camera["id"] not in peer.participants, WITHIN)
            assert on_headset["id"] in peer.participants
            assert await page.evaluate("window.wavepick.call") == room
            assert await page.locator("#shelf-frame").is_hidden()

            # Shown again, then the call ends: the camera goes with it.
            await page.click("#shelf-button")
            await peer.until(lambda: len(peer.participants) == 2, WITHIN)
            await peer.leave()
            await _until(page, "window.wavepick.call === null", "the call ended", headset.console)
            assert await page.locator("#shelf-panel").is_hidden()
            assert await page.evaluate("window.wavepick.shelf") is None
        finally:
            await peer.close()
        assert headset.page_errors == []
