from fastapi import APIRouter

from server import schemas
from server.api.pagination import RowId
from server.deps import DatabaseDep, Overseer, Supervisor
from server.services import transfers

router = APIRouter(prefix="/transfers", tags=["inventory"])


@router.post("", response_model=schemas.TransferOut, status_code=201)
async def ship_transfer(
    body: schemas.TransferCreate, user: Supervisor, db: DatabaseDep
) -> schemas.TransferOut:
    """Ship stock to another warehouse: it sits in the sender's IN-TRANSIT until received."""
    return await db.write(transfers.ship, body, actor=user.username)


@router.get("/{transfer_id}", response_model=schemas.TransferOut)
async def get_transfer(transfer_id: RowId, _: Overseer, db: DatabaseDep) -> schemas.TransferOut:
    return await db.read(transfers.view, transfer_id)


@router.post("/{transfer_id}/receive", response_model=schemas.TransferOut)
async def receive_transfer(
    transfer_id: RowId, body: schemas.TransferReceive, user: Supervisor, db: DatabaseDep
) -> schemas.TransferOut:
    """Receive every line; what did not arrive is recorded as a discrepancy."""
    return await db.write(transfers.receive, transfer_id, body, actor=user.username)
