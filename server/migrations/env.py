"""Alembic environment: migrates the database named by the caller's settings."""

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import Connection

import server.tables  # noqa: F401  (registers every table on Base.metadata)
from server.db import Base, make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_migrations_offline() -> None:
    context.configure(
        url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    assert url is not None
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with _sqlite_foreign_keys_off(connection), context.begin_transaction():
        context.run_migrations()
        _check_foreign_keys(connection)


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by rebuilding it (batch mode) and dropping the old copy, which
    enforced foreign keys refuse while rows of other tables point at it. They are off while
    migrating; the pragma only works outside a transaction, hence on the driver's
    connection before the migration's transaction begins."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.dbapi_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    """With SQLite's foreign keys off, a migration must not leave a dangling reference:
    refuse (and roll back) rather than commit one."""
    if connection.dialect.name != "sqlite":
        return
    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if dangling:
        raise RuntimeError(f"the migration left dangling foreign keys: {dangling[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
