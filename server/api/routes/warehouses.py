from fastapi import APIRouter
from sqlalchemy import func, select

from server import schemas
from server.api.pagination import PageParams
from server.deps import Admin, AnyUser, SessionDep, Supervisor
from server.services import catalog
from server.tables import Location, Warehouse, Zone

router = APIRouter(prefix="/warehouses", tags=["warehouses"])


@router.get("", response_model=schemas.Page[schemas.WarehouseOut])
def list_warehouses(_: AnyUser, session: SessionDep, page: PageParams) -> dict[str, object]:
    rows = session.scalars(
        select(Warehouse).order_by(Warehouse.code).limit(page.limit).offset(page.offset)
    )
    total = session.scalar(select(func.count(Warehouse.id))) or 0
    return {"items": list(rows), "total": total, "limit": page.limit, "offset": page.offset}


@router.post("", response_model=schemas.WarehouseOut, status_code=201)
def create_warehouse(body: schemas.WarehouseCreate, _: Admin, session: SessionDep) -> Warehouse:
    return catalog.create_warehouse(session, **body.model_dump())


@router.get("/{code}", response_model=schemas.WarehouseOut)
def get_warehouse(code: str, _: AnyUser, session: SessionDep) -> Warehouse:
    return catalog.get_warehouse(session, code)


def _location_out(location: Location, warehouse: str, zone: str) -> schemas.LocationOut:
    return schemas.LocationOut(
        code=location.code,
        warehouse=warehouse,
        zone=zone,
        kind=location.kind,
        aisle=location.aisle,
        slot=location.slot,
        level=location.level,
        pick_sequence=location.pick_sequence,
        check_digits=location.check_digits,
    )


@router.post("/{code}/locations", response_model=schemas.LocationOut, status_code=201)
def create_location(
    code: str, body: schemas.LocationCreate, _: Supervisor, session: SessionDep
) -> schemas.LocationOut:
    """Add a location; check digits are generated when not given (for printing labels)."""
    warehouse = catalog.get_warehouse(session, code)
    location = catalog.create_location(
        session, warehouse, catalog.LocationSpec(**body.model_dump())
    )
    return _location_out(location, warehouse.code, body.zone)


@router.get("/{code}/locations", response_model=schemas.Page[schemas.LocationOut])
def list_locations(
    code: str, _: Supervisor, session: SessionDep, page: PageParams
) -> schemas.Page[schemas.LocationOut]:
    """Locations in walking order, with check digits (supervisors print labels from them)."""
    warehouse = catalog.get_warehouse(session, code)
    query = (
        select(Location, Zone.code)
        .join(Zone, Zone.id == Location.zone_id)
        .where(Location.warehouse_id == warehouse.id)
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Location.pick_sequence, Location.code).limit(page.limit).offset(page.offset)
    ).all()
    return schemas.Page(
        items=[_location_out(loc, warehouse.code, zone) for loc, zone in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
