"""Recording the calls of warehouses that ask for it (`record_calls`): a recorder joins a
room when its first participant is let in, and its files are put on the books when the
call ends. Recordings older than `WAVEPICK_RECORDING_DAYS` are deleted, files and all,
at start and every hour."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from functools import partial
from pathlib import Path

from rtc.recorder import RecordedTrack, RoomRecorder
from rtc.room import Room
from server.db import Database
from server.services import recordings
from server.services.recordings import RecordedFile

log = logging.getLogger(__name__)

EXPIRY_INTERVAL_S = 3600


class CallRecordings:
    def __init__(self, db: Database, directory: Path, days: int) -> None:
        self.db = db
        self.directory = directory
        self.days = days
        self._live: dict[int, RoomRecorder | None] = {}  # None: being started

    async def admit(self, room_id: int, room: Room) -> None:
        """Someone is let into `room`: record its call, if its warehouse wants that and
        nobody records it yet."""
        if room_id in self._live:
            return
        self._live[room_id] = None
        try:
            wanted = await self.db.read(recordings.records_calls, room_id)
        finally:
            if self._live.get(room_id) is None:
                del self._live[room_id]
        if not wanted or room_id in self._live:
            return
        started = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = self.directory / f"room-{room_id}" / started
        self._live[room_id] = RoomRecorder(room, folder, on_done=partial(self._file, room_id))

    async def stop_all(self) -> None:
        for recorder in [r for r in self._live.values() if r is not None]:
            await recorder.stop()

    async def expire(self) -> int:
        """Delete the recordings past their days; how many."""
        before = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.days)
        paths = await self.db.write(recordings.expire_recordings, before)
        for path in paths:
            file = self.directory / path
            file.unlink(missing_ok=True)
            for folder in (file.parent, file.parent.parent):
                if folder.is_dir() and folder != self.directory and not any(folder.iterdir()):
                    folder.rmdir()
        return len(paths)

    async def expire_hourly(self) -> None:
        while True:
            try:
                if expired := await self.expire():
                    log.info("deleted %d call recordings past %d days", expired, self.days)
            except Exception:
                log.exception("could not delete old call recordings")
            await asyncio.sleep(EXPIRY_INTERVAL_S)

    async def _file(self, room_id: int, tracks: list[RecordedTrack]) -> None:
        self._live.pop(room_id, None)
        files = [
            RecordedFile(
                participant=t.participant,
                kind=t.kind,
                path=t.path,
                media_type=t.media_type,
                bytes=t.bytes,
                started_at=t.started_at,
                ended_at=t.ended_at or t.started_at,
            )
            for t in tracks
        ]
        if files:
            await self.db.write(recordings.file_recordings, room_id, files, self.directory)
