"""Room signaling between a room and a client in the same process, with no socket: the
server's own participants (a headset bridged into a call) join through it exactly as a
browser does over `/ws/rooms`, frames and all.

`LoopbackSignaling` is the room side's `Channel` and, towards the client, what `RoomClient`
reads and writes in place of a WebSocket connection (`send`, `recv`, `async for`, `close`,
`close_code`; a closed one raises `websockets.ConnectionClosed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from rtc.room import Member, Room
from rtc.signaling import NORMAL, RoomSession


class LoopbackSignaling:
    def __init__(self, room: Room, member: Member) -> None:
        self._to_client: asyncio.Queue[str | Close] = asyncio.Queue()
        self.close_code: int | None = None
        self.session = RoomSession(room, member, self)

    # ---- the room's side (Channel) ----

    async def send_text(self, text: str) -> None:
        self._to_client.put_nowait(text)

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Closed by the room (or by the client: then the room hears it went away)."""
        if self.close_code is not None:
            return
        self.close_code = code
        self._to_client.put_nowait(Close(code, reason))
        if not self.session.over:
            await self.session.disconnected()

    # ---- the client's side ----

    async def send(self, text: str) -> None:
        if self.close_code is not None:
            raise ConnectionClosed(Close(self.close_code, ""), None)
        await self.session.handle_text(text)

    async def recv(self) -> str:
        item = await self._to_client.get()
        if isinstance(item, Close):
            self._to_client.put_nowait(item)  # every later read sees the close too
            raise ConnectionClosed(item, None)
        return item

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            while True:
                yield await self.recv()
        except ConnectionClosed:
            return
