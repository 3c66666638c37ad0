"""The live rooms of one server process, by key: the one place that maps a room's id to
its `Room`. A room is opened by its first join and forgotten when its last participant
leaves (its record, if any, lives elsewhere)."""

from __future__ import annotations

import logging

from rtc.room import Room, RoomConfig

log = logging.getLogger(__name__)


class RoomHub:
    def __init__(self, config: RoomConfig = RoomConfig()) -> None:
        self.config = config
        self._rooms: dict[str, Room] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._rooms

    def get(self, key: str) -> Room | None:
        """The live room, if anyone is in it."""
        return self._rooms.get(key)

    def room(self, key: str) -> Room:
        """The live room, opened if nobody is in it yet."""
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = Room(key, self.config, on_empty=self._forget)
        return room

    async def close(self, key: str, code: str = "room_closed", message: str = "") -> None:
        """End a room's call for everyone in it (its record was closed)."""
        room = self._rooms.pop(key, None)
        if room is not None:
            await room.close(code, message or "this room is closed")

    async def close_all(self) -> None:
        """End every call (server shutdown, after the sockets were told)."""
        for key in list(self._rooms):
            await self.close(key, "server_shutdown", "the server is shutting down")

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.key) is room:
            del self._rooms[room.key]
