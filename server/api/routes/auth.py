import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from server import schemas
from server.deps import ClientAddress, CredentialsDep, DatabaseDep, LoginGuardDep, SettingsDep
from server.problems import Unauthorized, problem_responses
from server.security import issue_token
from server.services import audit, tickets

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=schemas.Token,
    responses=problem_responses(429, 503),
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    settings: SettingsDep,
    guard: LoginGuardDep,
    client: ClientAddress,
) -> schemas.Token:
    """OAuth2 password grant: a bearer token for a username and password. Failed attempts
    are throttled per user and per client (429 with `Retry-After`) and audited."""
    try:
        user = await guard.sign_in(db, form.username, form.password, client or "unknown")
    except Unauthorized:
        await db.write(audit.failed_login, form.username, client)
        raise
    ttl = dt.timedelta(minutes=settings.token_ttl_minutes)
    access = issue_token(
        user.username, user.role, key=settings.signing_key, ttl=ttl, version=user.token_version
    )
    return schemas.Token(access_token=access, expires_in=int(ttl.total_seconds()), role=user.role)


@router.post("/ticket", response_model=schemas.TicketOut)
async def ticket(
    credentials: CredentialsDep, db: DatabaseDep, settings: SettingsDep
) -> schemas.TicketOut:
    """A one-use ticket to open a socket as `?ticket=` (browsers cannot set a header on a
    WebSocket), valid `expires_in` seconds; the socket lives as long as the bearer token."""
    ttl = dt.timedelta(seconds=settings.ticket_ttl_seconds)
    issued = await db.write(tickets.issue_ticket, credentials.claims, ttl=ttl)
    return schemas.TicketOut(ticket=issued.ticket, expires_in=issued.expires_in)
