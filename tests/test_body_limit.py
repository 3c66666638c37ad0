"""Request bodies are capped while they stream in, before authentication and parsing
(413 problem+json), declared or chunked; WebSocket messages are capped by the server
itself, before they are buffered."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from bench._serve import ServeProcess
from server.db import make_engine, make_session_factory
from tests.conftest import ServerProcess, serving
from tests.factories import PASSWORD, auth, seed_users

MiB = 1024 * 1024


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with serving(sqlite_url, tmp_path) as process:  # the limits are the database's alike
        yield process


def _answer_to_raw(port: int, head: bytes, body_chunks: Iterator[bytes]) -> tuple[int, dict]:
    """Send a request head and part of a body, never its end, then read the answer: a
    server that waited for the whole body would never answer (the read times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head_text, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_text.split(b" ")[1])
    if b"transfer-encoding: chunked" in head_text.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return status, json.loads(body)


def test_a_declared_huge_body_is_refused_before_a_byte_is_read(server: ServerProcess) -> None:
    head = (
        b"POST /api/v1/movements HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 400000000\r\n\r\n"
    )
    status, problem = _answer_to_raw(server.port, head, iter([b"{"]))
    assert status == 413
    assert problem["code"] == "payload_too_large"


def test_a_chunked_body_is_refused_once_past_the_cap(server: ServerProcess) -> None:
    token = auth(httpx.Client(base_url=server.url), "supervisor")["Authorization"]
    head = (
        b"POST /api/v1/movements HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: " + token.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
    status, problem = _answer_to_raw(server.port, head, iter([chunk] * 40))  # 2.5 MiB
    assert status == 413
    assert problem["code"] == "payload_too_large"


def test_a_large_json_body_is_refused_before_authentication(server: ServerProcess) -> None:
    big = b'{"x": "' + b"a" * (2 * MiB) + b'"}'
    answer = httpx.post(
        f"{server.url}/api/v1/movements",
        content=big,
        headers={"Content-Type": "application/json", "Idempotency-Key": "big-1"},
    )
    assert answer.status_code == 413  # not 401: the cap comes first
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_small_body_still_reaches_the_route(server: ServerProcess) -> None:
    answer = httpx.post(f"{server.url}/api/v1/movements", json={"warehouse": "LAX"})
    assert answer.status_code == 401


def test_a_huge_websocket_message_closes_the_socket_before_it_is_taken(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    seed_users(make_session_factory(engine))
    engine.dispose()
    with ServeProcess(
        tmp_path, password=PASSWORD, demo=False, database_url=sqlite_url, warm_up=False
    ) as served:
        signed_in = httpx.post(  # its own secret: no token cached for the test servers
            f"{served.url}/api/v1/auth/token", data={"username": "picker", "password": PASSWORD}
        )
        token = f"Bearer {signed_in.json()['access_token']}"

        async def send_huge() -> int | None:
            url = served.url.replace("http://", "ws://") + "/ws/headset"
            async with websockets.connect(
                url, additional_headers={"Authorization": token}, max_size=None
            ) as ws:
                # the close may come while the message is still going out, or after
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.send(b"\0" * (2 * MiB))
                    while True:
                        await asyncio.wait_for(ws.recv(), 15)
                return closed.value.rcvd.code if closed.value.rcvd else None

        assert asyncio.run(send_huge()) == 1009  # message too big, said by the server
