"""Warehouse membership: which warehouses a user works in, and the `Scope` every route and
socket checks before acting on a warehouse's stock, work or exceptions.

An admin works everywhere. Everyone else works only in the warehouses they are a member
of: acting in another is refused (403 `warehouse_forbidden`), and lists show only theirs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.orm import Session

from server.problems import Forbidden, NotFound
from server.services import catalog
from server.tables import Assignment, AssignmentStatus, Role, User, WarehouseMember


@dataclass(frozen=True)
class Scope:
    """The warehouses a user may act in: all of them (`ids` is None) or their own."""

    ids: frozenset[int] | None
    codes: frozenset[str] = frozenset()

    @classmethod
    def everywhere(cls) -> Scope:
        return cls(ids=None)

    @classmethod
    def of(cls, user: User) -> Scope:
        if user.role == Role.admin:
            return cls.everywhere()
        return cls(
            ids=frozenset(w.id for w in user.warehouses),
            codes=frozenset(w.code for w in user.warehouses),
        )

    def covers(self, warehouse_id: int) -> bool:
        return self.ids is None or warehouse_id in self.ids

    def require(self, code: str | None) -> None:
        """Refuse a warehouse named by its code unless the user works there (None: no
        warehouse named, nothing to check)."""
        if code is not None and self.ids is not None and code not in self.codes:
            raise _outside(code)

    def require_id(self, warehouse_id: int, code: str | None = None) -> None:
        if not self.covers(warehouse_id):
            raise _outside(code or f"#{warehouse_id}")

    def within(self, code: str | None) -> Collection[int] | None:
        """For a list filtered by an optional warehouse code: refuse a warehouse the user
        does not work in, and give the ids to restrict the list to (None: no limit)."""
        self.require(code)
        return self.ids


def _outside(code: str) -> Forbidden:
    return Forbidden(f"you do not work in warehouse {code}", code="warehouse_forbidden")


def warehouse_ids(session: Session, username: str) -> frozenset[int] | None:
    """The ids of the warehouses `username` works in; None for an admin (every one)."""
    user = session.scalar(select(User).where(User.username == username))
    return Scope.of(user).ids if user is not None else frozenset()


# An assignment in progress of the picker in a warehouse they are no member of.
_ASSIGNED_OUTSIDE = select(
    exists().where(
        Assignment.picker == bindparam("username"),
        Assignment.status == AssignmentStatus.in_progress,
        ~exists().where(
            WarehouseMember.user_id == bindparam("user"),
            WarehouseMember.warehouse_id == Assignment.warehouse_id,
        ),
    )
)


def assigned_outside(session: Session, user_id: int, username: str, role: Role) -> bool:
    """Whether the user holds work in progress in a warehouse they no longer work in (taken
    off it mid-assignment), in one read; never for an admin."""
    if role == Role.admin:
        return False
    return bool(session.scalar(_ASSIGNED_OUTSIDE, {"username": username, "user": user_id}))


def set_warehouses(session: Session, user: User, codes: Iterable[str]) -> User:
    """Make `user` a member of exactly these warehouses (404 for an unknown code)."""
    wanted = [catalog.get_warehouse(session, code) for code in dict.fromkeys(codes)]
    session.execute(delete(WarehouseMember).where(WarehouseMember.user_id == user.id))
    session.add_all(WarehouseMember(user_id=user.id, warehouse_id=w.id) for w in wanted)
    session.flush()
    session.refresh(user, ["warehouses"])
    return user


def set_user_warehouses(session: Session, username: str, codes: Iterable[str]) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}", code="user_not_found")
    return set_warehouses(session, user, codes)
