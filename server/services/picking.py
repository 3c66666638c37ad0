"""Picking: a picker's assignment, line by line, as the headset dialog calls it.

Pickers sign on and get the most urgent ready assignment of a released wave (`waves`); a
picker who signs on again gets back the assignment they were working on.

The headset dialog calls, each inside one transaction:

    sign_on(session, username, warehouse=None) -> Assignment | None
                                   (what a supervisor gave them first: `assignments`)
    brief(session, assignment) -> AssignmentBrief       "Assignment 412. Twelve picks."
    next_task(session, assignment_id) -> NextLine | None  location, check digits, quantity
    match_serial(session, line_id, digits, actor) -> str  the serial whose digits end so
    confirm_pick(session, line_id, quantity, actor, idempotency_token=..., scope=...) -> PickResult
    report_short(session, line_id, picked, actor, idempotency_token=..., note=...)
    skip_line(session, line_id, actor) -> PickLine
    report_exception(session, kind, actor, line_id=... | assignment_id=..., note=...)
    complete_assignment(session, assignment_id, actor) -> Location   (the staging area)
    sign_off(session, username) -> Assignment | None

Each call that changes something records its event (`floor_events`) in its transaction,
published to the warehouse's boards once it commits: sign on/off → `picker_status`, a
closed line → `pick_confirmed`, a skip → `pick_skipped`, a completion →
`assignment_completed`, an exception → `exception_opened`. A replayed answer changes
nothing and publishes nothing.

Every close of a pick line is a compare-and-set on its status that also stores the
answer's token: the same answer arriving twice (a retry, a reconnect) is recognised and
moves stock once. Picked units move in the ledger from the
slot to the assignment's staging location, consuming the units reserved for the line.

A short re-allocates the missing units at other slots of the warehouse
(`allocation.reallocate_short`); each find becomes a new open line of the same assignment,
placed in the walk, so the dialog simply goes on to it. Units found nowhere make the order
line short, and the order ends `short` instead of `picked`. Damage reported at a line
leaves it open: the picker picks the sound units or reports the rest short, and the
damaged units stay on the books at the slot until a manager moves them (the exception is
the request to).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, bindparam, case, func, literal_column, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from server import masterdata
from server.masterdata import LocationRef, SkuRef
from server.problems import Conflict, Forbidden, Invalid, NotFound
from server.services import allocation, catalog, exceptions, floor_events, ledger, serials, waves
from server.services.ledger import Change
from server.services.membership import Scope
from server.tables import (
    Assignment,
    AssignmentStatus,
    ExceptionKind,
    Location,
    MovementKind,
    Order,
    OrderStatus,
    PickException,
    PickLine,
    PickLineStatus,
    Stock,
    Warehouse,
    WaveStatus,
    utcnow,
)

PENDING = (PickLineStatus.open, PickLineStatus.skipped)
# a line's slot and SKU, read with the line: what the picker is told and the ledger moves
_WITH_SLOT_AND_SKU = (joinedload(PickLine.location), joinedload(PickLine.sku))
CLOSED = (PickLineStatus.picked, PickLineStatus.short)
_BEFORE_PICKING = (OrderStatus.released, OrderStatus.allocated)


# What a headset reads on every answer, built once (compiled and keyed once, not for
# every pick).
_CURRENT_ASSIGNMENT = (
    select(Assignment)
    .options(joinedload(Assignment.warehouse), joinedload(Assignment.staging_location))
    .where(
        Assignment.picker == bindparam("picker"),
        Assignment.status == AssignmentStatus.in_progress,
    )
    .order_by(Assignment.id)
    .limit(1)
)
_NEXT_OPEN_LINE = (
    select(PickLine)
    .options(*_WITH_SLOT_AND_SKU)
    .where(PickLine.assignment_id == bindparam("assignment"), PickLine.status.in_(PENDING))
    .order_by(case((PickLine.status == PickLineStatus.open, 0), else_=1), PickLine.sequence)
    .limit(1)
)
_REMAINING_LINES = select(func.count(PickLine.id)).where(
    PickLine.assignment_id == bindparam("assignment"), PickLine.status.in_(PENDING)
)


def current_assignment(session: Session, username: str) -> Assignment | None:
    """The assignment this picker is working on, if any, with its warehouse and staging
    slot (a pick's ledger and board read them). Once found it is known for the rest of the
    transaction (while it stays theirs and in progress), and held: one pick's transaction
    asks for it, and reads the lines that point to it, several times."""
    known: Assignment | None = session.info.get(("current_assignment", username))
    if (
        known is not None
        and known.picker == username
        and known.status == AssignmentStatus.in_progress
    ):
        return known
    assignment = session.scalar(_CURRENT_ASSIGNMENT, {"picker": username})
    session.info[("current_assignment", username)] = assignment
    return assignment


def sign_on(
    session: Session,
    username: str,
    warehouse: str | None = None,
    *,
    within: Collection[int] | None = None,
) -> Assignment | None:
    """The picker's current assignment, or the most urgent ready one (in `warehouse` when
    given) that a supervisor gave them (`assignments.assign_picker`), else the most urgent ready one
    nobody was given, now theirs; None when there is no work. Two pickers signing on at once never
    get the same assignment. With `within` (the ids of the picker's warehouses) only work
    there is handed out, and an assignment left in another warehouse is not resumed."""
    current = current_assignment(session, username)
    if current is not None:
        if within is not None and current.warehouse_id not in within:
            return None
        floor_events.picker_signed_on(session, username, current, warehouse)
        return current
    warehouse_id = catalog.get_warehouse(session, warehouse).id if warehouse is not None else None
    # work a supervisor assigned to this picker first, then the pool's
    for holder in (Assignment.picker == username, Assignment.picker.is_(None)):
        query = select(Assignment.id).where(Assignment.status == AssignmentStatus.ready, holder)
        if within is not None:
            query = query.where(Assignment.warehouse_id.in_(within))
        if warehouse_id is not None:
            query = query.where(Assignment.warehouse_id == warehouse_id)
        # the most urgent one no other sign-on is claiming right now: at a shift start
        # hundreds sign on at once, and each waited on the row lock of the one before it
        # for the same first assignment (PostgreSQL; SQLite's writers take turns anyway)
        first_free = (
            query.order_by(Assignment.priority, Assignment.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        while (assignment_id := session.scalar(first_free)) is not None:
            claimed = session.execute(
                update(Assignment)
                .where(
                    Assignment.id == assignment_id,
                    Assignment.status == AssignmentStatus.ready,
                    holder,
                )
                .values(picker=username, status=AssignmentStatus.in_progress, started_at=utcnow()),
                execution_options={"synchronize_session": False},
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                assignment = session.get_one(Assignment, assignment_id)
                session.refresh(assignment)
                floor_events.picker_signed_on(session, username, assignment, warehouse)
                return assignment
    floor_events.picker_signed_on(session, username, None, warehouse)
    return None


def sign_off(session: Session, username: str) -> Assignment | None:
    """The picker stops. An assignment they have not picked from yet goes back to the
    pool; one they started stays theirs, to resume at the next sign-on."""
    current = current_assignment(session, username)
    if current is None:
        floor_events.picker_signed_off(session, username, None)
        return None
    started = session.scalar(
        select(func.count(PickLine.id)).where(
            PickLine.assignment_id == current.id, PickLine.status.in_(CLOSED)
        )
    )
    if not started:
        session.execute(
            update(PickLine)
            .where(PickLine.assignment_id == current.id, PickLine.status == PickLineStatus.skipped)
            .values(status=PickLineStatus.open),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            update(Assignment)
            .where(Assignment.id == current.id, Assignment.picker == username)
            .values(picker=None, status=AssignmentStatus.ready, started_at=None),
            execution_options={"synchronize_session": False},
        )
        session.refresh(current)
    floor_events.picker_signed_off(session, username, current)
    return current


@dataclass(frozen=True)
class AssignmentBrief:
    """What the dialog announces when an assignment starts."""

    number: int
    warehouse: str
    lines: int
    units: int
    remaining: int
    staging_location: str


def brief(session: Session, assignment: Assignment) -> AssignmentBrief:
    lines, units = session.execute(
        select(func.count(PickLine.id), func.coalesce(func.sum(PickLine.quantity), 0)).where(
            PickLine.assignment_id == assignment.id
        )
    ).one()
    return AssignmentBrief(
        number=assignment.id,
        warehouse=assignment.warehouse.code,
        lines=lines,
        units=units,
        remaining=remaining_lines(session, assignment.id),
        staging_location=assignment.staging_location.code,
    )


@dataclass(frozen=True)
class NextLine:
    """Everything the dialog says or checks for one pick line."""

    line_id: int
    assignment: int
    sequence: int
    location: str
    aisle: str
    slot: str
    level: str
    check_digits: str
    quantity: int
    sku: str
    description: str
    unit: str
    lot: str | None
    remaining: int  # lines still to pick in the assignment, this one included
    skipped_before: bool
    serialized: bool  # confirmed with one serial per unit


def next_task(
    session: Session, assignment_id: int, remaining: int | None = None
) -> NextLine | None:
    """`next_open_line`, described for the dialog; None when the assignment is done.
    `remaining`: the lines still to pick, when the caller has just counted them."""
    line = next_open_line(session, assignment_id)
    if line is None:
        return None
    return NextLine(
        line_id=line.id,
        assignment=assignment_id,
        sequence=line.sequence,
        location=line.location.code,
        aisle=line.location.aisle,
        slot=line.location.slot,
        level=line.location.level,
        check_digits=line.location.check_digits,
        quantity=line.quantity,
        sku=line.sku.code,
        description=line.sku.description,
        unit=line.sku.unit,
        lot=line.lot or None,
        remaining=remaining_lines(session, assignment_id) if remaining is None else remaining,
        skipped_before=line.status == PickLineStatus.skipped,
        serialized=line.sku.serialized,
    )


def get_assignment(session: Session, number: int) -> Assignment:
    assignment = session.get(Assignment, number)
    if assignment is None:
        raise NotFound(f"no assignment {number}", code="assignment_not_found")
    return assignment


def next_open_line(session: Session, assignment_id: int) -> PickLine | None:
    """The next line to pick in walking order; skipped lines come back after the open
    ones. None when every line is closed (time to `complete_assignment`)."""
    return session.scalar(_NEXT_OPEN_LINE, {"assignment": assignment_id})


def remaining_lines(session: Session, assignment_id: int) -> int:
    return session.scalar(_REMAINING_LINES, {"assignment": assignment_id}) or 0


def remaining_work(session: Session, assignment_id: int) -> tuple[int, int]:
    """(lines, units) of the assignment still to pick ("how much more")."""
    lines, units = session.execute(
        select(func.count(PickLine.id), func.coalesce(func.sum(PickLine.quantity), 0)).where(
            PickLine.assignment_id == assignment_id, PickLine.status.in_(PENDING)
        )
    ).one()
    return int(lines), int(units)


def match_serial(session: Session, line_id: int, digits: str, actor: str) -> str:
    """The serial of the line's SKU and lot at the line's slot whose digits end in `digits`
    (what the picker read off a unit's label); `serials.match_suffix` says when there is
    none or more than one."""
    line, _assignment = _line_for(session, line_id, actor)
    if line.status in CLOSED:
        raise Conflict(f"pick line {line.id} is already {line.status}", code="line_closed")
    if not line.sku.serialized:
        raise Invalid(f"SKU {line.sku.code} is not serialised", code="serials_not_allowed")
    here = serials.at_location(session, line.sku_id, line.location_id, line.lot)
    return serials.match_suffix(here, digits)


@dataclass(frozen=True)
class AssignmentRef:
    """The assignment of a line being closed: whose it is, and where its picks go."""

    id: int
    picker: str | None
    status: AssignmentStatus
    staging: LocationRef


@dataclass(frozen=True)
class LineContext:
    """What closing a pick line reads besides the line: its assignment, its order, its
    slot and its SKU. The slot, SKU and staging location come from the master data cache,
    so a confirmation reads the line, its order and its assignment, and nothing else."""

    assignment: AssignmentRef
    order_number: str
    order_status: OrderStatus
    slot: LocationRef
    sku: SkuRef


@dataclass(frozen=True)
class PickResult:
    line: PickLine
    context: LineContext
    replayed: bool  # this answer had already been applied: nothing changed now
    remaining: int  # lines of the assignment still to pick
    exception: PickException | None = None
    substitutes: tuple[PickLine, ...] = ()  # a short's missing units, found at other slots


def confirm_pick(
    session: Session,
    line_id: int,
    quantity: int,
    actor: str,
    *,
    idempotency_token: str,
    serials: Sequence[str] = (),
    scope: Scope | None = None,
) -> PickResult:
    """The picker confirmed `quantity` (which must be the quantity asked for; fewer is a
    `report_short`). Moves the units from the slot to staging in the ledger, once: the
    same token again is a replay, another answer for a closed line is a 409. With `scope`,
    a line in a warehouse outside it is refused."""
    line, context = _line_to_close(session, line_id, actor, scope)
    replay = _replay(session, line, context, idempotency_token)
    if replay is not None:
        return replay
    if quantity != line.quantity:
        raise Invalid(
            f"this line asks for {line.quantity}; report a short to pick fewer",
            code="quantity_mismatch",
        )
    remaining = _close(session, line, PickLineStatus.picked, quantity, actor, idempotency_token)
    if remaining is None:
        return _replay_or_conflict(session, line, context, idempotency_token)
    _move_to_staging(session, line, context, quantity, actor, serials)
    floor_events.pick_closed(session, line, context, remaining)
    return PickResult(line=line, context=context, replayed=False, remaining=remaining)


def report_short(
    session: Session,
    line_id: int,
    picked: int,
    actor: str,
    *,
    idempotency_token: str,
    note: str = "",
    serials: Sequence[str] = (),
) -> PickResult:
    """The slot held fewer units than asked: `picked` (maybe 0) go to staging and the
    rest's reservation is released. The missing units are looked for at other slots of
    the warehouse: what is found becomes new lines of this assignment, in the walk; what
    is not makes the order line short. A `short` exception tells a manager all of it,
    and that the slot's count is in doubt."""
    line, assignment = _line_for(session, line_id, actor)
    context = _context(
        session,
        line,
        assignment_id=assignment.id,
        picker=assignment.picker,
        assignment_status=assignment.status,
        staging_location_id=assignment.staging_location_id,
        order_number=line.order.number,
        order_status=line.order.status,
    )
    replay = _replay(session, line, context, idempotency_token)
    if replay is not None:
        return replay
    if not 0 <= picked < line.quantity:
        raise Invalid(
            f"a short picks fewer than {line.quantity} units (0 or more)",
            code="invalid_short_quantity",
        )
    if _close(session, line, PickLineStatus.short, picked, actor, idempotency_token) is None:
        return _replay_or_conflict(session, line, context, idempotency_token)
    ledger.lock_sku(session, line.sku_id, line.warehouse_id)
    if picked:
        _move_to_staging(session, line, context, picked, actor, serials)
    missing = line.quantity - picked
    if not ledger.release_reserved(session, line.location_id, line.sku_id, line.lot, missing):
        raise Conflict("the reservation of this line is gone", code="reservation_missing")
    outcome = allocation.reallocate_short(session, line, missing)
    _walk_into(session, line, outcome.substitutes)
    remaining = remaining_lines(session, assignment.id)
    floor_events.pick_closed(session, line, context, remaining)
    exception = exceptions.open_exception(
        session,
        ExceptionKind.short,
        actor,
        line=line,
        quantity=missing,
        note=_short_note(session, note, line, outcome),
    )
    return PickResult(
        line=line,
        context=context,
        replayed=False,
        remaining=remaining,
        exception=exception,
        substitutes=tuple(outcome.substitutes),
    )


def _walk_into(session: Session, shorted: PickLine, substitutes: Sequence[PickLine]) -> None:
    """Put a short's substitute lines into its assignment's walk, then number the walk
    again. From the short slot the walk goes on forward: a substitute further along is
    picked on the way, one behind on the next pass, after the forward lines (the picker
    does not turn back for it)."""
    added = {line.id for line in substitutes}
    route = [
        line
        for line in session.scalars(
            select(PickLine)
            .where(PickLine.assignment_id == shorted.assignment_id)
            .order_by(PickLine.sequence, PickLine.id)
        )
        if line.id not in added
    ]
    start = route.index(shorted)
    for line in substitutes:
        _insert_in_walk(route, start, line)
    for sequence, line in enumerate(route, start=1):
        line.sequence = sequence
    session.flush()


def _insert_in_walk(route: list[PickLine], start: int, line: PickLine) -> None:
    """Insert `line` after position `start` of `route`, in walking order. The route
    after `start` is a series of passes (each in walking order, a new one beginning where
    the walk starts over); `line` joins the current pass when it lies ahead of `start`,
    else the next one."""
    key = waves.walk_key(line)
    previous = waves.walk_key(route[start])
    target = (0 if key > previous else 1, key)
    lap = 0
    for position in range(start + 1, len(route)):
        current = waves.walk_key(route[position])
        if current < previous:  # the walk starts over
            lap += 1
        if (lap, current) > target:
            route.insert(position, line)
            return
        previous = current
    route.append(line)


def _short_note(
    session: Session, note: str, line: PickLine, outcome: allocation.ShortOutcome
) -> str:
    """The picker's note, then what became of the missing units and the doubt about the
    slot's count (the books still hold units there that the picker did not find)."""
    parts = [note] if note else []
    for found in outcome.substitutes:
        lot = f" lot {found.lot}" if found.lot else ""
        parts.append(f"{found.quantity} re-allocated to {found.location.code}{lot}")
    if outcome.unfound:
        parts.append(
            f"{outcome.unfound} found at no other slot: "
            f"order {line.order.number} is short {outcome.unfound} {line.sku.code}"
        )
    on_hand = session.scalar(
        select(Stock.quantity).where(
            Stock.location_id == line.location_id,
            Stock.sku_id == line.sku_id,
            Stock.lot == line.lot,
        )
    )
    parts.append(
        f"the books still show {on_hand} {line.sku.code} at {line.location.code}: "
        "its count is in doubt"
    )
    return "; ".join(parts)


def skip_line(session: Session, line_id: int, actor: str) -> PickLine:
    """Pass the slot for now; the line is offered again after the open ones."""
    line, assignment = _line_for(session, line_id, actor)
    if line.status in CLOSED:
        raise Conflict(f"pick line {line.id} is already {line.status}", code="line_closed")
    skipped = session.execute(
        update(PickLine)
        .where(PickLine.id == line.id, PickLine.status == PickLineStatus.open)
        .values(status=PickLineStatus.skipped),
        execution_options={"synchronize_session": False},
    )
    session.refresh(line)
    if skipped.rowcount == 1:  # type: ignore[attr-defined]
        remaining = remaining_lines(session, assignment.id)
        floor_events.pick_skipped(session, line, assignment, actor, remaining)
    return line


def report_exception(
    session: Session,
    kind: ExceptionKind,
    actor: str,
    *,
    line_id: int | None = None,
    assignment_id: int | None = None,
    note: str = "",
) -> PickException:
    """Damage, a wrong item or a call for help at a line (or for the whole assignment).
    Stock is not changed and the line stays open (the picker picks the sound units or
    reports a short); a manager resolves it. Shorts go through `report_short`."""
    if kind is ExceptionKind.short:
        raise Invalid("report a short with report_short", code="use_report_short")
    if line_id is not None:
        line, _assignment = _line_for(session, line_id, actor)
        return exceptions.open_exception(session, kind, actor, line=line, note=note)
    if assignment_id is None:
        raise Invalid("an exception names a pick line or an assignment", code="exception_target")
    assignment = get_assignment(session, assignment_id)
    _check_picker(assignment, actor)
    return exceptions.open_exception(session, kind, actor, assignment=assignment, note=note)


def complete_assignment(session: Session, assignment_id: int, actor: str) -> Location:
    """Close the assignment once every line is picked or short; returns the staging
    location to deliver to. Completing twice returns the same location."""
    assignment = get_assignment(session, assignment_id)
    _check_picker(assignment, actor)
    if assignment.status == AssignmentStatus.completed:
        return assignment.staging_location
    remaining = remaining_lines(session, assignment.id)
    if remaining:
        raise Conflict(f"{remaining} lines are still to pick", code="lines_remaining")
    completed = session.execute(
        update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status == AssignmentStatus.in_progress)
        .values(status=AssignmentStatus.completed, completed_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    session.refresh(assignment)
    if completed.rowcount != 1:  # type: ignore[attr-defined]
        return assignment.staging_location  # a twin request completed it first
    order_ids = {line.order_id for line in assignment.lines}
    for order in session.scalars(select(Order).where(Order.id.in_(order_ids))):
        pending = session.scalar(
            select(func.count(PickLine.id)).where(
                PickLine.order_id == order.id, PickLine.status.in_(PENDING)
            )
        )
        if not pending and order.status in (OrderStatus.released, OrderStatus.picking):
            short = any(line.quantity_short for line in order.lines)
            order.status = OrderStatus.short if short else OrderStatus.picked
    wave_pending = session.scalar(
        select(func.count(Assignment.id)).where(
            Assignment.wave_id == assignment.wave_id,
            Assignment.status != AssignmentStatus.completed,
        )
    )
    if not wave_pending:
        assignment.wave.status = WaveStatus.completed
    session.flush()
    floor_events.assignment_completed(session, assignment, wave_completed=not wave_pending)
    return assignment.staging_location


# What a short, a skip, a serial's match or an exception reads, read with the line in one
# query: its assignment (with the warehouse and the staging location), order, SKU and
# slot, as rows (a short re-allocates and writes through them). A confirmation reads less:
# `_LINE_TO_CLOSE`.
_LINE_IN_CONTEXT = (
    select(PickLine)
    .options(
        joinedload(PickLine.assignment).joinedload(Assignment.warehouse),
        joinedload(PickLine.assignment).joinedload(Assignment.staging_location),
        joinedload(PickLine.order),
        *_WITH_SLOT_AND_SKU,
    )
    .where(PickLine.id == bindparam("line"))
)


def line_in_context(session: Session, line_id: int) -> PickLine | None:
    """The line with its assignment, order, slot and SKU loaded: the one the session holds,
    or else read in one query built once (made for each call, its cache key, five joins
    deep, was a cost of its own)."""
    held = session.identity_map.get(identity_key(PickLine, line_id))
    return held if held is not None else session.scalar(_LINE_IN_CONTEXT, {"line": line_id})


# What a confirmation reads: the line, with its order and assignment (the slot, SKU and
# staging location come from the master data cache). Three tables, not the seven of
# `_LINE_IN_CONTEXT`: on PostgreSQL that is half the server's and the database's CPU for
# the read (bench/ledger.py picks).
_LINE_TO_CLOSE = (
    select(
        PickLine,
        Assignment.picker,
        Assignment.status.label("assignment_status"),
        Assignment.staging_location_id,
        Order.number.label("order_number"),
        Order.status.label("order_status"),
    )
    .join(Order, Order.id == PickLine.order_id)
    .outerjoin(Assignment, Assignment.id == PickLine.assignment_id)
    .where(PickLine.id == bindparam("line"))
)


def _line_to_close(
    session: Session, line_id: int, actor: str, scope: Scope | None
) -> tuple[PickLine, LineContext]:
    """The line and its context, refused as `_line_for` refuses it (and, with `scope`, when
    it is in a warehouse outside it)."""
    row = session.execute(_LINE_TO_CLOSE, {"line": line_id}).one_or_none()
    if row is None:
        raise NotFound(f"no pick line {line_id}", code="pick_line_not_found")
    line: PickLine = row.PickLine
    if scope is not None:
        scope.require_id(line.warehouse_id)
    if line.assignment_id is None:
        raise Conflict(f"pick line {line_id} is not in an assignment", code="line_not_assigned")
    context = _context(
        session,
        line,
        assignment_id=line.assignment_id,
        picker=row.picker,
        assignment_status=AssignmentStatus(row.assignment_status),
        staging_location_id=row.staging_location_id,
        order_number=row.order_number,
        order_status=OrderStatus(row.order_status),
    )
    _check_picker(context.assignment, actor)
    return line, context


def _context(
    session: Session,
    line: PickLine,
    *,
    assignment_id: int,
    picker: str | None,
    assignment_status: AssignmentStatus,
    staging_location_id: int,
    order_number: str,
    order_status: OrderStatus,
) -> LineContext:
    """A line's context from what was read of its assignment and order; its slot, SKU and
    staging location from the master data cache."""
    master = masterdata.of(session)
    return LineContext(
        assignment=AssignmentRef(
            id=assignment_id,
            picker=picker,
            status=assignment_status,
            staging=master.location_by_id(session, staging_location_id),
        ),
        order_number=order_number,
        order_status=order_status,
        slot=master.location_by_id(session, line.location_id),
        sku=master.sku_by_id(session, line.sku_id),
    )


def _line_for(session: Session, line_id: int, actor: str) -> tuple[PickLine, Assignment]:
    line = line_in_context(session, line_id)
    if line is None:
        raise NotFound(f"no pick line {line_id}", code="pick_line_not_found")
    assignment = line.assignment
    if assignment is None:
        raise Conflict(f"pick line {line_id} is not in an assignment", code="line_not_assigned")
    _check_picker(assignment, actor)
    return line, assignment


def _check_picker(assignment: Assignment | AssignmentRef, actor: str) -> None:
    if assignment.picker != actor:
        raise Forbidden(f"assignment {assignment.id} is not yours", code="not_your_assignment")
    if assignment.status == AssignmentStatus.ready:
        raise Conflict(f"assignment {assignment.id} is not started", code="assignment_not_started")


def _replay(
    session: Session, line: PickLine, context: LineContext, token: str
) -> PickResult | None:
    if line.status not in CLOSED:
        return None
    return _replay_or_conflict(session, line, context, token)


def _replay_or_conflict(
    session: Session, line: PickLine, context: LineContext, token: str
) -> PickResult:
    session.refresh(line)
    if line.confirmation == token:
        return PickResult(
            line=line,
            context=context,
            replayed=True,
            remaining=remaining_lines(session, context.assignment.id),
        )
    raise Conflict(
        f"pick line {line.id} was already closed ({line.status}) by another answer",
        code="line_closed",
    )


def _close(
    session: Session,
    line: PickLine,
    status: PickLineStatus,
    quantity: int,
    actor: str,
    token: str,
) -> int | None:
    """Compare-and-set: close the line only if it is still pending; None when it was not.
    The line in the session then holds what was written (no read back: the update wrote
    all of it). Returns how many other lines of its assignment are still to pick, counted
    by the same statement."""
    closed = {
        "status": status,
        "quantity_picked": quantity,
        "confirmation": token,
        "picked_by": actor,
        "picked_at": utcnow(),
    }
    result = session.connection().execute(
        _CLOSE, {"b_line": line.id, **{f"b_{name}": value for name, value in closed.items()}}
    )
    others_pending = result.scalar()
    if others_pending is None:
        return None
    for name, value in closed.items():
        set_committed_value(line, name, value)
    return int(others_pending)


# Built once with bound parameters: compiled once, not again for every pick. The count of
# the other lines still to pick is written out: SQLite's UPDATE drops the table names that
# tell the counted lines from the updated one. Whether it sees this line before or after
# the update, the count leaves it out.
_OTHERS_PENDING = literal_column(
    "(SELECT count(*) FROM pick_lines AS other"
    " WHERE other.assignment_id = pick_lines.assignment_id AND other.id <> pick_lines.id"
    f" AND other.status IN ({', '.join(repr(status.value) for status in PENDING)}))",
    Integer,
)
_CLOSE = (
    update(PickLine)
    .where(PickLine.id == bindparam("b_line"), PickLine.status.in_(PENDING))
    .values(
        {
            name: bindparam(f"b_{name}", type_=PickLine.__table__.c[name].type)
            for name in ("status", "quantity_picked", "confirmation", "picked_by", "picked_at")
        }
    )
    .returning(_OTHERS_PENDING)
)


def _move_to_staging(
    session: Session,
    line: PickLine,
    context: LineContext,
    quantity: int,
    actor: str,
    serials: Sequence[str],
) -> None:
    ledger.record(
        session,
        Change(
            sku=context.sku,
            quantity=quantity,
            from_location=context.slot,
            to_location=context.assignment.staging,
            kind=MovementKind.pick,
            reason="picked",
            lot=line.lot,
            serials=serials,
            reference=f"order:{context.order_number}/assignment:{context.assignment.id}",
            from_reserved=True,
        ),
        actor=actor,
    )
    if context.order_status in _BEFORE_PICKING:  # its first pick: the order is being picked
        session.execute(
            update(Order)
            .where(Order.id == line.order_id, Order.status.in_(_BEFORE_PICKING))
            .values(status=OrderStatus.picking)
        )


def get_pick_line(session: Session, line_id: int) -> PickLine:
    line = session.get(PickLine, line_id)
    if line is None:
        raise NotFound(f"no pick line {line_id}", code="pick_line_not_found")
    return line


def list_assignments(
    session: Session,
    *,
    warehouse: str | None,
    status: str | None,
    picker: str | None,
    limit: int,
    offset: int,
    within: Collection[int] | None = None,
) -> tuple[list[Assignment], int]:
    """A page of assignments in id order, and how many match in all."""
    query = select(Assignment)
    if within is not None:
        query = query.where(Assignment.warehouse_id.in_(within))
    if warehouse:
        query = query.join(Warehouse, Warehouse.id == Assignment.warehouse_id).where(
            Warehouse.code == warehouse
        )
    if status:
        query = query.where(Assignment.status == status)
    if picker:
        query = query.where(Assignment.picker == picker)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(Assignment.id).limit(limit).offset(offset)).all()
    return list(items), total
