from fastapi import APIRouter

from server import schemas
from server.deps import DatabaseDep, Supervisor
from server.services import inventory

router = APIRouter(prefix="/receipts", tags=["inventory"])


@router.post("", response_model=schemas.ReceiptOut, status_code=201)
async def create_receipt(
    body: schemas.ReceiptCreate, user: Supervisor, db: DatabaseDep
) -> schemas.ReceiptOut:
    """Book inbound stock against an ASN/PO, split by inspection (good, damaged, quarantined)."""
    return await db.write(inventory.receive, body, actor=user.username)
