"""Database engine and units of work, on SQLite or PostgreSQL.

Every request does its database work as one unit of work: one transaction, run start to
finish in a single worker thread (`Database.read` / `Database.write`). Nothing holds a lock
while waiting for another thread, so a burst of requests larger than the thread pool
cannot starve the transaction that holds the lock. The floor's short, frequent writes (a
move, a pick) run on the event loop instead (`Database.write_brief`), on PostgreSQL.

SQLite is the embedded default. Its write transactions begin `IMMEDIATE` (writers queue on
the busy timeout instead of failing when a read would upgrade to a write), reads begin
deferred, and WAL lets readers go on meanwhile. PostgreSQL relies on conditional updates
and row locks in READ COMMITTED; a deadlock or serialization failure is retried.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar

from anyio.to_thread import run_sync
from sqlalchemy import Engine, MetaData, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.util import greenlet_spawn

from server.problems import Problem

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
ATTEMPTS = 4
IDLE_BEFORE_PING_S = 5.0

P = ParamSpec("P")
T = TypeVar("T")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    if url.startswith("sqlite"):
        _create_private(make_url(url).database)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it has sat idle a while. A busy
    server takes connections from the pool thousands of times a second, and pinging each
    (`pool_pre_ping`) was one round trip of every five in a stock move. A connection idle
    for a while may have been closed by a PostgreSQL restart or a firewall: the pool
    replaces it before any work uses it. One lost while in use fails the statement, and
    the unit of work runs again on a fresh connection if it had not reached its commit
    (`Database`)."""

    @event.listens_for(engine, "checkin")
    def _idle_from_now(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive_after_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("a pooled connection was closed while idle") from exc


def _create_private(database: str | None) -> None:
    """Create a SQLite file readable by its owner only (it holds password hashes and
    stored answers) before SQLite would create it with the umask's mode; its `-wal` and
    `-shm` files take the same mode from it."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        session.connection(execution_options={"write": write})
        yield session


class Unavailable(Problem):
    status, code = 503, "database_busy"


class WriterTurns:
    """Writers of one process take turns in the order they came.

    SQLite has one write lock, and its busy wait is not a queue: a waiting writer sleeps
    and polls, so a request that commits a batch and begins the next at once (a large
    import) wins the lock again and again while an adjustment sleeps. Queued here first,
    every writer waits for the ones before it only."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._changed:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._changed.wait()
        try:
            yield
        finally:
            with self._changed:
                self._serving += 1
                self._changed.notify_all()


class Database:
    """Runs units of work, each in one transaction: in one worker thread, or, for a brief
    write on PostgreSQL, on the event loop (`write_brief`).

    `on_write(session, result)`, when given, runs at the end of every write unit of work,
    in its transaction (the idempotency record of the request commits with its work).
    With `writer_turns` (SQLite), write units of work take turns in arrival order."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        on_write: Callable[[Session, Any], None] | None = None,
        writer_turns: bool = False,
    ) -> None:
        self.sessions = sessions
        self.on_write = on_write
        self.turns = WriterTurns() if writer_turns else None
        self._loop_engine: AsyncEngine | None = None
        self._loop_sessions: sessionmaker[Session] | None = None

    async def start(self) -> None:
        """Open the event loop's pool, on PostgreSQL (`write_brief`): the same database and
        driver (psycopg), its asyncio connections. They belong to the loop that opens them,
        so the app opens the pool when it starts and closes it when it stops."""
        engine: Engine = self.sessions.kw["bind"]
        if engine.dialect.name != "postgresql" or self._loop_sessions is not None:
            return
        size = engine.pool.size()  # type: ignore[attr-defined]
        # no overflow: a write waits for a connection without holding a thread
        loop_engine = create_async_engine(engine.url, pool_size=size, max_overflow=0)
        _ping_when_idle(loop_engine.sync_engine)
        self._loop_engine = loop_engine
        self._loop_sessions = sessionmaker(  # sessions of the same class: the same
            loop_engine.sync_engine,  # listeners (events published on commit), the same
            class_=self.sessions.class_,  # info (caches)
            expire_on_commit=False,
            info=self.sessions.kw.get("info"),
        )

    async def stop(self) -> None:
        if self._loop_engine is not None:
            engine, self._loop_engine, self._loop_sessions = self._loop_engine, None, None
            await engine.dispose()

    @contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """A write transaction outside a unit of work (the idempotency records), in its
        turn among this process's writers."""
        with self.turns.turn() if self.turns else nullcontext(), transaction(self.sessions) as s:
            yield s

    async def read(
        self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await run_sync(partial(self.run, work, *args, write=False, **kwargs))

    async def write(
        self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await run_sync(partial(self.run, work, *args, write=True, **kwargs))

    async def write_brief(
        self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A write of a few statements and little Python (a move, a pick confirmation),
        as `write` does it, but on PostgreSQL in the event loop's own thread over the
        driver's asyncio connection. Handing a unit of work to a thread and back costs more
        CPU than such a write's statements (bench/ledger.py: a sixth of the server's CPU
        for a move). The whole transaction, retries included, runs in one greenlet (the
        one SQLAlchemy's asyncio extension runs synchronous code in) with a plain
        `Session`: an `AsyncSession` enters a greenlet for its begin, its work, its commit
        and its close, and an empty transaction cost 0.38-0.41 ms of CPU that way against
        0.33-0.34 ms. Long or blocking work (imports, reports, password hashing) stays
        with `write`, where it cannot hold up the sockets."""
        sessions = self._loop_sessions
        if sessions is None:  # SQLite, or the app is not running
            return await self.write(work, *args, **kwargs)
        unit = self._recorded(lambda session: work(session, *args, **kwargs))
        return await greenlet_spawn(self._attempt, unit, write=True, sessions=sessions)

    async def write_step(
        self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A write that is one step of a longer request (a batch of an import): committed
        on its own, without `on_write`; the request's last `write` records its outcome."""

        def step(session: Session) -> T:
            return work(session, *args, **kwargs)

        return await run_sync(partial(self._run, step, write=True, record=False))

    def run(self, work: Callable[..., T], *args: Any, write: bool = True, **kwargs: Any) -> T:
        """Run `work(session, ...)` in a transaction, retrying transient conflicts."""
        return self._run(lambda session: work(session, *args, **kwargs), write=write)

    def _run(self, work: Callable[[Session], T], *, write: bool, record: bool = True) -> T:
        if write and record:
            work = self._recorded(work)
        if write and self.turns is not None:
            with self.turns.turn():
                return self._attempt(work, write=write)
        return self._attempt(work, write=write)

    def _recorded(self, work: Callable[[Session], T]) -> Callable[[Session], T]:
        """`work`, then `on_write` with its result in the same transaction."""
        on_write = self.on_write
        if on_write is None:
            return work

        def recorded(session: Session) -> T:
            result = work(session)
            on_write(session, result)
            return result

        return recorded

    def _attempt(
        self,
        work: Callable[[Session], T],
        *,
        write: bool,
        sessions: sessionmaker[Session] | None = None,
    ) -> T:
        for attempt in range(1, ATTEMPTS + 1):
            committing = False
            try:
                with transaction(sessions or self.sessions, write=write) as session:
                    result = work(session)
                    committing = True
                return result
            except DBAPIError as exc:
                _retry_or_raise(exc, committing=committing, last=attempt == ATTEMPTS)
        raise AssertionError("unreachable")


def _retry_or_raise(exc: DBAPIError, *, committing: bool, last: bool) -> None:
    """Return when the unit of work should run again after `exc`, else raise.

    A connection lost before the commit took its transaction with it: the work is done
    again, once, on a fresh one. Lost during the commit, it may have been applied, so it is
    never repeated. A deadlock or a serialization failure rolled everything back."""
    lost = exc.connection_invalidated and not committing
    retryable = getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    if (lost or retryable) and not last:
        log.info("retrying a transaction after %s", exc.orig.__class__.__name__)
        return
    if isinstance(exc, OperationalError) and "locked" in str(exc.orig):
        raise Unavailable("the database is busy; try again") from exc
    raise exc
