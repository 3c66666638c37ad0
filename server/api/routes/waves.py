"""Waves: releasing allocated orders as assignments, and looking at what a wave holds."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import RowId
from server.deps import (
    DatabaseDep,
    Overseer,
    Supervisor,
    WarehouseScope,
)
from server.services import waves

Filter = Annotated[str | None, Query(max_length=64)]

router = APIRouter(prefix="/waves", tags=["picking"])


@router.post("", response_model=schemas.WaveOut, status_code=201)
async def release_wave(
    body: schemas.WaveCreate, user: Supervisor, scope: WarehouseScope, db: DatabaseDep
) -> schemas.WaveOut:
    """Release allocated orders as a wave of assignments (409 `nothing_to_release`)."""
    scope.require(body.warehouse)

    def work(session: Session) -> schemas.WaveOut:
        criteria = waves.WaveCriteria(**body.model_dump(exclude={"warehouse"}))
        wave = waves.release_wave(session, body.warehouse, criteria, actor=user.username)
        return views.wave_view(session, wave)

    return await db.write(work)


@router.get("/{number}", response_model=schemas.WaveOut)
async def get_wave(
    number: RowId, _: Overseer, scope: WarehouseScope, db: DatabaseDep
) -> schemas.WaveOut:
    def work(session: Session) -> schemas.WaveOut:
        wave = waves.get_wave(session, number)
        scope.require_id(wave.warehouse_id, wave.warehouse.code)
        return views.wave_view(session, wave)

    return await db.read(work)
