"""Migrations on SQLite and PostgreSQL: the models match the migrated schema, and a
database holding orders goes down a revision and up again without losing them."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from server.db import Base, transaction
from server.migrate import alembic_config, upgrade
from server.services import allocation, users
from server.tables import Allocation, OrderLine
from tests import factories as f


def test_the_models_match_the_migrated_schema(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions, write=False) as session:
        context = MigrationContext.configure(session.connection(), opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_short_picks_migrate_down_and_up_with_allocated_orders(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    """0003 rebuilds `order_lines` and `allocations` on SQLite, which rows of other
    tables point at (allocations, pick lines)."""
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
        f.sku(session, "CASE")
        f.stock(session, "LAX", "A-01-01", "CASE", 5)
        f.order(session, "O-1", [("CASE", 3)])
    with transaction(sessions) as session:
        allocation.allocate_order(session, "O-1")

    command.downgrade(alembic_config(database_url), "0002")
    upgrade(database_url)

    with transaction(sessions) as session:
        line = session.scalars(select(OrderLine)).one()
        assert (line.quantity_allocated, line.quantity_short) == (3, 0)
        assert session.scalars(select(Allocation.quantity)).all() == [3]


def test_upgrading_keeps_everyones_access_until_an_admin_narrows_it(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    """0006 makes the users there were (admins aside) members of every warehouse."""
    command.downgrade(alembic_config(database_url), "0003")
    with transaction(sessions) as session:
        for username, role in (("old-picker", "picker"), ("old-admin", "admin")):
            session.execute(
                text(
                    "INSERT INTO users (username, full_name, password_hash, role, active, "
                    "locale, timezone, created_at) VALUES (:u, '', 'x', :r, true, 'en-US', "
                    "'UTC', CURRENT_TIMESTAMP)"
                ),
                {"u": username, "r": role},
            )
        for code in ("LAX", "FRA"):  # as 0003 had them (today's model has more columns)
            session.execute(
                text(
                    "INSERT INTO warehouses (code, name, country, timezone, address, "
                    "created_at) VALUES (:c, :c, 'US', 'UTC', '', CURRENT_TIMESTAMP)"
                ),
                {"c": code},
            )
    upgrade(database_url)
    with transaction(sessions) as session:
        picker = users.get_by_username(session, "old-picker")
        admin = users.get_by_username(session, "old-admin")
        assert picker is not None and admin is not None
        assert [w.code for w in picker.warehouses] == ["FRA", "LAX"]
        assert admin.warehouses == []  # an admin works everywhere without memberships
