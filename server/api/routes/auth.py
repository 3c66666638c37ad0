import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from server import schemas
from server.deps import ClientAddress, CredentialsDep, DatabaseDep, SettingsDep
from server.problems import Unauthorized
from server.security import issue_token
from server.services import audit, tickets, users

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=schemas.Token)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> schemas.Token:
    """OAuth2 password grant: a bearer token for a username and password."""
    user = await db.read(users.authenticate, form.username, form.password)
    if user is None:
        await db.write(audit.failed_login, form.username, client)
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    ttl = dt.timedelta(minutes=settings.token_ttl_minutes)
    access = issue_token(
        user.username, user.role, key=settings.signing_key, ttl=ttl, version=user.token_version
    )
    return schemas.Token(access_token=access, expires_in=int(ttl.total_seconds()), role=user.role)


@router.post("/ticket", response_model=schemas.SocketTicket)
async def ticket(
    credentials: CredentialsDep, db: DatabaseDep, settings: SettingsDep
) -> schemas.SocketTicket:
    """A one-use ticket to open a socket as `?ticket=` (browsers cannot set a header on a
    WebSocket), valid `expires_in` seconds; the socket lives as long as the bearer token."""
    ttl = dt.timedelta(seconds=settings.ticket_ttl_seconds)
    issued = await db.write(tickets.issue_ticket, credentials.claims, ttl=ttl)
    return schemas.SocketTicket(ticket=issued.ticket, expires_in=issued.expires_in)
