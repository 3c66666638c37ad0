"""Recording a call: a participant of the room's own (shown to everyone as "Recording")
that receives every other participant's tracks and writes each to a file with aiortc's
`MediaRecorder` — audio as Opus in Ogg, video as VP8 in WebM. Unlike forwarding, this
decodes and encodes again: it costs CPU on the server for as long as the call lasts.

It joins when it is started and stays while anyone else is in the call; `on_done` gets
the files when they have all left (or the room closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRecorder

from rtc.client import RoomClient
from rtc.loopback import LoopbackSignaling
from rtc.room import Member, Room
from rtc.tasks import spawn, stopped

log = logging.getLogger(__name__)

RECORDER_ROLE = "recorder"  # its role in the participant list: not a person in the call
FIRST_JOIN_S = 60.0  # started for a participant who then never joined: give up
CALL_LIMIT_S = 4 * 3600.0
FORMATS = {"audio": ("ogg", "audio/ogg"), "video": ("webm", "video/webm")}


@dataclass
class RecordedTrack:
    participant: str  # the name shown in the call
    kind: str  # audio, video
    path: Path
    media_type: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    bytes: int = 0
    recorder: MediaRecorder | None = field(default=None, repr=False)


class RoomRecorder:
    def __init__(
        self,
        room: Room,
        directory: Path,
        *,
        on_done: Callable[[list[RecordedTrack]], Awaitable[None]],
        name: str = "Recording",
    ) -> None:
        self.directory = directory
        self.on_done = on_done
        self.tracks: list[RecordedTrack] = []
        self.client = RoomClient(
            url="",
            display_name=name,
            connection=LoopbackSignaling(room, Member("recorder", name, RECORDER_ROLE)),
            take_track=self._record,
        )
        self.task = asyncio.create_task(self._run(), name=f"record-{room.key}")

    async def stop(self) -> None:
        """End the recording now (server shutdown): the files are closed and reported."""
        await stopped(self.task)

    async def _run(self) -> None:
        client = self.client
        try:
            await client.join()
            await client.until(
                lambda: bool(client.participants) or client.close_code is not None, FIRST_JOIN_S
            )
            await client.until(
                lambda: not client.participants or client.close_code is not None, CALL_LIMIT_S
            )
        except TimeoutError:
            log.info(
                "recording of room %s: nobody came, or the call went on too long", self.directory
            )
        except Exception:
            log.exception("recording of %s failed", self.directory)
        finally:
            await self._close_files()
            with contextlib.suppress(Exception):
                await client.close()
            await asyncio.shield(self._report())

    def _record(self, participant: str, track: MediaStreamTrack) -> None:
        name = self.client.participants.get(participant, {}).get("display_name") or participant
        extension, media_type = FORMATS[track.kind]
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{len(self.tracks) + 1:02d}-{participant}-{track.kind}.{extension}"
        recorder = MediaRecorder(str(path))
        recorder.addTrack(track)
        now = dt.datetime.now(dt.UTC)
        self.tracks.append(
            RecordedTrack(name, track.kind, path, media_type, now, recorder=recorder)
        )
        spawn(recorder.start(), f"record-{participant}-{track.kind}")

    async def _close_files(self) -> None:
        for recorded in self.tracks:
            if recorded.recorder is None:
                continue
            recorder, recorded.recorder = recorded.recorder, None
            with contextlib.suppress(Exception):
                await recorder.stop()
            recorded.ended_at = dt.datetime.now(dt.UTC)
            recorded.bytes = recorded.path.stat().st_size if recorded.path.exists() else 0

    async def _report(self) -> None:
        kept = [t for t in self.tracks if t.bytes > 0]
        try:
            await self.on_done(kept)
        except Exception:
            log.exception("the recording of %s could not be filed", self.directory)
