import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from server import schemas
from server.deps import DatabaseDep, LoginGuardDep, SettingsDep
from server.problems import problem_responses
from server.security import issue_token

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
    request: Request,
) -> schemas.Token:
    """OAuth2 password grant: a bearer token for a username and password. Failed attempts
    are throttled per user and per client (429 with `Retry-After`)."""
    client = request.client.host if request.client else "unknown"
    user = await guard.sign_in(db, form.username, form.password, client)
    ttl = dt.timedelta(minutes=settings.token_ttl_minutes)
    access = issue_token(user.username, user.role, key=settings.signing_key, ttl=ttl)
    return schemas.Token(access_token=access, expires_in=int(ttl.total_seconds()), role=user.role)
