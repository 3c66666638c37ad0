from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import PageParams, RowId
from server.deps import DatabaseDep, Overseer, WarehouseScope
from server.services import exceptions
from server.tables import ExceptionStatus

router = APIRouter(prefix="/exceptions", tags=["picking"])

Filter = Annotated[str | None, Query(max_length=64)]


@router.get("", response_model=schemas.Page[schemas.ExceptionOut])
async def list_exceptions(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Filter = None,
    status: ExceptionStatus | None = None,
) -> schemas.Page[schemas.ExceptionOut]:
    """Shorts, damage, wrong items and calls for help from the floor of the caller's
    warehouses, oldest first."""
    within = scope.within(warehouse)

    def work(session: Session) -> schemas.Page[schemas.ExceptionOut]:
        found, total = exceptions.list_exceptions(
            session,
            warehouse=warehouse,
            status=status,
            limit=page.limit,
            offset=page.offset,
            within=within,
        )
        items = [views.exception_view(exception) for exception in found]
        return page.of(items, total)

    return await db.read(work)


@router.post("/{exception_id}/resolve", response_model=schemas.ExceptionOut)
async def resolve_exception(
    exception_id: RowId,
    body: schemas.ExceptionResolve,
    user: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.ExceptionOut:
    """Settle an exception of a warehouse the caller works in, and record who decided,
    when, in which call (its latest room) and what it changed:

    - `noted` (the default): the decision in words, nothing else changes;
    - `short_accepted`: a short's missing units are written off at the slot (at most what
      the books still hold there; the adjustment is in `movement`);
    - `adjusted`: the line's SKU and lot are corrected by `quantity` at `location` (default
      the slot) for `reason`; stock never goes below zero (409 `insufficient_stock`);
    - `recount`: a `recount` exception is opened for the slot;
    - `reassigned`: what is left of the exception's assignment goes to `picker` (an active
      picker of the warehouse with no other work in progress), who resumes it at the next
      unpicked line when they sign on.

    What the decision changes is written with it or not at all."""
    decision = exceptions.Decision(
        resolution=body.resolution,
        outcome=body.outcome,
        location=body.location,
        quantity=body.quantity,
        reason=body.reason,
        picker=body.picker,
    )

    def work(session: Session) -> schemas.ExceptionOut:
        scope.require_id(exceptions.get_exception(session, exception_id).warehouse_id)
        exception = exceptions.resolve_exception(session, exception_id, user.username, decision)
        return views.exception_view(exception)

    return await db.write(work)
