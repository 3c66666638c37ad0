"""Call recordings on the books: which warehouses record their calls, the files a recorded
call left (one per participant and kind), who may read them, and their expiry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.problems import NotFound
from server.services import catalog
from server.tables import Recording, Room, Warehouse


@dataclass(frozen=True)
class RecordedFile:
    """A file a recorder wrote, as it reports it."""

    participant: str
    kind: str
    path: Path
    media_type: str
    bytes: int
    started_at: dt.datetime
    ended_at: dt.datetime


def set_record_calls(session: Session, code: str, record: bool) -> Warehouse:
    warehouse = catalog.get_warehouse(session, code)
    warehouse.record_calls = record
    session.flush()
    return warehouse


def records_calls(session: Session, room_id: int) -> bool:
    """Whether the room's warehouse records its calls."""
    return bool(
        session.scalar(
            select(Warehouse.record_calls)
            .join(Room, Room.warehouse_id == Warehouse.id)
            .where(Room.id == room_id)
        )
    )


def file_recordings(
    session: Session, room_id: int, files: Sequence[RecordedFile], base: Path
) -> list[Recording]:
    """Put a recorded call's files on the books (paths kept relative to `base`)."""
    room = session.get(Room, room_id)
    if room is None:
        raise NotFound(f"room {room_id} not found", code="room_not_found")
    rows = [
        Recording(
            room_id=room.id,
            warehouse_id=room.warehouse_id,
            participant=f.participant[:100],
            kind=f.kind,
            path=str(f.path.relative_to(base)),
            media_type=f.media_type,
            bytes=f.bytes,
            started_at=f.started_at,
            ended_at=f.ended_at,
        )
        for f in files
    ]
    session.add_all(rows)
    session.flush()
    return rows


def list_recordings(
    session: Session,
    *,
    room_id: int | None,
    within: Collection[int] | None,
    limit: int,
    offset: int,
) -> tuple[list[Recording], int]:
    """Recordings (of one room, or all) in the warehouses `within` (None: all), oldest
    first, and how many there are."""
    query = select(Recording)
    if room_id is not None:
        query = query.where(Recording.room_id == room_id)
    if within is not None:
        query = query.where(Recording.warehouse_id.in_(within))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = query.order_by(Recording.started_at, Recording.id).limit(limit).offset(offset)
    return list(session.scalars(page)), total


def get_recording(session: Session, recording_id: int, within: Collection[int] | None) -> Recording:
    """One recording; one of a warehouse outside `within` is reported as not found."""
    recording = session.get(Recording, recording_id)
    if recording is None or (within is not None and recording.warehouse_id not in within):
        raise NotFound(f"recording {recording_id} not found", code="recording_not_found")
    return recording


def expire_recordings(session: Session, before: dt.datetime) -> list[str]:
    """Take recordings started before `before` off the books; their files' paths (to be
    deleted once this commits)."""
    old = list(session.scalars(select(Recording).where(Recording.started_at < before)))
    for recording in old:
        session.delete(recording)
    session.flush()
    return [r.path for r in old]
