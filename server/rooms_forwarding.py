"""Rooms hosted by another process (`WAVEPICK_ROOMS_URL`): this process forwards what
concerns them there.

A call's media is forwarded by the process that holds its room, so every participant of
one call must reach that one process. With several app processes on one port the kernel
spreads connections among them; so all but one forward `/api/v1/rooms…` (who is in a call,
closing it), `/api/v1/recordings…` (the calls' files are where they were recorded) and
`/ws/rooms/{id}` (the signaling) to the one that hosts rooms, and the media then flows
between the client and that process directly (its own ICE candidates). Nothing is checked
here: the hosting process authenticates and admits, as if the client had come to it (the
ticket is redeemed there, the bearer header passed on). The client's `Idempotency-Key` is
passed on and kept there, not here (`IdempotencyMiddleware(passes_on=forwarded)`): the
hosting process claims it in the transaction that carries the request out, so a retry
after this process lost the answer still runs it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import websockets
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketState
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from rtc.signaling import TRY_AGAIN_LATER, error
from rtc.tasks import stopped
from server.config import Settings
from server.problems import NotFound, Problem

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# Not passed on: hop-by-hop (RFC 9110 7.6.1), recomputed, or set here.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
              "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}  # fmt: skip
DROPPED_REQUEST = HOP_BY_HOP | {"content-length", "x-forwarded-for", "x-forwarded-proto"}
DROPPED_RESPONSE = HOP_BY_HOP | {"date", "server", "x-request-id"}
FORWARDED = ("/api/v1/rooms", "/api/v1/recordings")
FORWARDED_UNDER = tuple(f"{path}/" for path in FORWARDED)
HTTP_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0


class RoomsUnavailable(Problem):
    status = 503
    code = "rooms_unavailable"


def rooms_client(settings: Settings) -> httpx.AsyncClient | None:
    """The HTTP client of the process that hosts rooms, if another one does."""
    if settings.rooms_url is None:
        return None
    return httpx.AsyncClient(base_url=settings.rooms_url, timeout=HTTP_TIMEOUT_S)


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def forwarded(path: str) -> bool:
    """Whether requests for `path` are carried out by the process that hosts rooms."""
    return path in FORWARDED or path.startswith(FORWARDED_UNDER)


def _dot_segments(request: Request) -> bool:
    """Whether the path climbs out of where it was routed ("/rooms/../users"): httpx and
    the other end would resolve it to another route."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    return any(part in (b".", b"..") or b"%2e" in part.lower() for part in raw.split(b"/"))


@router.api_route("/api/v1/rooms", methods=METHODS)
@router.api_route("/api/v1/rooms/{rest:path}", methods=METHODS)
@router.api_route("/api/v1/recordings", methods=METHODS)
@router.api_route("/api/v1/recordings/{rest:path}", methods=METHODS)
async def forward_request(request: Request) -> StreamingResponse:
    if _dot_segments(request):
        raise NotFound("no such path")
    client: httpx.AsyncClient = request.app.state.rooms_http
    named = {n.strip().lower() for n in request.headers.get("connection", "").split(",")}
    raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw]
    headers = [(k, v) for k, v in raw if k not in DROPPED_REQUEST and k not in named]
    headers.append(("x-forwarded-proto", request.url.scheme))
    if request.client is not None:
        headers.append(("x-forwarded-for", request.client.host))
    asked = client.build_request(
        request.method,
        request.url.path,
        params=request.url.query,
        headers=headers,
        content=await request.body(),
    )
    try:
        answer = await client.send(asked, stream=True)
    except httpx.HTTPError as exc:
        log.warning("rooms at %s unreachable: %s", client.base_url, exc)
        raise RoomsUnavailable(
            "the process that hosts video calls did not answer", headers={"Retry-After": "5"}
        ) from exc
    response = StreamingResponse(_body(answer), status_code=answer.status_code)
    response.raw_headers = [
        (k, v) for k, v in answer.headers.raw if k.decode("latin-1").lower() not in DROPPED_RESPONSE
    ]
    return response


async def _body(answer: httpx.Response) -> AsyncIterator[bytes]:
    """The answer's body as it comes (a recording may be large), encoded as it was."""
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    finally:
        await answer.aclose()


@router.websocket("/ws/rooms/{room_id}")
async def forward_socket(websocket: WebSocket, room_id: str) -> None:
    settings: Settings = websocket.app.state.settings
    raw_path = websocket.scope.get("raw_path") or websocket.url.path.encode()
    target = f"{settings.rooms_socket_url}{raw_path.decode('latin-1')}"
    if websocket.url.query:
        target += f"?{websocket.url.query}"
    passed = {k: v for k, v in websocket.headers.items() if k == "authorization"}
    try:
        upstream = await websockets.connect(
            target,
            additional_headers=passed,
            max_size=settings.ws_max_message_bytes,
            open_timeout=CONNECT_TIMEOUT_S,
            compression=None,
        )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        log.warning("rooms at %s unreachable: %s", settings.rooms_url, exc)
        await websocket.accept()
        await websocket.send_json(
            error("rooms_unavailable", "video calls are unavailable for now; try again")
        )
        await websocket.close(TRY_AGAIN_LATER, "rooms_unavailable")
        return
    async with upstream:
        await websocket.accept()
        tasks = [
            asyncio.create_task(_client_to_rooms(websocket, upstream)),
            asyncio.create_task(_rooms_to_client(upstream, websocket)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await stopped(*tasks)
    if WebSocketState.CONNECTED == websocket.client_state == websocket.application_state:
        # the rooms' side ended it: its close code and reason, passed on
        code = upstream.close_code
        if code is None or code in (1005, 1006):  # no code: the connection dropped
            code = TRY_AGAIN_LATER
        with contextlib.suppress(Exception):
            await websocket.close(code, upstream.close_reason or "")


async def _client_to_rooms(websocket: WebSocket, upstream: websockets.ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):  # the rooms' side went first
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                code = message.get("code") or 1000
                await upstream.close(1000 if code in (1005, 1006) else code)
                return
            if message.get("text") is not None:
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])


async def _rooms_to_client(upstream: websockets.ClientConnection, websocket: WebSocket) -> None:
    with contextlib.suppress(ConnectionClosed):  # its close is passed on by the caller
        async for message in upstream:
            if isinstance(message, str):
                await websocket.send_text(message)
            else:
                await websocket.send_bytes(message)
