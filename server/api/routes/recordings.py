"""Call recordings: the files a recorded call left, for the managers of its warehouse
(supervisors and pickers may not hear them)."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import PageParams, RowId
from server.deps import DatabaseDep, Manager, SettingsDep, WarehouseScope
from server.problems import NotFound
from server.services import recordings

router = APIRouter(prefix="/recordings", tags=["recordings"])


@router.get("", response_model=schemas.Page[schemas.RecordingOut])
async def list_recordings(
    _: Manager,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    room: Annotated[int | None, Query(ge=1, lt=2**31)] = None,
) -> schemas.Page[schemas.RecordingOut]:
    """The recordings of the caller's warehouses (of one room's calls with `room`), oldest
    first: one per participant and kind."""

    def work(session: Session) -> schemas.Page[schemas.RecordingOut]:
        found, total = recordings.list_recordings(
            session, room_id=room, within=scope.ids, limit=page.limit, offset=page.offset
        )
        return page.of([views.recording_view(r) for r in found], total)

    return await db.read(work)


@router.get(
    "/{recording_id}/file",
    response_class=FileResponse,
    responses={200: {"content": {"audio/ogg": {}, "video/webm": {}}}},
)
async def recording_file(
    recording_id: RowId, _: Manager, scope: WarehouseScope, db: DatabaseDep, settings: SettingsDep
) -> FileResponse:
    recording = await db.read(recordings.get_recording, recording_id, scope.ids)
    path = settings.recordings_path / recording.path
    if not path.is_file():
        raise NotFound("the recording's file is gone", code="recording_file_missing")
    return FileResponse(path, media_type=recording.media_type, filename=path.name)
