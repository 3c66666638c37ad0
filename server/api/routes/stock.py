from typing import Annotated

from fastapi import APIRouter, Query

from server import schemas
from server.api.pagination import PageParams
from server.deps import AnyUser, FloorWorker, Overseer, SessionDep, Supervisor
from server.services import inventory

router = APIRouter(tags=["inventory"])

Filter = Annotated[str | None, Query(max_length=64)]


@router.get("/stock", response_model=schemas.Page[schemas.StockOut])
def list_stock(
    _: AnyUser,
    session: SessionDep,
    page: PageParams,
    warehouse: Filter = None,
    sku: Filter = None,
    location: Filter = None,
    include_empty: bool = False,
) -> schemas.Page[schemas.StockOut]:
    return inventory.list_stock(
        session,
        warehouse=warehouse,
        sku=sku,
        location=location,
        include_empty=include_empty,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/movements", response_model=schemas.MovementOut, status_code=201)
def create_movement(
    body: schemas.MoveCreate, user: FloorWorker, session: SessionDep
) -> schemas.MovementOut:
    """Move stock between two locations of a warehouse (409 `insufficient_stock` when the
    source does not hold enough unreserved units)."""
    movement = inventory.move(session, body, actor=user.username)
    return inventory.movement_view(session, movement.id)


@router.get("/movements", response_model=schemas.Page[schemas.MovementOut])
def list_movements(
    _: Overseer,
    session: SessionDep,
    page: PageParams,
    warehouse: Filter = None,
    sku: Filter = None,
    location: Filter = None,
) -> schemas.Page[schemas.MovementOut]:
    """The immutable ledger, newest first."""
    return inventory.list_movements(
        session,
        warehouse=warehouse,
        sku=sku,
        location=location,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/adjustments", response_model=schemas.MovementOut, status_code=201)
def create_adjustment(
    body: schemas.AdjustmentCreate, user: Supervisor, session: SessionDep
) -> schemas.MovementOut:
    movement = inventory.adjust(session, body, actor=user.username)
    return inventory.movement_view(session, movement.id)


@router.get("/reconcile", response_model=schemas.ReconcileOut)
def reconcile(_: Overseer, session: SessionDep, warehouse: Filter = None) -> schemas.ReconcileOut:
    """Prove that stock equals the sum of the ledger, per location, SKU and lot."""
    return inventory.reconcile_view(session, warehouse)
