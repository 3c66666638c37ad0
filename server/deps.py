"""FastAPI dependencies: settings, the database, and the signed-in user with its role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from server.config import Settings
from server.db import Database
from server.login import LoginGuard
from server.problems import Forbidden, Unauthorized
from server.security import read_token
from server.services import users
from server.tables import Role, User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def get_login_guard(request: Request) -> LoginGuard:
    guard: LoginGuard = request.app.state.login_guard
    return guard


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
LoginGuardDep = Annotated[LoginGuard, Depends(get_login_guard)]


async def get_current_user(
    db: DatabaseDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2)]
) -> User:
    claims = read_token(token, key=settings.signing_key) if token else None
    if claims is None:
        raise Unauthorized("a valid bearer token is required")
    user = await db.read(users.get_by_username, claims.username)
    if user is None or not user.active:
        raise Unauthorized("this user is unknown or disabled")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets only the given roles through (admins always pass)."""
    allowed = {*roles, Role.admin}

    async def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Forbidden(f"role {user.role} may not do this", code="forbidden")
        return user

    return check


ANYONE = (Role.picker, Role.supervisor, Role.manager)
AnyUser = Annotated[User, Depends(require(*ANYONE))]
Supervisor = Annotated[User, Depends(require(Role.supervisor))]
Overseer = Annotated[User, Depends(require(Role.supervisor, Role.manager))]
FloorWorker = Annotated[User, Depends(require(Role.picker, Role.supervisor))]
Admin = Annotated[User, Depends(require())]
