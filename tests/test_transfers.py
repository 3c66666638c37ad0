"""A transfer shipped in one transaction is received in another (statuses load as str)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from server import schemas
from server.db import transaction
from server.services import transfers
from server.tables import TransferStatus
from tests import factories as f
from tests.factories import FRANKFURT, LOS_ANGELES


def test_a_transfer_is_received_after_it_was_shipped(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=LOS_ANGELES)
        f.warehouse(session, "FRA", country="DE", at=FRANKFURT)
        f.sku(session, "CASE")
        f.stock(session, "LAX", "A-01-01", "CASE", 5)
        shipped = transfers.ship(
            session,
            schemas.TransferCreate(
                from_warehouse="LAX",
                to_warehouse="FRA",
                lines=[schemas.TransferLineIn(sku="CASE", from_location="A-01-01", quantity=2)],
            ),
            actor="sup",
        )
    with transaction(sessions) as session:
        received = transfers.receive(
            session,
            shipped.id,
            schemas.TransferReceive(
                lines=[schemas.TransferReceiptLine(line=1, to_location="A-01-02", quantity=2)]
            ),
            actor="sup",
        )
        assert received.status == TransferStatus.received
