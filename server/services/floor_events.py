"""The events of Events v1: one type per fact of the floor, with the fields a live floor
board and an exceptions inbox need, and the calls that record them from the rows of the
fact. `docs/events.md` describes every frame; keep the two together.

The picking and exception services record their facts here, inside their units of work
(`server.events.record`): both the HTTP API and the headset dialog call those services, so
both produce the events, once each, when they commit. Other code publishes its own facts:

    # inside a write unit of work (a room created with its row): sent once committed
    events.record(session, RoomOpened(warehouse="LAX", room=17, exception=42,
                                      opened_by="manager"))
    # outside a transaction (a room ended in memory): sent now
    app.state.events.publish(RoomClosed(warehouse="LAX", room=17, exception=42,
                                        closed_by="manager", reason="resolved"))
    # what a headset hears, to the boards of the picker's warehouse
    await announce_picker(app.state.db, app.state.events, "picker3", "heard",
                          heard=LastHeard(text="five seven", confidence=0.93, accepted=True),
                          reprompts=1, dialog_state="location")
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from server.events import Event, EventBus, record
from server.tables import (
    Assignment,
    AssignmentStatus,
    PickException,
    PickLine,
    PickLineStatus,
    Role,
    User,
    Warehouse,
    WarehouseMember,
    utcnow,
)

if TYPE_CHECKING:
    import datetime as dt

    from server.db import Database
    from server.services.picking import LineContext

PickerState = Literal["connected", "picking", "waiting", "heard", "signed_off", "offline"]


@dataclass(frozen=True, kw_only=True)
class LastHeard:
    """An answer the headset heard: what, how sure, and whether the dialog took it (a
    refused one is re-prompted)."""

    text: str
    confidence: float
    accepted: bool


@dataclass(frozen=True, kw_only=True)
class PickerStatus(Event):
    """Where a picker is: `connected` (headset up), `picking` (signed on to `assignment`,
    `lines_done` of `lines` closed), `waiting` (signed on, no work), `heard` (an answer,
    with `heard`, the `reprompts` of the current prompt and the `dialog_state`),
    `signed_off` (`assignment`: the one kept to resume, if any), `offline` (the headset
    went away without signing off). Fields a status does not carry are null."""

    type: ClassVar[str] = "picker_status"
    picker: str
    status: PickerState
    assignment: int | None = None
    lines: int | None = None
    lines_done: int | None = None
    heard: LastHeard | None = None
    reprompts: int | None = None
    dialog_state: str | None = None


@dataclass(frozen=True, kw_only=True)
class PickConfirmed(Event):
    """A pick line closed by its picker: all `quantity` picked (`outcome` "picked"), or
    `picked` of them and the rest short ("short"; an `exception_opened` follows).
    `remaining`: lines of the assignment still to pick."""

    type: ClassVar[str] = "pick_confirmed"
    picker: str
    assignment: int
    line: int
    order: str
    sku: str
    location: str
    lot: str | None
    quantity: int
    picked: int
    outcome: Literal["picked", "short"]
    remaining: int


@dataclass(frozen=True, kw_only=True)
class PickSkipped(Event):
    """A line passed over for now ("skip slot"); it comes back after the open ones."""

    type: ClassVar[str] = "pick_skipped"
    picker: str
    assignment: int
    line: int
    sku: str
    location: str
    remaining: int


@dataclass(frozen=True, kw_only=True)
class AssignmentCompleted(Event):
    """Every line of the assignment picked or short, to be delivered to `staging`."""

    type: ClassVar[str] = "assignment_completed"
    picker: str
    assignment: int
    wave: int
    staging: str
    lines: int
    lines_short: int
    units: int
    started_at: dt.datetime | None
    wave_completed: bool


@dataclass(frozen=True, kw_only=True)
class ExceptionOpened(Event):
    """A short, damage, wrong item or call for help (`kind`) reported by `picker`, at a
    `line` (with its `sku` and `location`) or for the whole `assignment`; `quantity` is a
    short's missing units."""

    type: ClassVar[str] = "exception_opened"
    exception: int
    kind: str
    picker: str
    assignment: int | None
    line: int | None
    sku: str | None
    location: str | None
    quantity: int | None
    note: str


@dataclass(frozen=True, kw_only=True)
class ExceptionResolved(Event):
    """An exception settled by `resolved_by` with `resolution`."""

    type: ClassVar[str] = "exception_resolved"
    exception: int
    kind: str
    picker: str
    assignment: int | None
    line: int | None
    resolved_by: str
    resolution: str
    opened_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class RoomOpened(Event):
    """A video room opened, for `exception` when it is about one."""

    type: ClassVar[str] = "room_opened"
    room: int | str
    exception: int | None
    opened_by: str


