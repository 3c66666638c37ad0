import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from server import schemas
from server.deps import ClientAddress, DatabaseDep, SettingsDep
from server.problems import Unauthorized
from server.security import issue_token
from server.services import audit, users

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
    access = issue_token(user.username, user.role, key=settings.signing_key, ttl=ttl)
    return schemas.Token(access_token=access, expires_in=int(ttl.total_seconds()), role=user.role)
