from fastapi import APIRouter
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import RowId
from server.deps import DatabaseDep, Overseer, Supervisor, WarehouseScope
from server.problems import Forbidden
from server.services import transfers

router = APIRouter(prefix="/transfers", tags=["inventory"])


@router.post("", response_model=schemas.TransferOut, status_code=201)
async def ship_transfer(
    body: schemas.TransferCreate, user: Supervisor, scope: WarehouseScope, db: DatabaseDep
) -> schemas.TransferOut:
    """Ship stock to another warehouse: it sits in the sender's IN-TRANSIT until received.
    The sender ships: the caller works in `from_warehouse` (the destination may be any)."""
    scope.require(body.from_warehouse)

    def work(session: Session) -> schemas.TransferOut:
        return views.transfer_view(transfers.ship(session, body, actor=user.username))

    return await db.write(work)


@router.get("/{transfer_id}", response_model=schemas.TransferOut)
async def get_transfer(
    transfer_id: RowId, _: Overseer, scope: WarehouseScope, db: DatabaseDep
) -> schemas.TransferOut:
    """A transfer, for those who work at either end of it."""

    def work(session: Session) -> schemas.TransferOut:
        transfer = transfers.get(session, transfer_id)
        ends = (transfer.from_warehouse_id, transfer.to_warehouse_id)
        if not any(scope.covers(end) for end in ends):
            raise Forbidden(
                f"transfer {transfer_id} is between warehouses you do not work in",
                code="warehouse_forbidden",
            )
        return views.transfer_view(transfer)

    return await db.read(work)


@router.post("/{transfer_id}/receive", response_model=schemas.TransferOut)
async def receive_transfer(
    transfer_id: RowId,
    body: schemas.TransferReceive,
    user: Supervisor,
    scope: WarehouseScope,
    db: DatabaseDep,
) -> schemas.TransferOut:
    """Receive every line; what did not arrive is recorded as a discrepancy. The
    destination receives: the caller works in `to_warehouse`."""

    def work(session: Session) -> schemas.TransferOut:
        transfer = transfers.get(session, transfer_id)
        scope.require_id(transfer.to_warehouse_id, transfer.to_warehouse.code)
        received = transfers.receive(session, transfer_id, body, actor=user.username)
        return views.transfer_view(received)

    return await db.write(work)
