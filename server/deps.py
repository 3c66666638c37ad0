"""FastAPI dependencies: settings, the database, and the signed-in user with its role.

Every dependency is `async def`: none of them blocks, and FastAPI runs a plain `def`
dependency in the thread pool, a thread hop per dependency per request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from fastapi.security import OAuth2PasswordBearer

from rtc.hub import RoomHub
from server import masterdata
from server.config import Settings
from server.db import Database
from server.login import LoginGuard
from server.problems import Forbidden, Unauthorized
from server.security import TokenClaims, bearer_claims, read_token
from server.services import tickets, users
from server.services.membership import Scope
from server.sockets import Grant, SocketRegistry
from server.tables import Role, User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def get_sockets(request: Request) -> SocketRegistry:
    sockets: SocketRegistry = request.app.state.sockets
    return sockets


async def get_live_rooms(request: Request) -> RoomHub:
    rooms: RoomHub = request.app.state.rooms
    return rooms


async def get_login_guard(request: Request) -> LoginGuard:
    guard: LoginGuard = request.app.state.login_guard
    return guard


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SocketsDep = Annotated[SocketRegistry, Depends(get_sockets)]
LoginGuardDep = Annotated[LoginGuard, Depends(get_login_guard)]
LiveRoomsDep = Annotated[RoomHub, Depends(get_live_rooms)]


@dataclass(frozen=True)
class Credentials:
    """The signed-in user and the claims of the token they signed in with."""

    user: User
    claims: TokenClaims


async def get_credentials(
    request: Request, token: Annotated[str | None, Depends(oauth2)]
) -> Credentials:
    """Who signs a request in. It reads the app's state itself, not through the settings
    and database dependencies: FastAPI solves every dependency of a route's tree again for
    each use of it, so every level here is paid several times on every request."""
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    claims = read_token(token, key=settings.signing_key) if token else None
    if claims is None:
        raise Unauthorized("a valid bearer token is required")
    master = masterdata.of_sessions(db.sessions)
    user = users.allowed(master.cached_user(claims.username), claims.version)
    if user is None:  # not cached, or cached as it was before this token: read it
        user = await db.read(users.session_user, claims.username, claims.version, cache=master)
    if user is None:
        raise Unauthorized("this user is unknown or disabled, or the token was revoked")
    return Credentials(user=user, claims=claims)


CredentialsDep = Annotated[Credentials, Depends(get_credentials)]


async def get_current_user(credentials: CredentialsDep) -> User:
    return credentials.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(*roles: Role) -> Callable[[Credentials], Awaitable[User]]:
    """A dependency that lets only the given roles through (admins always pass)."""
    allowed = {*roles, Role.admin}

    async def check(credentials: CredentialsDep) -> User:
        user = credentials.user
        if user.role not in allowed:
            raise Forbidden(f"role {user.role} may not do this", code="forbidden")
        return user

    return check


async def socket_user(websocket: WebSocket) -> tuple[User, Grant] | None:
    """Who opens a socket, and the grant it is held on: a one-use `?ticket=` (browsers),
    the `Authorization: Bearer` header (native clients), or `?token=` (older clients; never
    logged). None when none of them is valid, or the user may no longer sign in."""
    state = websocket.app.state
    db: Database = state.db
    settings: Settings = state.settings
    if ticket := websocket.query_params.get("ticket"):
        redeemed = await db.write(tickets.redeem_ticket, ticket)
        if redeemed is None:
            return None
        grant = Grant(redeemed.username, redeemed.token_version, redeemed.token_expires_at)
        if grant.expires_at <= dt.datetime.now(dt.UTC):
            return None
    else:
        authorization = websocket.headers.get("authorization", "")
        if not authorization and (token := websocket.query_params.get("token")):
            authorization = f"Bearer {token}"
        claims = bearer_claims(authorization, key=settings.signing_key)
        if claims is None:
            return None
        grant = Grant(claims.username, claims.version, claims.expires_at)
    user = await db.read(users.session_user, grant.username, grant.token_version)
    return (user, grant) if user is not None else None


ANYONE = (Role.picker, Role.supervisor, Role.manager)
MAY_PICK = frozenset({Role.picker, Role.supervisor, Role.admin})
AnyUser = Annotated[User, Depends(require(*ANYONE))]
Supervisor = Annotated[User, Depends(require(Role.supervisor))]
Overseer = Annotated[User, Depends(require(Role.supervisor, Role.manager))]
Manager = Annotated[User, Depends(require(Role.manager))]
FloorWorker = Annotated[User, Depends(require(Role.picker, Role.supervisor))]
Admin = Annotated[User, Depends(require())]


async def get_scope(credentials: CredentialsDep) -> Scope:
    """The warehouses the signed-in user may act in (every one for an admin)."""
    return Scope.of(credentials.user)


WarehouseScope = Annotated[Scope, Depends(get_scope)]


async def client_address(request: Request) -> str | None:
    """The client's address as the server sees it (uvicorn takes it from
    `X-Forwarded-For` when the proxy is trusted: `FORWARDED_ALLOW_IPS`)."""
    return request.client.host if request.client else None


ClientAddress = Annotated[str | None, Depends(client_address)]
