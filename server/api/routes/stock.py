from typing import Annotated

from fastapi import APIRouter, Query

from server import schemas
from server.api.pagination import PageParams
from server.deps import AnyUser, DatabaseDep, FloorWorker, Overseer, Supervisor, WarehouseScope
from server.services import inventory, serials

router = APIRouter(tags=["inventory"])

Filter = Annotated[str | None, Query(max_length=64)]


@router.get("/stock", response_model=schemas.Page[schemas.StockOut])
async def list_stock(
    _: AnyUser,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Filter = None,
    sku: Filter = None,
    location: Filter = None,
    include_empty: bool = False,
) -> schemas.Page[schemas.StockOut]:
    """Stock on hand in the caller's warehouses."""
    return await db.read(
        inventory.list_stock,
        within=scope.within(warehouse),
        warehouse=warehouse,
        sku=sku,
        location=location,
        include_empty=include_empty,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/serials", response_model=schemas.Page[schemas.SerialOut])
async def list_serials(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Filter = None,
    location: Filter = None,
    sku: Filter = None,
) -> schemas.Page[schemas.SerialOut]:
    """Serialised units on the books and their locations (what the labels at a slot say;
    pickers give them by voice, so they do not get this list)."""
    return await db.read(
        serials.list_serials,
        within=scope.within(warehouse),
        warehouse=warehouse,
        location=location,
        sku=sku,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/movements", response_model=schemas.MovementOut, status_code=201)
async def create_movement(
    body: schemas.MoveCreate, user: FloorWorker, scope: WarehouseScope, db: DatabaseDep
) -> schemas.MovementOut:
    """Move stock between two locations of a warehouse the caller works in (409
    `insufficient_stock` when the source does not hold enough unreserved units)."""
    scope.require(body.warehouse)
    return await db.write(inventory.move, body, actor=user.username)


@router.get("/movements", response_model=schemas.Page[schemas.MovementOut])
async def list_movements(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Filter = None,
    sku: Filter = None,
    location: Filter = None,
) -> schemas.Page[schemas.MovementOut]:
    """The immutable ledger, newest first: movements with a side in the caller's
    warehouses."""
    return await db.read(
        inventory.list_movements,
        within=scope.within(warehouse),
        warehouse=warehouse,
        sku=sku,
        location=location,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/adjustments", response_model=schemas.MovementOut, status_code=201)
async def create_adjustment(
    body: schemas.AdjustmentCreate, user: Supervisor, scope: WarehouseScope, db: DatabaseDep
) -> schemas.MovementOut:
    scope.require(body.warehouse)
    return await db.write(inventory.adjust, body, actor=user.username)


@router.get("/reconcile", response_model=schemas.ReconcileOut)
async def reconcile(
    _: Overseer, scope: WarehouseScope, db: DatabaseDep, warehouse: Filter = None
) -> schemas.ReconcileOut:
    """Prove that stock equals the sum of the ledger, per location, SKU and lot (in the
    caller's warehouses)."""
    return await db.read(inventory.reconcile_view, warehouse, within=scope.within(warehouse))
