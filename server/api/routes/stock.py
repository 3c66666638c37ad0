from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
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
    lot: Filter = None,
    include_empty: bool = False,
) -> schemas.Page[schemas.StockOut]:
    """Stock on hand in the caller's warehouses."""
    within = scope.within(warehouse)

    def work(session: Session) -> schemas.Page[schemas.StockOut]:
        found, total = inventory.list_stock(
            session,
            within=within,
            warehouse=warehouse,
            sku=sku,
            location=location,
            lot=lot,
            include_empty=include_empty,
            limit=page.limit,
            offset=page.offset,
        )
        items = [views.stock_view(stock, expiry) for stock, expiry in found]
        return page.of(items, total)

    return await db.read(work)


@router.get("/serials", response_model=schemas.Page[schemas.SerialOut])
async def list_serials(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Filter = None,
    location: Filter = None,
    sku: Filter = None,
    serial: Annotated[str | None, Query(max_length=128)] = None,
) -> schemas.Page[schemas.SerialOut]:
    """Serialised units on the books and their locations (what the labels at a slot say;
    pickers give them by voice, so they do not get this list); `serial` finds one unit."""
    within = scope.within(warehouse)

    def work(session: Session) -> schemas.Page[schemas.SerialOut]:
        found, total = serials.list_serials(
            session,
            within=within,
            warehouse=warehouse,
            location=location,
            sku=sku,
            serial=serial,
            limit=page.limit,
            offset=page.offset,
        )
        return page.of([views.serial_view(unit) for unit in found], total)

    return await db.read(work)


@router.post("/movements", response_model=schemas.MovementOut, status_code=201)
async def create_movement(
    body: schemas.MoveCreate, user: FloorWorker, scope: WarehouseScope, db: DatabaseDep
) -> schemas.MovementOut:
    """Move stock between two locations of a warehouse the caller works in (409
    `insufficient_stock` when the source does not hold enough unreserved units)."""
    scope.require(body.warehouse)

    def work(session: Session) -> schemas.MovementOut:
        return views.recorded_view(inventory.move(session, body, actor=user.username))

    return await db.write_brief(work)


@router.get("/movements", response_model=schemas.Page[schemas.MovementOut])
async def list_movements(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    page: PageParams,
    warehouse: Filter = None,
    sku: Filter = None,
    location: Filter = None,
    lot: Filter = None,
    serial: Annotated[str | None, Query(max_length=128)] = None,
) -> schemas.Page[schemas.MovementOut]:
    """The immutable ledger, newest first: movements with a side in the caller's
    warehouses. Filtered by `sku` and `lot`, or by `serial`, it is the full trace of a
    lot or of one unit: who moved it, when, why and where."""
    within = scope.within(warehouse)

    def work(session: Session) -> schemas.Page[schemas.MovementOut]:
        found, total = inventory.list_movements(
            session,
            within=within,
            warehouse=warehouse,
            sku=sku,
            location=location,
            lot=lot,
            serial=serial,
            limit=page.limit,
            offset=page.offset,
        )
        items = [views.movement_view(movement) for movement in found]
        return page.of(items, total)

    return await db.read(work)


@router.post("/adjustments", response_model=schemas.MovementOut, status_code=201)
async def create_adjustment(
    body: schemas.AdjustmentCreate, user: Supervisor, scope: WarehouseScope, db: DatabaseDep
) -> schemas.MovementOut:
    scope.require(body.warehouse)

    def work(session: Session) -> schemas.MovementOut:
        return views.recorded_view(inventory.adjust(session, body, actor=user.username))

    return await db.write_brief(work)


@router.get("/reconcile", response_model=schemas.ReconcileOut)
async def reconcile(
    _: Overseer, scope: WarehouseScope, db: DatabaseDep, warehouse: Filter = None
) -> schemas.ReconcileOut:
    """Prove that stock equals the sum of the ledger, per location, SKU and lot (in the
    caller's warehouses)."""
    within = scope.within(warehouse)

    def work(session: Session) -> schemas.ReconcileOut:
        result = inventory.reconcile(session, warehouse, within=within)
        return views.reconciliation_view(session, result)

    return await db.read(work)
