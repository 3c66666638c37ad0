"""Rooms: video calls in a warehouse, most of them about one exception.

Supervisors, managers and admins of a warehouse open rooms there and join them; an
exception has at most one open room, so opening one again for it gives the same room
(`open_room_for_exception` is what the floor calls when a picker asks for help). The
picker who raised a room's exception may join that room too. A closed room is over: it is
not joined again, and the exception's next call opens a new one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from rtc.room import Member
from server import events
from server.problems import Conflict, Forbidden, Invalid, NotFound
from server.services import catalog, exceptions
from server.services.floor_events import RoomClosed, RoomOpened
from server.services.membership import Scope
from server.tables import ExceptionStatus, PickException, Role, Room, User, Warehouse, utcnow

OVERSEERS = frozenset({Role.supervisor, Role.manager, Role.admin})


class RoomShut(Conflict):
    """Joining a room that has closed (409 `room_closed`)."""

    code = "room_closed"


@dataclass(frozen=True)
class Opened:
    room: Room
    created: bool  # False: the exception's room was open already


def open_room(session: Session, *, warehouse: str, exception_id: int | None, actor: str) -> Opened:
    """A room in `warehouse`, about `exception_id` when given (which must be an open
    exception of that warehouse): its open room if it has one, else a new room."""
    place = catalog.get_warehouse(session, warehouse)
    if exception_id is None:
        room = Room(warehouse_id=place.id, opened_by=actor)
        session.add(room)
        session.flush()
        _announce_opened(session, room, place.code)
        return Opened(room, created=True)
    exception = exceptions.get_exception(session, exception_id)
    if exception.warehouse_id != place.id:
        raise Invalid(
            f"exception {exception_id} is not in warehouse {warehouse}",
            code="exception_elsewhere",
        )
    return _room_of(session, exception, actor)


def open_room_for_exception(session: Session, exception_id: int, actor: str) -> Room:
    """The open room of an exception, opened now by `actor` if it has none (a picker's
    "call supervisor", say). The caller has checked that `actor` may."""
    return _room_of(session, exceptions.get_exception(session, exception_id), actor).room


def _room_of(session: Session, exception: PickException, actor: str) -> Opened:
    if exception.status == ExceptionStatus.resolved:
        raise Conflict(f"exception {exception.id} is resolved", code="exception_resolved")
    existing = _open_room_of(session, exception.id)
    if existing is not None:
        return Opened(existing, created=False)
    try:
        with session.begin_nested():  # a concurrent open of the same exception wins...
            room = Room(
                warehouse_id=exception.warehouse_id, exception_id=exception.id, opened_by=actor
            )
            session.add(room)
    except IntegrityError:  # ...and this one answers its room
        existing = _open_room_of(session, exception.id)
        if existing is None:
            raise
        return Opened(existing, created=False)
    _announce_opened(session, room, room.warehouse.code)
    return Opened(room, created=True)


def _announce_opened(session: Session, room: Room, warehouse: str) -> None:
    opened = RoomOpened(
        warehouse=warehouse, room=room.id, exception=room.exception_id, opened_by=room.opened_by
    )
    events.record(session, opened)


def _open_room_of(session: Session, exception_id: int) -> Room | None:
    return session.scalar(
        select(Room).where(Room.exception_id == exception_id, Room.closed_at.is_(None))
    )


def get_room(session: Session, room_id: int) -> Room:
    room = session.get(Room, room_id)
    if room is None:
        raise NotFound(f"no room {room_id}", code="room_not_found")
    return room


def call_member(user: User) -> Member:
    """How `user` appears in a call: by their full name, and with the role that decides
    what they may do there."""
    return Member(user.username, user.full_name or user.username, user.role)


def admit(session: Session, room_id: int, user: User, *, joining: bool = True) -> Room:
    """The room `user` may join (or, not `joining`, read even when closed): 404
    `room_not_found`, 403 `warehouse_forbidden` outside the user's warehouses, 403
    `room_forbidden` for a picker who did not raise the room's exception, 409
    `room_closed` to join a closed room."""
    room = get_room(session, room_id)
    Scope.of(user).require_id(room.warehouse_id, room.warehouse.code)
    if user.role not in OVERSEERS and not (
        room.exception is not None and room.exception.reported_by == user.username
    ):
        raise Forbidden(
            "only supervisors, managers and the picker who raised its exception join a room",
            code="room_forbidden",
        )
    if joining and room.closed_at is not None:
        raise RoomShut(f"room {room_id} is closed")
    return room


def close_room(session: Session, room_id: int, actor: str) -> Room:
    """End a room (closing it again changes nothing)."""
    room = get_room(session, room_id)
    if room.closed_at is None:
        room.closed_at = utcnow()
        room.closed_by = actor
        session.flush()
        closed = RoomClosed(
            warehouse=room.warehouse.code,
            room=room.id,
            exception=room.exception_id,
            closed_by=actor,
            reason="closed",
        )
        events.record(session, closed)
    return room


def list_rooms(
    session: Session,
    *,
    within: Collection[int] | None,
    warehouse: str | None,
    exception_id: int | None,
    open_only: bool,
    limit: int,
    offset: int,
) -> tuple[list[Room], int]:
    """Rooms of the given warehouses (None: every one), newest first, each with its
    warehouse loaded; and how many."""
    query = (
        select(Room)
        .join(Warehouse, Warehouse.id == Room.warehouse_id)
        .options(contains_eager(Room.warehouse))
    )
    if within is not None:
        query = query.where(Room.warehouse_id.in_(within))
    if warehouse:
        query = query.where(Warehouse.code == warehouse)
    if exception_id is not None:
        query = query.where(Room.exception_id == exception_id)
    if open_only:
        query = query.where(Room.closed_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Room.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total
