"""`serve --demo` gives pickers work: orders allocated and released in every warehouse."""

from __future__ import annotations

from sqlalchemy import func, select

from server.db import make_engine, make_session_factory, transaction
from server.demo import seed
from server.services import ledger, membership, picking, serials
from server.tables import Assignment, AssignmentStatus, Order, PickLine, Sku, User, Warehouse


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


def test_demo_users_work_in_sensible_warehouses(sqlite_url: str) -> None:
    """Pickers on one floor each, the supervisor and the manager everywhere; the admin
    everywhere without memberships."""
    sessions = make_session_factory(make_engine(sqlite_url))
    with transaction(sessions) as session:
        seed(session, password="demo-password")
    with transaction(sessions) as session:
        where = {u.username: [w.code for w in u.warehouses] for u in session.scalars(select(User))}
    assert where["supervisor"] == where["manager"] == ["FRA", "LAX", "SZX"]
    assert [len(where[f"picker{n}"]) for n in range(1, 6)] == [1] * 5
    assert {where[f"picker{n}"][0] for n in range(1, 6)} == {"SZX", "LAX", "FRA"}
    assert where["admin"] == []
    with transaction(sessions) as session:
        assignment = picking.sign_on(
            session, "picker1", within=membership.warehouse_ids(session, "picker1")
        )
        assert assignment is not None and assignment.warehouse.code == where["picker1"][0]
