from fastapi import APIRouter
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import PageParams
from server.deps import Admin, AnyUser, DatabaseDep, Supervisor, WarehouseScope
from server.services import catalog, recordings
from server.tables import Warehouse

router = APIRouter(prefix="/warehouses", tags=["warehouses"])


@router.get("", response_model=schemas.Page[schemas.WarehouseOut])
async def list_warehouses(
    _: AnyUser, scope: WarehouseScope, db: DatabaseDep, page: PageParams
) -> schemas.Page[schemas.WarehouseOut]:
    """The warehouses the caller works in (every one for an admin)."""
    found, total = await db.read(
        catalog.list_warehouses, within=scope.ids, limit=page.limit, offset=page.offset
    )
    return page.of([schemas.WarehouseOut.model_validate(w) for w in found], total)


@router.post("", response_model=schemas.WarehouseOut, status_code=201)
async def create_warehouse(body: schemas.WarehouseCreate, _: Admin, db: DatabaseDep) -> Warehouse:
    return await db.write(catalog.create_warehouse, **body.model_dump())


@router.patch("/{code}", response_model=schemas.WarehouseOut)
async def update_warehouse(
    code: str, body: schemas.WarehouseUpdate, _: Admin, db: DatabaseDep
) -> Warehouse:
    """Whether the warehouse records its calls (admins)."""
    return await db.write(recordings.set_record_calls, code, body.record_calls)


@router.get("/{code}", response_model=schemas.WarehouseOut)
async def get_warehouse(code: str, _: AnyUser, scope: WarehouseScope, db: DatabaseDep) -> Warehouse:
    scope.require(code)
    return await db.read(catalog.get_warehouse, code)


@router.post("/{code}/locations", response_model=schemas.LocationOut, status_code=201)
async def create_location(
    code: str, body: schemas.LocationCreate, _: Supervisor, scope: WarehouseScope, db: DatabaseDep
) -> schemas.LocationOut:
    """Add a location; check digits are generated when not given (labels are printed from
    them)."""
    scope.require(code)
    spec = catalog.LocationSpec(**body.model_dump())

    def work(session: Session) -> schemas.LocationOut:
        warehouse = catalog.get_warehouse(session, code)
        return views.location_view(catalog.create_location(session, warehouse, spec))

    return await db.write(work)


@router.get("/{code}/locations", response_model=schemas.Page[schemas.LocationOut])
async def list_locations(
    code: str, _: Supervisor, scope: WarehouseScope, db: DatabaseDep, page: PageParams
) -> schemas.Page[schemas.LocationOut]:
    """Locations in walking order, with their check digits."""
    scope.require(code)

    def work(session: Session) -> schemas.Page[schemas.LocationOut]:
        found, total = catalog.list_locations(session, code, limit=page.limit, offset=page.offset)
        return page.of([views.location_view(location) for location in found], total)

    return await db.read(work)
