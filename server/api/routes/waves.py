"""Waves: releasing allocated orders as assignments, following their progress, and
changing how urgent they are."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import PageParams, RowId
from server.deps import (
    DatabaseDep,
    Overseer,
    Supervisor,
    WarehouseScope,
)
from server.services import waves
from server.tables import WaveStatus

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


@router.get("", response_model=schemas.Page[schemas.WaveSummary])
async def list_waves(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Filter = None,
    status: WaveStatus | None = None,
) -> schemas.Page[schemas.WaveSummary]:
    """Waves of the caller's warehouses, newest first, with how far picking has come."""
    within = scope.within(warehouse)

    def work(session: Session) -> schemas.Page[schemas.WaveSummary]:
        found, total = waves.list_waves(
            session,
            warehouse=warehouse,
            status=status,
            limit=page.limit,
            offset=page.offset,
            within=within,
        )
        return page.of([views.wave_summary(progress) for progress in found], total)

    return await db.read(work)


@router.patch("/{number}", response_model=schemas.WaveOut)
async def reprioritise_wave(
    number: RowId,
    body: schemas.WavePriority,
    _: Supervisor,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.WaveOut:
    """Make a wave more or less urgent: its unfinished assignments take the priority
    (409 `wave_completed` once it is done)."""

    def work(session: Session) -> schemas.WaveOut:
        wave = waves.get_wave(session, number)
        scope.require_id(wave.warehouse_id, wave.warehouse.code)
        return views.wave_view(session, waves.reprioritise(session, number, body.priority))

    return await db.write(work)
