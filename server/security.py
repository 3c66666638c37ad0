"""Passwords (argon2) and bearer tokens (signed JWT) for users of every role."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.tables import Role

_hasher = PasswordHasher()
ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenClaims:
    username: str
    role: Role


def issue_token(username: str, role: Role, *, key: str, ttl: dt.timedelta) -> str:
    now = dt.datetime.now(dt.UTC)
    payload = {"sub": username, "role": str(role), "iat": now, "exp": now + ttl}
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def read_token(token: str, *, key: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token; None for anything else."""
    try:
        payload = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
        return TokenClaims(username=str(payload["sub"]), role=Role(payload["role"]))
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def bearer_username(authorization: str, *, key: str) -> str | None:
    """The user named by a valid `Authorization: Bearer …` header value, else None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    claims = read_token(token.strip(), key=key)
    return claims.username if claims else None
