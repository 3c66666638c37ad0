"""Passwords (argon2) and bearer tokens (signed JWT) for users of every role."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache

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
    """What a valid token says: who, in which role, at which of the user's token versions
    (a token is revoked when the user's version has moved on), and until when."""

    username: str
    role: Role
    version: int
    expires_at: dt.datetime


def issue_token(username: str, role: Role, *, key: str, ttl: dt.timedelta, version: int = 0) -> str:
    now = dt.datetime.now(dt.UTC)
    payload = {"sub": username, "role": str(role), "ver": version, "iat": now, "exp": now + ttl}
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def read_token(token: str, *, key: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token; None for anything else. A token from before
    token versions (no `ver`) is at version 0.

    A request reads its token up to three times (the access log, `Idempotency-Key`, the
    route) and a client sends the same token for hours: the signature of a token is checked
    once and its claims kept (a bounded LRU); only the expiry is compared on every read."""
    try:
        claims = _verified_claims(token, key)
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None  # not kept: only valid tokens take room in the cache
    return claims if claims.expires_at > dt.datetime.now(dt.UTC) else None


@lru_cache(maxsize=4096)
def _verified_claims(token: str, key: str) -> TokenClaims:
    payload = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    return TokenClaims(
        username=str(payload["sub"]),
        role=Role(payload["role"]),
        version=int(payload.get("ver", 0)),
        expires_at=dt.datetime.fromtimestamp(int(payload["exp"]), dt.UTC),
    )


def bearer_claims(authorization: str, *, key: str) -> TokenClaims | None:
    """The claims of a valid `Authorization: Bearer …` header value, else None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return read_token(token.strip(), key=key)


def bearer_username(authorization: str, *, key: str) -> str | None:
    """The user named by a valid `Authorization: Bearer …` header value, else None."""
    claims = bearer_claims(authorization, key=key)
    return claims.username if claims else None


def new_ticket() -> str:
    """A one-use socket ticket: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def ticket_digest(ticket: str) -> str:
    """What is stored of a ticket: a ticket is random, so a plain SHA-256 is enough."""
    return hashlib.sha256(ticket.encode()).hexdigest()
