from fastapi import APIRouter

from server import schemas
from server.deps import SessionDep, Supervisor
from server.services import inventory

router = APIRouter(prefix="/receipts", tags=["inventory"])


@router.post("", response_model=schemas.ReceiptOut, status_code=201)
def create_receipt(
    body: schemas.ReceiptCreate, user: Supervisor, session: SessionDep
) -> schemas.ReceiptOut:
    """Book inbound stock against an ASN/PO, split by inspection (good, damaged, quarantined)."""
    return inventory.receipt_view(inventory.receive(session, body, actor=user.username))
