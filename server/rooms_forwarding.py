"""Rooms hosted by another process (`WAVEPICK_ROOMS_URL`): this process forwards what
concerns them there.

A call's media is forwarded by the process that holds its room, so every participant of
one call must reach that one process. With several app processes on one port the kernel
spreads connections among them; so all but one forward `/api/v1/rooms…` (who is in a
call, closing it), `/api/v1/recordings…` (the calls' files are where they were recorded)
and `/ws/rooms/{id}` (the signaling) to the one that hosts rooms, and
the media then flows between the client and that process directly (its own ICE
candidates). Nothing is checked here: the hosting process authenticates and admits, as if
the client had come to it (the ticket is redeemed there, the bearer header passed on).
The client's `Idempotency-Key` is kept by this process's own middleware, not passed on:
the request is carried out once, there, and its answer kept here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
import websockets
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.websockets import WebSocketState
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from rtc.signaling import TRY_AGAIN_LATER, error
from server.config import Settings
from server.problems import Problem

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# Not passed on: hop-by-hop, recomputed, or kept by this process's own middleware.
DROPPED_REQUEST = {"host", "connection", "content-length", "idempotency-key", "keep-alive"}
DROPPED_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "date", "server",
                    "x-request-id"}  # fmt: skip
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


@router.api_route("/api/v1/rooms", methods=METHODS)
@router.api_route("/api/v1/rooms/{rest:path}", methods=METHODS)
@router.api_route("/api/v1/recordings", methods=METHODS)
@router.api_route("/api/v1/recordings/{rest:path}", methods=METHODS)
async def forward_request(request: Request) -> StreamingResponse:
    client: httpx.AsyncClient = request.app.state.rooms_http
    headers = [(k, v) for k, v in request.headers.items() if k not in DROPPED_REQUEST]
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
    kept = {k: v for k, v in answer.headers.items() if k not in DROPPED_RESPONSE}
    return StreamingResponse(  # as it comes (a recording may be large), encoded as it was
        answer.aiter_raw(),
        status_code=answer.status_code,
        headers=kept,
        background=BackgroundTask(answer.aclose),
    )


@router.websocket("/ws/rooms/{room_id}")
async def forward_socket(websocket: WebSocket, room_id: str) -> None:
    settings: Settings = websocket.app.state.settings
    target = f"{settings.rooms_socket_url}{websocket.url.path}"
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
    await websocket.accept()
    async with upstream:
        tasks = [
            asyncio.create_task(_client_to_rooms(websocket, upstream)),
            asyncio.create_task(_rooms_to_client(upstream, websocket)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    if WebSocketState.CONNECTED == websocket.client_state == websocket.application_state:
        # the rooms' side ended it: its close code and reason, passed on
        code = upstream.close_code if upstream.close_code not in (None, 1005, 1006) else 1011
        with contextlib.suppress(Exception):
            await websocket.close(code, upstream.close_reason or "")


async def _client_to_rooms(websocket: WebSocket, upstream: websockets.ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):  # the rooms' side went first
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(message.get("code") or 1000)
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