@dataclass(frozen=True, kw_only=True)
class RoomClosed(Event):
    """A video room closed: by `closed_by` (null: the last participant left or it timed
    out), with a short `reason`."""

    type: ClassVar[str] = "room_closed"
    room: int | str
    exception: int | None
    closed_by: str | None
    reason: str


def pick_closed(session: Session, line: PickLine, context: LineContext, remaining: int) -> None:
    """`pick_confirmed` for a line just closed (picked or short)."""
    record(
        session,
        PickConfirmed(
            warehouse=context.slot.warehouse.code,
            at=line.picked_at or utcnow(),
            picker=line.picked_by or "",
            assignment=context.assignment.id,
            line=line.id,
            order=context.order_number,
            sku=context.sku.code,
            location=context.slot.code,
            lot=line.lot or None,
            quantity=line.quantity,
            picked=line.quantity_picked,
            outcome="short" if line.status == PickLineStatus.short else "picked",
            remaining=remaining,
        ),
    )


def pick_skipped(
    session: Session, line: PickLine, assignment: Assignment, actor: str, remaining: int
) -> None:
    record(
        session,
        PickSkipped(
            warehouse=assignment.warehouse.code,
            picker=actor,
            assignment=assignment.id,
            line=line.id,
            sku=line.sku.code,
            location=line.location.code,
            remaining=remaining,
        ),
    )


def assignment_completed(session: Session, assignment: Assignment, wave_completed: bool) -> None:
    lines = assignment.lines
    record(
        session,
        AssignmentCompleted(
            warehouse=assignment.warehouse.code,
            at=assignment.completed_at or utcnow(),
            picker=assignment.picker or "",
            assignment=assignment.id,
            wave=assignment.wave_id,
            staging=assignment.staging_location.code,
            lines=len(lines),
            lines_short=sum(1 for line in lines if line.status == PickLineStatus.short),
            units=sum(line.quantity_picked for line in lines),
            started_at=assignment.started_at,
            wave_completed=wave_completed,
        ),
    )


def exception_opened(session: Session, exception: PickException) -> None:
    line = session.get(PickLine, exception.pick_line_id) if exception.pick_line_id else None
    record(
        session,
        ExceptionOpened(
            warehouse=exception.warehouse.code,
            at=exception.created_at,
            exception=exception.id,
            kind=str(exception.kind),
            picker=exception.reported_by,
            assignment=exception.assignment_id,
            line=exception.pick_line_id,
            sku=line.sku.code if line else None,
            location=line.location.code if line else None,
            quantity=exception.quantity,
            note=exception.note,
        ),
    )


def exception_resolved(session: Session, exception: PickException) -> None:
    record(
        session,
        ExceptionResolved(
            warehouse=exception.warehouse.code,
            at=exception.resolved_at or utcnow(),
            exception=exception.id,
            kind=str(exception.kind),
            picker=exception.reported_by,
            assignment=exception.assignment_id,
            line=exception.pick_line_id,
            resolved_by=exception.resolved_by or "",
            resolution=exception.resolution or "",
            opened_at=exception.created_at,
        ),
    )


def picker_signed_on(
    session: Session, picker: str, assignment: Assignment | None, warehouse: str | None
) -> None:
    """`picking` with the assignment signed on to, or `waiting` in `warehouse` (None:
    every warehouse the picker works in) when there was no work."""
    if assignment is None:
        for code in [warehouse] if warehouse else picker_warehouses(session, picker):
            record(session, PickerStatus(warehouse=code, picker=picker, status="waiting"))
        return
    lines, done = _progress(session, [assignment.id]).get(assignment.id, (0, 0))
    record(
        session,
        PickerStatus(
            warehouse=assignment.warehouse.code,
            picker=picker,
            status="picking",
            assignment=assignment.id,
            lines=lines,
            lines_done=done,
        ),
    )


def picker_signed_off(session: Session, picker: str, kept: Assignment | None) -> None:
    """`signed_off`, in the warehouse of the assignment the picker had (`kept` when it
    stays theirs to resume), or in every warehouse they work in when they had none."""
    if kept is not None:
        resume = kept.id if kept.picker == picker else None
        status = PickerStatus(
            warehouse=kept.warehouse.code, picker=picker, status="signed_off", assignment=resume
        )
        record(session, status)
        return
    for code in picker_warehouses(session, picker):
        record(session, PickerStatus(warehouse=code, picker=picker, status="signed_off"))


_CLOSED = case((PickLine.status.in_((PickLineStatus.picked, PickLineStatus.short)), 1), else_=0)


def _progress(session: Session, assignment_ids: Collection[int]) -> dict[int, tuple[int, int]]:
    """(lines, lines closed) of each assignment, in one read."""
    if not assignment_ids:
        return {}
    rows = session.execute(
        select(PickLine.assignment_id, func.count(PickLine.id), func.coalesce(func.sum(_CLOSED), 0))
        .where(PickLine.assignment_id.in_(assignment_ids))
        .group_by(PickLine.assignment_id)
    )
    return {int(a): (int(lines), int(done)) for a, lines, done in rows}


