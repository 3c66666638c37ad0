"""Master data cached in this process for the write path: who is asking (a user with their
warehouse memberships, read by every request) and what a move, receipt or pick names (a
warehouse, a SKU, a location by its code, and the slot, SKU and staging location a pick
line points to by id).

Invalidation is on write, in this process: any ORM write to the tables these come from
(`users`, `warehouse_members`, `warehouses`, `zones`, `locations`, `skus`), whether a flush
that adds, changes or deletes such a row or an ORM `UPDATE`/`DELETE`/`INSERT` statement on
one, raises a process-wide generation at once and again when its transaction ends. An entry
is served only at the generation it was read at, so a change made in this process is seen
by the very next request, and an entry read while the change was not yet committed is
never served after the commit.

Several server processes do not see each other's writes. There each entry also lives at
most `WAVEPICK_MASTER_CACHE_SECONDS` (a short TTL, 2 s by default; 0 turns the cache off):
a role, membership, status or token revocation made on another process applies within that
time, as a socket's re-check does (`WAVEPICK_SESSION_CHECK_SECONDS`).

Users are cached as detached ORM rows with their warehouses loaded, shared read-only by
the requests that use them; warehouses, SKUs and locations as small frozen snapshots.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from server.tables import Location, LocationKind, Sku, User, Warehouse, WarehouseMember, Zone

T = TypeVar("T")

MASTER_TABLES = (User, WarehouseMember, Warehouse, Zone, Location, Sku)
_INFO_KEY = "wavepick.master_data"
_CHANGED = "wavepick.master_data.changed"


@dataclass(frozen=True)
class WarehouseRef:
    id: int
    code: str


@dataclass(frozen=True)
class SkuRef:
    id: int
    code: str
    lot_controlled: bool
    serialized: bool
    description: str


@dataclass(frozen=True)
class LocationRef:
    id: int
    code: str
    kind: LocationKind
    warehouse: WarehouseRef
    aisle: str
    slot: str
    check_digits: str


_SKU = (Sku.id, Sku.code, Sku.lot_controlled, Sku.serialized, Sku.description)
_LOCATION = (
    Location.id,
    Location.code,
    Location.kind,
    Location.aisle,
    Location.slot,
    Location.check_digits,
)


def _location_ref(row: Any, warehouse: WarehouseRef) -> LocationRef:
    return LocationRef(
        row.id, row.code, LocationKind(row.kind), warehouse, row.aisle, row.slot, row.check_digits
    )


class _Generation:
    """A counter raised by every write of master data in this process."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.value = 0

    def bump(self) -> None:
        with self._lock:  # never backwards, however many threads write at once
            self.value = next(self._counter)


generation = _Generation()
_listening = threading.Lock()
_listeners_installed = False


def _touches_master(objects: Any) -> bool:
    return any(isinstance(obj, MASTER_TABLES) for obj in objects)


def _after_flush(session: Session, _context: Any) -> None:
    if (
        _touches_master(session.new)
        or _touches_master(session.dirty)
        or _touches_master(session.deleted)
    ):
        session.info[_CHANGED] = True
        generation.bump()


def _on_execute(state: ORMExecuteState) -> None:
    if state.is_select:
        return
    if any(mapper.class_ in MASTER_TABLES for mapper in state.all_mappers):
        state.session.info[_CHANGED] = True
        generation.bump()


def _after_transaction(session: Session, *_: Any) -> None:
    if session.info.pop(_CHANGED, False):
        generation.bump()


def _install_listeners() -> None:
    """Watch every session of this process for writes of master data (once)."""
    global _listeners_installed
    with _listening:
        if _listeners_installed:
            return
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _on_execute)
        event.listen(Session, "after_commit", _after_transaction)
        event.listen(Session, "after_soft_rollback", _after_transaction)
        _listeners_installed = True


@dataclass(frozen=True)
class _Entry:
    value: Any
    generation: int
    loaded_at: float


