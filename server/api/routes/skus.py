from fastapi import APIRouter
from sqlalchemy import func, select

from server import schemas
from server.api.pagination import PageParams
from server.deps import AnyUser, SessionDep, Supervisor
from server.services import catalog
from server.tables import Sku

router = APIRouter(prefix="/skus", tags=["skus"])


def _sku_out(sku: Sku) -> schemas.SkuOut:
    return schemas.SkuOut(
        sku=sku.code,
        description=sku.description,
        barcode=sku.barcode,
        unit=sku.unit,
        lot_controlled=sku.lot_controlled,
        serialized=sku.serialized,
        length_mm=sku.length_mm,
        width_mm=sku.width_mm,
        height_mm=sku.height_mm,
        weight_g=sku.weight_g,
    )


@router.get("", response_model=schemas.Page[schemas.SkuOut])
def list_skus(_: AnyUser, session: SessionDep, page: PageParams) -> schemas.Page[schemas.SkuOut]:
    rows = session.scalars(select(Sku).order_by(Sku.code).limit(page.limit).offset(page.offset))
    total = session.scalar(select(func.count(Sku.id))) or 0
    return schemas.Page(
        items=[_sku_out(s) for s in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("", response_model=schemas.SkuOut, status_code=201)
def create_sku(body: schemas.SkuCreate, _: Supervisor, session: SessionDep) -> schemas.SkuOut:
    fields = body.model_dump()
    return _sku_out(catalog.create_sku(session, code=fields.pop("sku"), **fields))


@router.get("/{sku}", response_model=schemas.SkuOut)
def get_sku(sku: str, _: AnyUser, session: SessionDep) -> schemas.SkuOut:
    return _sku_out(catalog.get_sku(session, sku))
