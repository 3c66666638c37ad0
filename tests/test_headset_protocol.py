"""Headset protocol v1 against bad input: each mistake gets its `error` frame or close code,
the session stays usable where the contract says so, and the server stays up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets

from server.headset.protocol import MAX_AUDIO_FRAME, MAX_TEXT_FRAME
from server.migrate import upgrade
from tests.conftest import ServerProcess
from tests.factories import HELLO, auth, next_frame, pick_floor


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module: the protocol does not depend on the database."""
    data_dir = tmp_path_factory.mktemp("protocol")
    database_url = f"sqlite:///{data_dir / 'wavepick.db'}"
    upgrade(database_url)
    pick_floor(database_url)
    server = ServerProcess(database_url, data_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def url(server_process: ServerProcess) -> str:
    return server_process.url.replace("http://", "ws://") + "/ws/headset"


@pytest.fixture(scope="module")
def token(server_process: ServerProcess) -> str:
    with httpx.Client(base_url=server_process.url) as client:
        return auth(client, "picker")["Authorization"].split()[1]


async def _frames(ws: Any, count: int) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while len(frames) < count:
            message = await ws.recv()
            if isinstance(message, str):
                frames.append(json.loads(message))
    return frames


async def _error(ws: Any) -> dict[str, Any]:
    return await next_frame(ws, "error", within=20)


def _run(url: str, token: str, scenario: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**22
        ) as ws:
            await scenario(ws)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "malformed_json"),
        ('["hello"]', "malformed_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "say", "text": 5}', "invalid_frame"),
        ('{"type": "say", "text": "ready"}', "hello_required"),
        ('{"type": "rtc_offer", "sdp": "v=0"}', "hello_required"),
        ('{"type": "rtc_offer"}', "invalid_frame"),
        (json.dumps({"type": "say", "text": "x" * (MAX_TEXT_FRAME + 10)}), "frame_too_large"),
    ],
)
def test_a_bad_text_frame_is_an_error_and_the_session_goes_on(
    url: str, token: str, frame: str, code: str
) -> None:
    async def scenario(ws: Any) -> None:
        await ws.send(frame)
        assert (await _error(ws))["code"] == code
        await ws.send(json.dumps(HELLO))  # still open and usable
        welcome, prompt = await _frames(ws, 2)
        assert welcome["type"] == "welcome" and prompt["type"] == "prompt"

    _run(url, token, scenario)


def test_audio_before_hello_and_oversized_audio_are_refused(url: str, token: str) -> None:
    async def scenario(ws: Any) -> None:
        await ws.send(b"\x00\x00" * 160)
        assert (await _error(ws))["code"] == "audio_before_hello"
        await ws.send(json.dumps(HELLO))
        await _frames(ws, 2)
        await ws.send(b"\x00" * (MAX_AUDIO_FRAME + 2))
        assert (await _error(ws))["code"] == "frame_too_large"
        await ws.send(b"\x00" * 321)
        assert (await _error(ws))["code"] == "invalid_audio"
        await ws.send(json.dumps({"type": "say", "text": "say again"}))
        heard = await _frames(ws, 1)
        assert heard[0]["type"] == "heard" and heard[0]["accepted"] is True

    _run(url, token, scenario)


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        ({**HELLO, "protocol": 2}, "unsupported_protocol"),
        (
            {**HELLO, "audio": {"encoding": "pcm_s16le", "sample_rate": 12345}},
            "unsupported_sample_rate",
        ),
        ({**HELLO, "locale": "fr-FR"}, "unsupported_locale"),
    ],
)
def test_a_hello_the_server_cannot_serve_closes_with_4400(
    url: str, token: str, hello: dict[str, Any], code: str
) -> None:
    async def scenario(ws: Any) -> None:
        await ws.send(json.dumps(hello))
        assert (await _error(ws))["code"] == code
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400

    _run(url, token, scenario)


@pytest.mark.parametrize("bad_token", ["nonsense", ""])
def test_a_wrong_token_closes_with_4401(
    url: str, bad_token: str, server_process: ServerProcess
) -> None:
    async def main() -> int | None:
        async with websockets.connect(f"{url}?token={bad_token}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(main()) == 4401
    assert httpx.get(f"{server_process.url}/healthz").status_code == 200


def test_the_token_may_come_in_the_query(url: str, token: str) -> None:
    async def main() -> None:
        async with websockets.connect(f"{url}?token={token}") as ws:
            await ws.send(json.dumps(HELLO))
            welcome, _prompt = await _frames(ws, 2)
            assert welcome["operator"] == "picker"

    asyncio.run(main())