class MasterData:
    """The cache of one application (its sessions carry it in `session.info`)."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[tuple[str, ...], _Entry] = {}

    def _get(self, key: tuple[str, ...]) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.generation != generation.value or time.monotonic() - entry.loaded_at > self.ttl:
            self._entries.pop(key, None)
            return None
        return entry.value

    def _put(self, key: tuple[str, ...], value: Any, read_at: int) -> None:
        """Keep `value`, read at generation `read_at`, unless master data changed since."""
        if self.ttl > 0 and read_at == generation.value:
            if len(self._entries) > 50_000:  # a bound, not a policy: start over
                self._entries.clear()
            self._entries[key] = _Entry(value, read_at, time.monotonic())

    def cached_user(self, username: str) -> User | None:
        """The cached user (detached, warehouses loaded), or None when not cached."""
        user: User | None = self._get(("user", username))
        return user

    def load_user(self, session: Session, username: str) -> User | None:
        """Read a user with their warehouses and keep them; None when there is none."""
        read_at = generation.value
        user = session.scalar(select(User).where(User.username == username))
        if user is not None:
            _ = user.warehouses  # loaded now: the cached row is used after its session
            self._put(("user", username), user, read_at)
        return user

    def _cached(self, key: tuple[str, ...], read: Callable[[], T | None]) -> T | None:
        """The entry at `key`, else what `read()` finds, kept (None is not kept)."""
        found: T | None = self._get(key)
        if found is None:
            read_at = generation.value
            found = read()
            if found is not None:
                self._put(key, found, read_at)
        return found

    def warehouse(self, session: Session, code: str) -> WarehouseRef | None:
        def read() -> WarehouseRef | None:
            row = session.execute(
                select(Warehouse.id, Warehouse.code).where(Warehouse.code == code)
            ).one_or_none()
            return WarehouseRef(id=row.id, code=row.code) if row is not None else None

        return self._cached(("warehouse", code), read)

    def sku(self, session: Session, code: str) -> SkuRef | None:
        def read() -> SkuRef | None:
            row = session.execute(select(*_SKU).where(Sku.code == code)).one_or_none()
            return SkuRef(*row) if row is not None else None

        return self._cached(("sku", code), read)

    def location(self, session: Session, warehouse: WarehouseRef, code: str) -> LocationRef | None:
        def read() -> LocationRef | None:
            row = session.execute(
                select(*_LOCATION).where(
                    Location.warehouse_id == warehouse.id, Location.code == code
                )
            ).one_or_none()
            return _location_ref(row, warehouse) if row is not None else None

        return self._cached(("location", str(warehouse.id), code), read)

    def sku_by_id(self, session: Session, sku_id: int) -> SkuRef:
        """The SKU a row points to (a pick line's), which its foreign key says exists."""

        def read() -> SkuRef:
            return SkuRef(*session.execute(select(*_SKU).where(Sku.id == sku_id)).one())

        found = self._cached(("sku#", str(sku_id)), read)
        assert found is not None
        return found

    def location_by_id(self, session: Session, location_id: int) -> LocationRef:
        """The location a row points to (a pick line's slot, an assignment's staging), with
        its warehouse."""

        def read() -> LocationRef:
            row = session.execute(
                select(*_LOCATION, Warehouse.id.label("warehouse_id"), Warehouse.code.label("wh"))
                .join(Warehouse, Warehouse.id == Location.warehouse_id)
                .where(Location.id == location_id)
            ).one()
            return _location_ref(row, WarehouseRef(id=row.warehouse_id, code=row.wh))

        found = self._cached(("location#", str(location_id)), read)
        assert found is not None
        return found


def attach(sessions: sessionmaker[Session], *, ttl_seconds: float) -> MasterData:
    """Give the sessions of `sessions` one cache (`of(session)` finds it)."""
    _install_listeners()
    cache = MasterData(ttl_seconds)
    sessions.configure(info={_INFO_KEY: cache})
    return cache


def of(session: Session) -> MasterData:
    """The cache of the application `session` belongs to; an uncached one (TTL 0) for
    sessions made elsewhere (the command line, scripts), so they always read the tables."""
    cache: MasterData | None = session.info.get(_INFO_KEY)
    return cache if cache is not None else _UNCACHED


def of_sessions(sessions: sessionmaker[Session]) -> MasterData:
    info = sessions.kw.get("info") or {}
    cache: MasterData | None = info.get(_INFO_KEY)
    return cache if cache is not None else _UNCACHED


_UNCACHED = MasterData(0)
