from typing import Annotated

from fastapi import APIRouter, Path

from server import schemas
from server.deps import DatabaseDep, Overseer, Supervisor
from server.services import transfers

router = APIRouter(prefix="/transfers", tags=["inventory"])

TransferId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("", response_model=schemas.TransferOut, status_code=201)
async def ship_transfer(
    body: schemas.TransferCreate, user: Supervisor, db: DatabaseDep
) -> schemas.TransferOut:
    """Ship stock to another warehouse: it sits in the sender's IN-TRANSIT until received."""
    return await db.write(transfers.ship, body, actor=user.username)


@router.get("/{transfer_id}", response_model=schemas.TransferOut)
async def get_transfer(
    transfer_id: TransferId, _: Overseer, db: DatabaseDep
) -> schemas.TransferOut:
    return await db.read(transfers.view, transfer_id)


@router.post("/{transfer_id}/receive", response_model=schemas.TransferOut)
async def receive_transfer(
    transfer_id: TransferId, body: schemas.TransferReceive, user: Supervisor, db: DatabaseDep
) -> schemas.TransferOut:
    """Receive every line; what did not arrive is recorded as a discrepancy."""
    return await db.write(transfers.receive, transfer_id, body, actor=user.username)
