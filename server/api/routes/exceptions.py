from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from server import schemas
from server.api.pagination import PageParams, RowId
from server.deps import DatabaseDep, Overseer, WarehouseScope
from server.services import picking
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
        return picking.list_exceptions(
            session,
            warehouse=warehouse,
            status=status,
            limit=page.limit,
            offset=page.offset,
            within=within,
        )

    return await db.read(work)


@router.post("/{exception_id}/resolve", response_model=schemas.ExceptionOut)
async def resolve_exception(
    exception_id: RowId,
    body: schemas.ExceptionResolve,
    user: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.ExceptionOut:
    """Settle an exception of a warehouse the caller works in."""

    def work(session: Session) -> schemas.ExceptionOut:
        scope.require_id(picking.get_exception(session, exception_id).warehouse_id)
        exception = picking.resolve_exception(session, exception_id, user.username, body.resolution)
        return picking.exception_out(session, exception)

    return await db.write(work)
