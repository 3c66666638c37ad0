from typing import Annotated

from fastapi import APIRouter, Path

from server import schemas
from server.deps import Overseer, SessionDep, Supervisor
from server.services import transfers

router = APIRouter(prefix="/transfers", tags=["inventory"])

TransferId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("", response_model=schemas.TransferOut, status_code=201)
def ship_transfer(
    body: schemas.TransferCreate, user: Supervisor, session: SessionDep
) -> schemas.TransferOut:
    """Ship stock to another warehouse: it sits in the sender's IN-TRANSIT until received."""
    return transfers.view(transfers.ship(session, body, actor=user.username))


@router.get("/{transfer_id}", response_model=schemas.TransferOut)
def get_transfer(transfer_id: TransferId, _: Overseer, session: SessionDep) -> schemas.TransferOut:
    return transfers.view(transfers.get(session, transfer_id))


@router.post("/{transfer_id}/receive", response_model=schemas.TransferOut)
def receive_transfer(
    transfer_id: TransferId, body: schemas.TransferReceive, user: Supervisor, session: SessionDep
) -> schemas.TransferOut:
    return transfers.view(transfers.receive(session, transfer_id, body, actor=user.username))