def picker_warehouses(session: Session, picker: str) -> list[str]:
    """The codes of the warehouses `picker` works in (an admin: all)."""
    return list(_warehouses_of(session, [picker]).get(picker, ()))


# Each picker's assignments in progress, with their warehouse and progress, in one read.
_IN_PROGRESS = (
    select(
        Assignment.picker,
        Assignment.id,
        Warehouse.code,
        func.count(PickLine.id),
        func.coalesce(func.sum(_CLOSED), 0),
    )
    .join(Warehouse, Warehouse.id == Assignment.warehouse_id)
    .outerjoin(PickLine, PickLine.assignment_id == Assignment.id)
    .where(
        Assignment.picker.in_(bindparam("pickers", expanding=True)),
        Assignment.status == AssignmentStatus.in_progress,
    )
    .group_by(Assignment.picker, Assignment.id, Warehouse.code)
    .order_by(Assignment.id)
)
# Each user's role and the warehouses they are a member of.
_MEMBERSHIPS = (
    select(User.username, User.role, Warehouse.code)
    .outerjoin(WarehouseMember, WarehouseMember.user_id == User.id)
    .outerjoin(Warehouse, Warehouse.id == WarehouseMember.warehouse_id)
    .where(User.username.in_(bindparam("pickers", expanding=True)))
    .order_by(Warehouse.code)
)


def _warehouses_of(session: Session, pickers: Collection[str]) -> dict[str, tuple[str, ...]]:
    """The codes of the warehouses each of `pickers` works in (an admin: all), in one read
    (two when an admin is among them); a picker who is no user is left out."""
    codes: dict[str, list[str]] = {}
    admins = []
    for username, role, code in session.execute(_MEMBERSHIPS, {"pickers": list(pickers)}):
        codes.setdefault(username, [])
        if role == Role.admin:
            admins.append(username)
        elif code is not None:
            codes[username].append(code)
    if admins:
        every = list(session.scalars(select(Warehouse.code).order_by(Warehouse.code)))
        codes.update((admin, every) for admin in admins)
    return {username: tuple(found) for username, found in codes.items()}


@dataclass(frozen=True)
class Whereabouts:
    """Where a picker's status belongs: their assignment in progress and its warehouse,
    or every warehouse they work in."""

    assignment: int | None
    lines: int | None
    lines_done: int | None
    warehouses: tuple[str, ...]


def whereabouts(session: Session, picker: str) -> Whereabouts:
    return whereabouts_of(session, [picker])[picker]


def whereabouts_of(session: Session, pickers: Collection[str]) -> dict[str, Whereabouts]:
    """`whereabouts` of each of `pickers`, in one read however many they are (and one or
    two more when some have no assignment in progress)."""
    found: dict[str, Whereabouts] = {}
    for picker, assignment, code, lines, done in session.execute(
        _IN_PROGRESS, {"pickers": list(set(pickers))}
    ):
        if picker not in found:
            found[picker] = Whereabouts(assignment, int(lines), int(done), (code,))
    idle = [picker for picker in pickers if picker not in found]
    if idle:
        warehouses = _warehouses_of(session, idle)
        for picker in idle:
            found[picker] = Whereabouts(None, None, None, warehouses.get(picker, ()))
    return found


async def announce_picker(
    db: Database,
    bus: EventBus,
    picker: str,
    status: PickerState,
    *,
    at: dt.datetime | None = None,
    heard: LastHeard | None = None,
    reprompts: int | None = None,
    dialog_state: str | None = None,
) -> None:
    """Publish a picker's live status now (not a database fact: the headset connected,
    heard an answer, went offline), to the boards of the warehouse of their assignment in
    progress, with its progress, or of every warehouse they work in when they have none.
    `at`: when it happened, if before now. Costs one short read."""
    where = await db.read(whereabouts, picker)
    publish_picker(
        bus,
        picker,
        status,
        where,
        at=at,
        heard=heard,
        reprompts=reprompts,
        dialog_state=dialog_state,
    )


def publish_picker(
    bus: EventBus,
    picker: str,
    status: PickerState,
    where: Whereabouts,
    *,
    at: dt.datetime | None = None,
    heard: LastHeard | None = None,
    reprompts: int | None = None,
    dialog_state: str | None = None,
) -> None:
    """`announce_picker` with `where` already read (in a transaction the caller had)."""
    at = at or utcnow()
    for code in where.warehouses:
        bus.publish(
            PickerStatus(
                warehouse=code,
                at=at,
                picker=picker,
                status=status,
                assignment=where.assignment,
                lines=where.lines,
                lines_done=where.lines_done,
                heard=heard,
                reprompts=reprompts,
                dialog_state=dialog_state,
            )
        )
