from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from server import schemas
from server.api.pagination import PageParams, RowId
from server.deps import (
    AnyUser,
    DatabaseDep,
    FloorWorker,
    Overseer,
    Supervisor,
    WarehouseScope,
)
from server.problems import Forbidden
from server.services import picking
from server.services.membership import Scope
from server.tables import Assignment, AssignmentStatus, ExceptionKind, Role, User

router = APIRouter(tags=["picking"])

Filter = Annotated[str | None, Query(max_length=64)]


def _sees_all(user: User) -> bool:
    return user.role != Role.picker


def visible_assignment(session: Session, number: RowId, user: User, scope: Scope) -> Assignment:
    """The assignment, if this user may see it: in their warehouses, and for pickers only
    their own."""
    assignment = assignment_in_scope(session, number, scope)
    if not _sees_all(user) and assignment.picker != user.username:
        raise Forbidden(f"assignment {number} is not yours", code="not_your_assignment")
    return assignment


def assignment_in_scope(session: Session, number: int, scope: Scope) -> Assignment:
    """The assignment, unless it is of a warehouse the caller does not work in."""
    assignment = picking.get_assignment(session, number)
    scope.require_id(assignment.warehouse_id, assignment.warehouse.code)
    return assignment


def line_in_scope(session: Session, line_id: int, scope: Scope) -> None:
    """Refuse a pick line of a warehouse the caller does not work in."""
    scope.require_id(picking.get_pick_line(session, line_id).warehouse_id)


@router.post("/waves", response_model=schemas.WaveOut, status_code=201)
async def release_wave(
    body: schemas.WaveCreate, user: Supervisor, scope: WarehouseScope, db: DatabaseDep
) -> schemas.WaveOut:
    """Release allocated orders as a wave of assignments (409 `nothing_to_release`)."""
    scope.require(body.warehouse)

    def work(session: Session) -> schemas.WaveOut:
        criteria = picking.WaveCriteria(**body.model_dump(exclude={"warehouse"}))
        wave = picking.release_wave(session, body.warehouse, criteria, actor=user.username)
        return picking.wave_view(session, wave)

    return await db.write(work)


@router.get("/waves/{number}", response_model=schemas.WaveOut)
async def get_wave(
    number: RowId, _: Overseer, scope: WarehouseScope, db: DatabaseDep
) -> schemas.WaveOut:
    def work(session: Session) -> schemas.WaveOut:
        wave = picking.get_wave(session, number)
        scope.require_id(wave.warehouse_id, wave.warehouse.code)
        return picking.wave_view(session, wave)

    return await db.read(work)


@router.get("/assignments", response_model=schemas.Page[schemas.AssignmentOut])
async def list_assignments(
    user: AnyUser,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Filter = None,
    status: AssignmentStatus | None = None,
    picker: Filter = None,
) -> schemas.Page[schemas.AssignmentOut]:
    """Assignments in the caller's warehouses; a picker sees only their own, without
    check digits."""
    within = scope.within(warehouse)

    def work(session: Session) -> schemas.Page[schemas.AssignmentOut]:
        return picking.list_assignments(
            session,
            within=within,
            warehouse=warehouse,
            status=status,
            picker=picker if _sees_all(user) else user.username,
            show_check_digits=_sees_all(user),
            limit=page.limit,
            offset=page.offset,
        )

    return await db.read(work)


@router.post(
    "/assignments/sign-on",
    response_model=schemas.AssignmentOut,
    responses={204: {"description": "No work for this picker now."}},
)
async def sign_on(
    body: schemas.SignOn, user: FloorWorker, scope: WarehouseScope, db: DatabaseDep
) -> object:
    """The picker's current assignment, or the most urgent ready one, now theirs: only
    from the warehouses they work in."""
    within = scope.within(body.warehouse)

    def work(session: Session) -> object:
        assignment = picking.sign_on(session, user.username, body.warehouse, within=within)
        if assignment is None:
            return Response(status_code=204)
        return picking.assignment_view(session, assignment, show_check_digits=_sees_all(user))

    return await db.write(work)


@router.post(
    "/assignments/sign-off",
    response_model=schemas.AssignmentOut,
    responses={204: {"description": "The picker had no assignment."}},
)
async def sign_off(user: FloorWorker, db: DatabaseDep) -> object:
    """Stop picking: an untouched assignment goes back to the pool, a started one stays
    with the picker to resume."""

    def work(session: Session) -> object:
        assignment = picking.sign_off(session, user.username)
        if assignment is None:
            return Response(status_code=204)
        return picking.assignment_view(session, assignment, show_check_digits=_sees_all(user))

    return await db.write(work)


