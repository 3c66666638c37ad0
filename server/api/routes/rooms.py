from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from rtc.hub import RoomHub
from server import schemas
from server.api import views
from server.api.pagination import PageParams, RowId
from server.deps import CurrentUser, DatabaseDep, LiveRoomsDep, Overseer, WarehouseScope
from server.services import rooms

router = APIRouter(prefix="/rooms", tags=["rooms"])


def with_participants(room: schemas.RoomOut, live: RoomHub) -> schemas.RoomOut:
    """The room as recorded, with who is in its call now."""
    call = live.get(str(room.id))
    if call is not None:
        room.participants = [
            schemas.RoomParticipantOut(
                id=p.id,
                user=p.member.user,
                display_name=p.member.display_name,
                role=p.member.role,
                joined_at=p.joined_at,
            )
            for p in call.participants.values()
        ]
    return room


@router.post(
    "",
    response_model=schemas.RoomOut,
    status_code=201,
    responses={200: {"description": "The exception's room was open already: that room."}},
)
async def open_room(
    body: schemas.RoomCreate,
    user: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    live: LiveRoomsDep,
    response: Response,
) -> schemas.RoomOut:
    """Open a video call in a warehouse the caller works in, about an exception there or
    not. An exception has one open room: opening again answers it (200)."""
    scope.require(body.warehouse)
    created = True

    def work(session: Session) -> schemas.RoomOut:
        nonlocal created
        opened = rooms.open_room(
            session, warehouse=body.warehouse, exception_id=body.exception_id, actor=user.username
        )
        created = opened.created
        return views.room_view(opened.room)

    room = await db.write(work)
    if not created:
        response.status_code = 200
    return with_participants(room, live)


@router.get("", response_model=schemas.Page[schemas.RoomOut])
async def list_rooms(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    live: LiveRoomsDep,
    page: PageParams,
    warehouse: Annotated[str | None, Query(max_length=64)] = None,
    exception_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    open_only: bool = False,
) -> schemas.Page[schemas.RoomOut]:
    """Rooms of the caller's warehouses, newest first, with who is in each call."""
    within = scope.within(warehouse)

    def work(session: Session) -> tuple[list[schemas.RoomOut], int]:
        found, total = rooms.list_rooms(
            session,
            within=within,
            warehouse=warehouse,
            exception_id=exception_id,
            open_only=open_only,
            limit=page.limit,
            offset=page.offset,
        )
        return [views.room_view(room) for room in found], total

    items, total = await db.read(work)
    return page.of([with_participants(room, live) for room in items], total)


@router.get("/{room_id}", response_model=schemas.RoomOut)
async def get_room(
    room_id: RowId, user: CurrentUser, db: DatabaseDep, live: LiveRoomsDep
) -> schemas.RoomOut:
    """A room, open or closed, for those who may join it: supervisors, managers and
    admins of its warehouse, and the picker who raised its exception."""

    def work(session: Session) -> schemas.RoomOut:
        return views.room_view(rooms.admit(session, room_id, user, joining=False))

    return with_participants(await db.read(work), live)


@router.post("/{room_id}/close", response_model=schemas.RoomOut)
async def close_room(
    room_id: RowId, user: Overseer, scope: WarehouseScope, db: DatabaseDep, live: LiveRoomsDep
) -> schemas.RoomOut:
    """End a room's call for everyone in it; the room is not joined again."""

    def work(session: Session) -> schemas.RoomOut:
        room = rooms.get_room(session, room_id)
        scope.require_id(room.warehouse_id, room.warehouse.code)
        return views.room_view(rooms.close_room(session, room_id, user.username))

    room = await db.write(work)
    await live.close(str(room_id))
    return room
