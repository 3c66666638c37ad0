"""Assignments: the pickers' work, seen by overseers and signed on and off by pickers."""

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import PageParams, RowId
from server.deps import (
    AnyUser,
    ClientAddress,
    DatabaseDep,
    FloorWorker,
    Overseer,
    WarehouseScope,
)
from server.problems import Forbidden
from server.services import assignments, audit, picking
from server.services.membership import Scope
from server.tables import Assignment, AssignmentStatus, User

Filter = Annotated[str | None, Query(max_length=64)]

router = APIRouter(prefix="/assignments", tags=["picking"])


def visible_assignment(session: Session, number: RowId, user: User, scope: Scope) -> Assignment:
    """The assignment, if this user may see it: in their warehouses, and for pickers only
    their own."""
    assignment = assignment_in_scope(session, number, scope)
    if not views.shows_check_digits(user) and assignment.picker != user.username:
        raise Forbidden(f"assignment {number} is not yours", code="not_your_assignment")
    return assignment


def assignment_in_scope(session: Session, number: int, scope: Scope) -> Assignment:
    """The assignment, unless it is of a warehouse the caller does not work in."""
    assignment = picking.get_assignment(session, number)
    scope.require_id(assignment.warehouse_id, assignment.warehouse.code)
    return assignment


@router.get("", response_model=schemas.Page[schemas.AssignmentOut])
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
    overseer = views.shows_check_digits(user)

    def work(session: Session) -> schemas.Page[schemas.AssignmentOut]:
        found, total = picking.list_assignments(
            session,
            within=within,
            warehouse=warehouse,
            status=status,
            picker=picker if overseer else user.username,
            limit=page.limit,
            offset=page.offset,
        )
        items = [views.assignment_view(session, a, show_check_digits=overseer) for a in found]
        return page.of(items, total)

    return await db.read(work)


@router.post(
    "/sign-on",
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
        return views.assignment_seen_by(session, assignment, user)

    return await db.write(work)


@router.post(
    "/sign-off",
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
        return views.assignment_seen_by(session, assignment, user)

    return await db.write(work)


@router.get("/{number}", response_model=schemas.AssignmentOut)
async def get_assignment(
    number: RowId, user: AnyUser, scope: WarehouseScope, db: DatabaseDep
) -> schemas.AssignmentOut:
    def work(session: Session) -> schemas.AssignmentOut:
        assignment = visible_assignment(session, number, user, scope)
        return views.assignment_seen_by(session, assignment, user)

    return await db.read(work)


@router.patch("/{number}", response_model=schemas.AssignmentOut)
async def assign_picker(
    number: RowId,
    body: schemas.AssignmentPicker,
    user: Overseer,
    scope: WarehouseScope,
    client: ClientAddress,
    db: DatabaseDep,
) -> schemas.AssignmentOut:
    """Give an assignment nobody has started to a picker of its warehouse, who gets it at
    their next sign-on (null: back to the pool). 409 `assignment_in_progress` or
    `assignment_completed` once it is started; 422 `not_a_picker`, `picker_not_member`.
    Audited."""

    def work(session: Session) -> schemas.AssignmentOut:
        before = assignment_in_scope(session, number, scope).picker
        assignment = assignments.assign_picker(session, number, body.picker)
        audit.record(
            session,
            "assignment.assign",
            actor=user.username,
            client=client,
            subject=f"assignment:{number}",
            old={"picker": before},
            new={"picker": assignment.picker},
        )
        return views.assignment_view(session, assignment, show_check_digits=True)

    return await db.write(work)


@router.post("/{number}/complete", response_model=schemas.AssignmentCompletionOut)
async def complete_assignment(
    number: RowId, user: FloorWorker, scope: WarehouseScope, db: DatabaseDep
) -> schemas.AssignmentCompletionOut:
    """Close the assignment once every line is picked or short: where to deliver."""

    def work(session: Session) -> schemas.AssignmentCompletionOut:
        assignment_in_scope(session, number, scope)
        staging = picking.complete_assignment(session, number, user.username)
        return schemas.AssignmentCompletionOut(number=number, staging_location=staging.code)

    return await db.write(work)
