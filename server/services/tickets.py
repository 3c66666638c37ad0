"""One-use socket tickets: a short-lived stand-in for a bearer token in a WebSocket URL
(browsers cannot set headers on a socket, and URLs end up in logs). A ticket carries the
token's user, version and expiry, so a socket opened with it is revoked and expires with
the token it came from. Tickets are rows, so any server process can redeem one, once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.security import TokenClaims, new_ticket, ticket_digest
from server.tables import SocketTicket, utcnow


@dataclass(frozen=True)
class Ticket:
    ticket: str
    expires_in: int


def issue_ticket(session: Session, claims: TokenClaims, *, ttl: dt.timedelta) -> Ticket:
    """A new ticket for the bearer of `claims`, valid for `ttl` (never past the token)."""
    now = utcnow()
    session.execute(delete(SocketTicket).where(SocketTicket.expires_at < now))
    ticket = new_ticket()
    expires_at = min(now + ttl, claims.expires_at)
    session.add(
        SocketTicket(
            digest=ticket_digest(ticket),
            username=claims.username,
            token_version=claims.version,
            token_expires_at=claims.expires_at,
            expires_at=expires_at,
        )
    )
    session.flush()
    return Ticket(ticket=ticket, expires_in=max(0, int((expires_at - now).total_seconds())))


def redeem_ticket(session: Session, ticket: str) -> SocketTicket | None:
    """The ticket's grant, once: the row is deleted as it is read. None for an unknown,
    used or expired ticket."""
    digest = ticket_digest(ticket)
    row = session.scalar(select(SocketTicket).where(SocketTicket.digest == digest))
    if row is None:
        return None
    deleted = session.execute(delete(SocketTicket).where(SocketTicket.digest == digest)).rowcount  # type: ignore[attr-defined]
    if deleted != 1 or row.expires_at <= utcnow():
        return None
    return row
