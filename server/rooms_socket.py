"""`GET /ws/rooms/{id}`: Room signaling v1 over a WebSocket.

The socket is authenticated like the headset's (a one-use `?ticket=`, the `Authorization`
header, or the older `?token=`; else 4401), the room is looked up and the user admitted
(4400 for an id that is not a number, 4404 for an unknown or closed room, 4403 for a user
of another warehouse or a picker who did not raise the room's exception), then the socket
is handed to an `rtc.signaling.RoomSession` on the room's live call, held in the socket
registry (a revoked or expired sign-in ends it with 4401, shutdown with 1001). Every
refusal is an `error` frame, then the close.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketState

from rtc.hub import RoomHub
from rtc.signaling import FORBIDDEN, NOT_FOUND, PROTOCOL_ERROR, UNAUTHORIZED, RoomSession, error
from server.db import Database
from server.deps import socket_user
from server.problems import Forbidden, NotFound
from server.services import rooms
from server.sockets import Ending, SocketRegistry

log = logging.getLogger(__name__)

router = APIRouter()

CLOSING_S = 5.0  # the longest a session ending from the room's side takes to close its socket


class SocketChannel:
    """A room session's channel: the WebSocket."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def send_text(self, text: str) -> None:
        await self.websocket.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        if self.websocket.application_state is WebSocketState.CONNECTED:
            await self.websocket.close(code, reason)


class HeldSession:
    """A room session as the socket registry ends it."""

    def __init__(self, session: RoomSession) -> None:
        self.session = session

    async def end(self, ending: Ending) -> None:
        await self.session.end(ending.close_code, ending.code, ending.message)


async def refuse(websocket: WebSocket, close_code: int, code: str, message: str) -> None:
    await websocket.send_json(error(code, message))
    await websocket.close(close_code, code)


@router.websocket("/ws/rooms/{room_id}")
async def room_socket(websocket: WebSocket, room_id: str) -> None:
    state = websocket.app.state
    db: Database = state.db
    registry: SocketRegistry = state.sockets
    live: RoomHub = state.rooms
    signed_in = await socket_user(websocket)
    await websocket.accept()
    if signed_in is None:
        await refuse(
            websocket, UNAUTHORIZED, "unauthorized", "a valid ticket or bearer token is required"
        )
        return
    user, grant = signed_in
    if not room_id.isascii() or not room_id.isdigit() or not 0 < int(room_id) < 2**31:
        await refuse(websocket, PROTOCOL_ERROR, "malformed_room", "a room id is a number")
        return
    try:
        room = await db.read(rooms.admit, int(room_id), user)
    except NotFound as missing:
        await refuse(websocket, NOT_FOUND, missing.code, missing.detail)
        return
    except rooms.RoomShut as closed:
        await refuse(websocket, NOT_FOUND, closed.code, closed.detail)
        return
    except Forbidden as refused:
        await refuse(websocket, FORBIDDEN, refused.code, refused.detail)
        return
    member = rooms.call_member(user)
    call = live.room(str(room.id))
    await state.recordings.admit(room.id, call)
    session = RoomSession(
        call,
        member,
        SocketChannel(websocket),
        credentials_until=grant.expires_at,
    )
    async with registry.hold("room", grant, HeldSession(session)):
        gone = False
        try:
            while not session.over:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    gone = True
                    break
                if message.get("text") is not None:
                    await session.handle_text(message["text"])
                elif message.get("bytes") is not None:
                    await session.handle_binary()
        finally:
            if session.over and not gone:  # ended by the room: it closes the socket
                try:
                    async with asyncio.timeout(CLOSING_S):
                        await session.channel_closed()
                except TimeoutError:
                    await session.disconnected()
            else:
                await session.disconnected()
