"""`serve --demo` gives pickers work: orders allocated and released in every warehouse."""

from __future__ import annotations

from sqlalchemy import func, select

from server.db import make_engine, make_session_factory, transaction
from server.demo import seed
from server.services import ledger, picking, serials
from server.tables import Assignment, AssignmentStatus, Order, PickLine, Sku, Warehouse


def test_demo_seeds_orders_and_a_wave_per_warehouse(sqlite_url: str) -> None:
    sessions = make_session_factory(make_engine(sqlite_url))
    with transaction(sessions) as session:
        assert seed(session, password="demo-password").seeded
    with transaction(sessions) as session:
        countries = set(session.scalars(select(Order.country)))
        assert {"CN", "US", "DE"} <= countries and countries - {"CN", "US", "DE"}
        ready = dict(
            session.execute(
                select(Warehouse.code, func.count(Assignment.id))
                .join(Assignment, Assignment.warehouse_id == Warehouse.id)
                .where(Assignment.status == AssignmentStatus.ready)
                .group_by(Warehouse.code)
            ).all()
        )
        assert set(ready) == {"SZX", "LAX", "FRA"}
        serialised_lines = session.scalar(
            select(func.count(PickLine.id)).join(Sku).where(Sku.serialized.is_(True))
        )
        assert serialised_lines  # pickers give their serials by voice
    with transaction(sessions) as session:
        assignment = picking.sign_on(session, "picker1", "FRA")
        assert assignment is not None
        line = picking.next_open_line(session, assignment.id)
        assert line is not None
        here = serials.at_location(session, line.sku_id, line.location_id, line.lot)
        result = picking.confirm_pick(
            session,
            line.id,
            line.quantity,
            "picker1",
            idempotency_token="demo-1",
            serials=here[: line.quantity] if line.sku.serialized else (),
        )
        assert not result.replayed
        assert ledger.reconcile(session).consistent
    with transaction(sessions) as session:
        assert not seed(session, password="demo-password").seeded  # once only
