"""Users, their roles and passwords."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from server import schemas
from server.masterdata import MasterData
from server.problems import Conflict, Invalid, NotFound
from server.security import hash_password
from server.tables import Role, User


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(f"unknown IANA time zone {name!r}", code="invalid_timezone") from exc


def create_user(session: Session, body: schemas.UserCreate) -> User:
    if get_by_username(session, body.username) is not None:
        raise Conflict(f"user {body.username} already exists", code="duplicate")
    _check_timezone(body.timezone)
    user = User(
        username=body.username,
        password_hash=hash_password(body.password),
        role=body.role,
        full_name=body.full_name,
        locale=body.locale,
        timezone=body.timezone,
        active=True,
    )
    session.add(user)
    session.flush()
    return user


def update_user(session: Session, username: str, body: schemas.UserUpdate) -> User:
    """Change a user. A new password, role or status revokes the user's tokens (and so
    ends their sockets); the last active admin is never demoted or disabled."""
    user = get_by_username(session, username)
    if user is None:
        raise NotFound(f"no user {username}", code="user_not_found")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "timezone" in changes:
        _check_timezone(changes["timezone"])
    revoke = "password" in changes
    revoke |= changes.get("role", user.role) != user.role
    revoke |= changes.get("active", user.active) != user.active
    demoted = changes.get("role", Role.admin) != Role.admin or not changes.get("active", True)
    if user.role == Role.admin and user.active and demoted:
        _keep_an_admin(session, user)
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
    for name, value in changes.items():
        setattr(user, name, value)
    if revoke:
        user.token_version += 1
    session.flush()
    return user


def _keep_an_admin(session: Session, leaving: User) -> None:
    """Refuse to take away the last active admin. The active admins are locked first, so
    two admins demoting each other at once cannot both succeed."""
    admins = session.scalars(
        select(User.id).where(User.role == Role.admin, User.active.is_(True)).with_for_update()
    ).all()
    if not set(admins) - {leaving.id}:
        raise Conflict(
            f"{leaving.username} is the last active admin; make another admin first",
            code="last_admin",
        )


def session_user(
    session: Session, username: str, token_version: int, *, cache: MasterData | None = None
) -> User | None:
    """The user a token or socket of `token_version` stands for, while it still may: active
    and not revoked since. None otherwise. `cache` keeps the user read (with their
    warehouses) for the next requests."""
    if cache is not None:
        return allowed(cache.load_user(session, username), token_version)
    return allowed(session.scalar(select(User).where(User.username == username)), token_version)


def still_allowed(session: Session, grants: Collection[tuple[str, int]]) -> set[tuple[str, int]]:
    """Those (username, token version) of `grants` whose users may still act with tokens
    of that version (`Standing.allows`), in one read of their standing per 500 users."""
    names = sorted({username for username, _ in grants})
    found: dict[str, Standing] = {}
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        rows = session.execute(select(User.username, *STANDING).where(User.username.in_(chunk)))
        found.update((row.username, Standing.of(row)) for row in rows)
    return {
        (username, version)
        for username, version in grants
        if username in found and found[username].allows(version)
    }


@dataclass(frozen=True)
class Standing:
    """What a session's writes check of their user: who, in which role, and whether a
    token of a given version may still act as them."""

    id: int
    role: Role
    active: bool
    token_version: int

    def allows(self, token_version: int) -> bool:
        return self.active and self.token_version == token_version

    @classmethod
    def of(cls, user: User | Row[*tuple[Any, ...]]) -> Standing:
        """The standing of a `User`, or of a row of `STANDING`'s columns."""
        return cls(user.id, user.role, user.active, user.token_version)


STANDING = (User.id, User.role, User.active, User.token_version)  # what `Standing` reads
_LOCK_STANDING = select(*STANDING).where(User.username == bindparam("username")).with_for_update()


def lock_standing(session: Session, username: str) -> Standing | None:
    """The user's `Standing`, their row held to the end of the transaction, so that work
    done in it is ordered before or after any change to the user. It reads only that (no
    user object, no warehouses): a headset asks it before each of its writes."""
    row = session.execute(_LOCK_STANDING, {"username": username}).one_or_none()
    return Standing.of(row) if row else None


def allowed(user: User | None, token_version: int) -> User | None:
    """`user` when a token of `token_version` may still act as them, else None."""
    return user if user is not None and Standing.of(user).allows(token_version) else None


def get_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def ensure_user(session: Session, username: str, password: str, role: Role, full_name: str) -> User:
    """Create the user when missing (demo seeding); an existing one is left as it is."""
    return get_by_username(session, username) or create_user(
        session,
        schemas.UserCreate(username=username, password=password, role=role, full_name=full_name),
    )


def list_users(session: Session, *, limit: int, offset: int) -> tuple[list[User], int]:
    """A page of users by name, and how many in all."""
    rows = session.scalars(select(User).order_by(User.username).limit(limit).offset(offset))
    return list(rows), session.scalar(select(func.count(User.id))) or 0
