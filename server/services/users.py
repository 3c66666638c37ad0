"""Users, their roles and passwords."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import schemas
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
    user = get_by_username(session, username)
    if user is None:
        raise NotFound(f"no user {username}", code="user_not_found")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "timezone" in changes:
        _check_timezone(changes["timezone"])
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
    for name, value in changes.items():
        setattr(user, name, value)
    session.flush()
    return user


def get_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def ensure_user(session: Session, username: str, password: str, role: Role, full_name: str) -> User:
    """Create the user when missing (demo seeding); an existing one is left as it is."""
    return get_by_username(session, username) or create_user(
        session,
        schemas.UserCreate(username=username, password=password, role=role, full_name=full_name),
    )


def list_users(session: Session, *, limit: int, offset: int) -> schemas.Page[schemas.UserOut]:
    rows = session.scalars(select(User).order_by(User.username).limit(limit).offset(offset))
    return schemas.Page(
        items=[schemas.UserOut.model_validate(user) for user in rows],
        total=session.scalar(select(func.count(User.id))) or 0,
        limit=limit,
        offset=offset,
    )
