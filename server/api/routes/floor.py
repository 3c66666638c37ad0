"""The floor now: the pickers on shift and their progress, for the live floor board."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import PageParams
from server.deps import DatabaseDep, Overseer, WarehouseScope
from server.services import floor

router = APIRouter(prefix="/floor", tags=["picking"])


@router.get("", response_model=schemas.Page[schemas.FloorPickerOut])
async def list_pickers_on_shift(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Annotated[str | None, Query(max_length=64)] = None,
) -> schemas.Page[schemas.FloorPickerOut]:
    """Pickers with an assignment in progress in the caller's warehouses, by name: lines
    done of lines, when they started, their last pick and their picks in the last hour.
    A board loads this on every `subscribed` frame of `/ws/events`, then applies events."""
    within = scope.within(warehouse)

    def work(session: Session) -> schemas.Page[schemas.FloorPickerOut]:
        found, total = floor.pickers_on_shift(
            session, warehouse=warehouse, within=within, limit=page.limit, offset=page.offset
        )
        return page.of([views.floor_picker_view(p) for p in found], total)

    return await db.read(work)
