from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from server import schemas
from server.api.pagination import PageParams
from server.deps import AnyUser, FloorWorker, Overseer, SessionDep, Supervisor
from server.problems import Forbidden
from server.services import picking
from server.tables import Assignment, AssignmentStatus, ExceptionKind, Role, User

router = APIRouter(tags=["picking"])

Filter = Annotated[str | None, Query(max_length=64)]


def _sees_all(user: User) -> bool:
    return user.role != Role.picker


def visible_assignment(number: int, user: AnyUser, session: SessionDep) -> Assignment:
    """The assignment, if this user may see it: pickers only see their own."""
    assignment = picking.get_assignment(session, number)
    if not _sees_all(user) and assignment.picker != user.username:
        raise Forbidden(f"assignment {number} is not yours", code="not_your_assignment")
    return assignment


VisibleAssignment = Annotated[Assignment, Depends(visible_assignment)]


@router.post("/waves", response_model=schemas.WaveOut, status_code=201)
def release_wave(
    body: schemas.WaveCreate, user: Supervisor, session: SessionDep
) -> schemas.WaveOut:
    """Release allocated orders as a wave of assignments (409 `nothing_to_release`)."""
    criteria = picking.WaveCriteria(**body.model_dump(exclude={"warehouse"}))
    wave = picking.release_wave(session, body.warehouse, criteria, actor=user.username)
    return picking.wave_view(session, wave)


@router.get("/waves/{number}", response_model=schemas.WaveOut)
def get_wave(number: int, _: Overseer, session: SessionDep) -> schemas.WaveOut:
    return picking.wave_view(session, picking.get_wave(session, number))


@router.get("/assignments", response_model=schemas.Page[schemas.AssignmentOut])
def list_assignments(
    user: AnyUser,
    session: SessionDep,
    page: PageParams,
    warehouse: Filter = None,
    status: AssignmentStatus | None = None,
    picker: Filter = None,
) -> schemas.Page[schemas.AssignmentOut]:
    """Assignments; a picker sees only their own, without check digits."""
    return picking.list_assignments(
        session,
        warehouse=warehouse,
        status=status,
        picker=picker if _sees_all(user) else user.username,
        show_check_digits=_sees_all(user),
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/assignments/sign-on",
    response_model=schemas.AssignmentOut,
    responses={204: {"description": "No work for this picker now."}},
)
def sign_on(body: schemas.SignOn, user: FloorWorker, session: SessionDep) -> object:
    """The picker's current assignment, or the most urgent ready one, now theirs."""
    assignment = picking.sign_on(session, user.username, body.warehouse)
    if assignment is None:
        return Response(status_code=204)
    return picking.assignment_view(session, assignment, show_check_digits=_sees_all(user))


@router.post(
    "/assignments/sign-off",
    response_model=schemas.AssignmentOut,
    responses={204: {"description": "The picker had no assignment."}},
)
def sign_off(user: FloorWorker, session: SessionDep) -> object:
    """Stop picking: an untouched assignment goes back to the pool, a started one stays
    with the picker to resume."""
    assignment = picking.sign_off(session, user.username)
    if assignment is None:
        return Response(status_code=204)
    return picking.assignment_view(session, assignment, show_check_digits=_sees_all(user))


@router.get("/assignments/{number}", response_model=schemas.AssignmentOut)
def get_assignment(
    assignment: VisibleAssignment, user: AnyUser, session: SessionDep
) -> schemas.AssignmentOut:
    return picking.assignment_view(session, assignment, show_check_digits=_sees_all(user))


@router.post("/assignments/{number}/complete", response_model=schemas.AssignmentCompleted)
def complete_assignment(
    number: int, user: FloorWorker, session: SessionDep
) -> schemas.AssignmentCompleted:
    """Close the assignment once every line is picked or short: where to deliver."""
    staging = picking.complete_assignment(session, number, user.username)
    return schemas.AssignmentCompleted(number=number, staging_location=staging.code)


def _result(session: SessionDep, result: picking.PickResult, user: User) -> schemas.PickResultOut:
    assignment = result.line.assignment
    assert assignment is not None
    view = picking.assignment_view(session, assignment, show_check_digits=_sees_all(user))
    line = next(x for x in view.lines if x.id == result.line.id)
    exception = result.exception
    return schemas.PickResultOut(
        line=line,
        replayed=result.replayed,
        remaining=result.remaining,
        exception=picking.exception_view(exception, view.warehouse) if exception else None,
    )


@router.post("/pick-lines/{line_id}/confirm", response_model=schemas.PickResultOut)
def confirm_pick(
    line_id: int, body: schemas.PickConfirm, user: FloorWorker, session: SessionDep
) -> schemas.PickResultOut:
    """Confirm the quantity asked for; the same `token` again replays without a change."""
    result = picking.confirm_pick(
        session,
        line_id,
        body.quantity,
        user.username,
        idempotency_token=body.token,
        serials=body.serials,
    )
    return _result(session, result, user)


@router.post("/pick-lines/{line_id}/short", response_model=schemas.PickResultOut)
def report_short(
    line_id: int, body: schemas.PickShort, user: FloorWorker, session: SessionDep
) -> schemas.PickResultOut:
    """Fewer units than asked: picks those, releases the rest, opens a `short` exception."""
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


@router.post("/pick-lines/{line_id}/skip", response_model=schemas.PickLineOut)
def skip_line(line_id: int, user: FloorWorker, session: SessionDep) -> schemas.PickLineOut:
    """Pass the slot for now; it is offered again after the open lines."""
    line = picking.skip_line(session, line_id, user.username)
    assert line.assignment is not None
    view = picking.assignment_view(session, line.assignment, show_check_digits=_sees_all(user))
    return next(x for x in view.lines if x.id == line.id)


@router.post(
    "/pick-lines/{line_id}/exceptions", response_model=schemas.ExceptionOut, status_code=201
)
def report_exception(
    line_id: int, body: schemas.ExceptionCreate, user: FloorWorker, session: SessionDep
) -> schemas.ExceptionOut:
    """Damage, a wrong item or a call for help at this line, for a manager to resolve."""
    exception = picking.report_exception(
        session, ExceptionKind(body.kind), user.username, line_id=line_id, note=body.note
    )
    line = picking.get_pick_line(session, line_id)
    return picking.exception_view(exception, line.location.warehouse.code)
