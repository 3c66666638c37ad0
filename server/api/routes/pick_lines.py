"""Pick lines: a picker confirms, shorts or skips a line, or reports an exception at it."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import RowId
from server.deps import (
    DatabaseDep,
    FloorWorker,
    WarehouseScope,
)
from server.services import picking
from server.services.membership import Scope
from server.tables import ExceptionKind, PickLine, User

Filter = Annotated[str | None, Query(max_length=64)]

router = APIRouter(prefix="/pick-lines", tags=["picking"])


def line_in_scope(session: Session, line_id: int, scope: Scope) -> PickLine:
    """The pick line, refused when it is in a warehouse the caller does not work in. It is
    loaded with what the services use of it; the caller holds on to it while they run
    (the session keeps its rows by weak reference only)."""
    line = picking.line_in_context(session, line_id) or picking.get_pick_line(session, line_id)
    scope.require_id(line.warehouse_id)
    return line


def line_view(line: PickLine, *, show_check_digits: bool) -> schemas.PickLineOut:
    """One line as the assignment view shows it, from the line and its loaded rows."""
    return views.pick_line_view(
        line, line.order.number, line.location, line.sku, show_check_digits=show_check_digits
    )


def _result(result: picking.PickResult, user: User) -> schemas.PickResultOut:
    """The answer to a confirmation or a short: the closed line and any substitutes (not
    the whole assignment read again)."""
    show = views.shows_check_digits(user)
    exception = result.exception
    context = result.context
    return schemas.PickResultOut(
        line=views.pick_line_view(
            result.line, context.order_number, context.slot, context.sku, show_check_digits=show
        ),
        replayed=result.replayed,
        remaining=result.remaining,
        exception=views.exception_view(exception) if exception else None,
        substitutes=[
            line_view(x, show_check_digits=show)
            for x in sorted(result.substitutes, key=lambda x: x.sequence)
        ],
    )


@router.post("/{line_id}/confirm", response_model=schemas.PickResultOut)
async def confirm_pick(
    line_id: RowId,
    body: schemas.PickConfirm,
    user: FloorWorker,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.PickResultOut:
    """Confirm the quantity asked for; the same `token` again replays without a change."""

    def work(session: Session) -> schemas.PickResultOut:
        result = picking.confirm_pick(
            session,
            line_id,
            body.quantity,
            user.username,
            idempotency_token=body.token,
            serials=body.serials,
            scope=scope,
        )
        return _result(result, user)

    return await db.write_brief(work)


@router.post("/{line_id}/short", response_model=schemas.PickResultOut)
async def report_short(
    line_id: RowId,
    body: schemas.PickShort,
    user: FloorWorker,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.PickResultOut:
    """Fewer units than asked: picks those, releases the rest, opens a `short` exception."""

    def work(session: Session) -> schemas.PickResultOut:
        line = line_in_scope(session, line_id, scope)
        result = picking.report_short(
            session,
            line.id,
            body.picked,
            user.username,
            idempotency_token=body.token,
            note=body.note,
            serials=body.serials,
        )
        return _result(result, user)

    return await db.write_brief(work)


@router.post("/{line_id}/skip", response_model=schemas.PickLineOut)
async def skip_line(
    line_id: RowId, user: FloorWorker, scope: WarehouseScope, db: DatabaseDep
) -> schemas.PickLineOut:
    """Pass the slot for now; it is offered again after the open lines."""

    def work(session: Session) -> schemas.PickLineOut:
        line_in_scope(session, line_id, scope)
        line = picking.skip_line(session, line_id, user.username)
        assert line.assignment is not None
        view = views.assignment_seen_by(session, line.assignment, user)
        return next(x for x in view.lines if x.id == line.id)

    return await db.write(work)


@router.post("/{line_id}/exceptions", response_model=schemas.ExceptionOut, status_code=201)
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
        return views.exception_view(exception)

    return await db.write(work)
