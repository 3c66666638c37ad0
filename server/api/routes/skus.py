from fastapi import APIRouter

from server import schemas
from server.api import views
from server.api.pagination import PageParams
from server.deps import AnyUser, DatabaseDep, Supervisor
from server.services import catalog

router = APIRouter(prefix="/skus", tags=["skus"])


@router.get("", response_model=schemas.Page[schemas.SkuOut])
async def list_skus(_: AnyUser, db: DatabaseDep, page: PageParams) -> schemas.Page[schemas.SkuOut]:
    found, total = await db.read(catalog.list_skus, limit=page.limit, offset=page.offset)
    return page.of([views.sku_view(sku) for sku in found], total)


@router.post("", response_model=schemas.SkuOut, status_code=201)
async def create_sku(body: schemas.SkuCreate, _: Supervisor, db: DatabaseDep) -> schemas.SkuOut:
    fields = body.model_dump()
    sku = await db.write(catalog.create_sku, code=fields.pop("sku"), **fields)
    return views.sku_view(sku)


@router.get("/{sku}", response_model=schemas.SkuOut)
async def get_sku(sku: str, _: AnyUser, db: DatabaseDep) -> schemas.SkuOut:
    return views.sku_view(await db.read(catalog.get_sku, sku))
