"""`wavepick simulate pickers` against a real server: simulated pickers work through their
assignments, serialised SKUs included (they read the serials at the slot as a picker
reads the labels), and stock and ledger still agree afterwards."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db import transaction
from server.simulate import simulate
from server.tables import Movement, MovementKind
from tests.conftest import ServerProcess
from tests.factories import PASSWORD, pick_floor

PHONES = tuple(f"PH-{n}000-00{n}{n}" for n in range(1, 7))
PLAN = (("A-01-01", "57", "PHONE", 2), ("A-01-02", "31", "CASE", 1))


@pytest.fixture
def floor(database_url: str) -> None:
    pick_floor(database_url, PLAN, serials={"PHONE": PHONES})


@pytest.mark.usefixtures("floor")
def test_simulated_pickers_pick_serialised_skus(
    server_process: ServerProcess, sessions: sessionmaker[Session]
) -> None:
    result = asyncio.run(
        simulate(
            server_process.url,
            count=2,
            duration=60,
            audio=False,
            admin=("admin", PASSWORD),
            progress=lambda _text: None,
        )
    )

    assert result["errors"] == 0, result["error_samples"]
    assert result["stock_consistent"] is True
    with transaction(sessions) as session:
        phones = session.scalars(
            select(Movement).where(
                Movement.kind == MovementKind.pick, Movement.sku.has(code="PHONE")
            )
        ).all()
        picked = [serial for movement in phones for serial in movement.serials]
    # the floor's own assignment (2 phones, a case) and a phone and a case per simulated order
    assert len(picked) == len(set(picked)) == 4 and set(picked) <= set(PHONES)
    assert result["picks"] == 6
