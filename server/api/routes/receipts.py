from fastapi import APIRouter
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.deps import DatabaseDep, Supervisor, WarehouseScope
from server.services import inventory

router = APIRouter(prefix="/receipts", tags=["inventory"])


@router.post("", response_model=schemas.ReceiptOut, status_code=201)
async def create_receipt(
    body: schemas.ReceiptCreate, user: Supervisor, scope: WarehouseScope, db: DatabaseDep
) -> schemas.ReceiptOut:
    """Book inbound stock against an ASN/PO, split by inspection (good, damaged, quarantined),
    in a warehouse the caller works in."""
    scope.require(body.warehouse)

    def work(session: Session) -> schemas.ReceiptOut:
        return views.receipt_view(inventory.receive(session, body, actor=user.username))

    return await db.write(work)