@router.get("/assignments/{number}", response_model=schemas.AssignmentOut)
async def get_assignment(
    number: RowId, user: AnyUser, scope: WarehouseScope, db: DatabaseDep
) -> schemas.AssignmentOut:
    def work(session: Session) -> schemas.AssignmentOut:
        assignment = visible_assignment(session, number, user, scope)
        return picking.assignment_view(session, assignment, show_check_digits=_sees_all(user))

    return await db.read(work)


@router.post("/assignments/{number}/complete", response_model=schemas.AssignmentCompleted)
async def complete_assignment(
    number: RowId, user: FloorWorker, scope: WarehouseScope, db: DatabaseDep
) -> schemas.AssignmentCompleted:
    """Close the assignment once every line is picked or short: where to deliver."""

    def work(session: Session) -> schemas.AssignmentCompleted:
        assignment_in_scope(session, number, scope)
        staging = picking.complete_assignment(session, number, user.username)
        return schemas.AssignmentCompleted(number=number, staging_location=staging.code)

    return await db.write(work)


def _result(session: Session, result: picking.PickResult, user: User) -> schemas.PickResultOut:
    assignment = result.line.assignment
    assert assignment is not None
    view = picking.assignment_view(session, assignment, show_check_digits=_sees_all(user))
    line = next(x for x in view.lines if x.id == result.line.id)
    exception = result.exception
    substitutes = {s.id for s in result.substitutes}
    return schemas.PickResultOut(
        line=line,
        replayed=result.replayed,
        remaining=result.remaining,
        exception=picking.exception_view(exception, view.warehouse) if exception else None,
        substitutes=[x for x in view.lines if x.id in substitutes],
    )


@router.post("/pick-lines/{line_id}/confirm", response_model=schemas.PickResultOut)
async def confirm_pick(
    line_id: RowId,
    body: schemas.PickConfirm,
    user: FloorWorker,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.PickResultOut:
    """Confirm the quantity asked for; the same `token` again replays without a change."""

    def work(session: Session) -> schemas.PickResultOut:
        line_in_scope(session, line_id, scope)
        result = picking.confirm_pick(
            session,
            line_id,
            body.quantity,
            user.username,
            idempotency_token=body.token,
            serials=body.serials,
        )
        return _result(session, result, user)

    return await db.write(work)


@router.post("/pick-lines/{line_id}/short", response_model=schemas.PickResultOut)
async def report_short(
    line_id: RowId,
    body: schemas.PickShort,
    user: FloorWorker,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.PickResultOut:
    """Fewer units than asked: picks those, releases the rest, opens a `short` exception."""

    def work(session: Session) -> schemas.PickResultOut:
        line_in_scope(session, line_id, scope)
        result = picking.report_short(
            session,
            line_id,
            body.picked,
            user.username,
            idempotency_token=body.token,
            note=body.note,
            serials=body.serials,
        )
        return _result(session, result, user)

    return await db.write(work)


@router.post("/pick-lines/{line_id}/skip", response_model=schemas.PickLineOut)
async def skip_line(
    line_id: RowId, user: FloorWorker, scope: WarehouseScope, db: DatabaseDep
) -> schemas.PickLineOut:
    """Pass the slot for now; it is offered again after the open lines."""

    def work(session: Session) -> schemas.PickLineOut:
        line_in_scope(session, line_id, scope)
        line = picking.skip_line(session, line_id, user.username)
        assert line.assignment is not None
        view = picking.assignment_view(session, line.assignment, show_check_digits=_sees_all(user))
        return next(x for x in view.lines if x.id == line.id)

    return await db.write(work)


@router.post(
    "/pick-lines/{line_id}/exceptions", response_model=schemas.ExceptionOut, status_code=201
)
async def report_exception(
    line_id: RowId,
    body: schemas.ExceptionCreate,
    user: FloorWorker,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.ExceptionOut:
    """Damage, a wrong item or a call for help at this line, for a manager to resolve."""

    def work(session: Session) -> schemas.ExceptionOut:
        line_in_scope(session, line_id, scope)
        exception = picking.report_exception(
            session, ExceptionKind(body.kind), user.username, line_id=line_id, note=body.note
        )
        line = picking.get_pick_line(session, line_id)
        return picking.exception_view(exception, line.location.warehouse.code)

    return await db.write(work)
