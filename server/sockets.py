"""Open sockets and the users behind them: every socket is held here while it is open.

- Every socket is re-checked every `interval` seconds, all of them in one call (one read
  for a floor of headsets, not one each), a socket alone at once when `recheck(username)`
  is called (the user admin does, after a change on this process), and when its token
  expires; a user who may no longer be there (disabled, role or password changed, token
  revoked or expired) is ended with 4401. Other server processes notice within `interval`.
- An exclusive socket (the headset: one live session per operator) takes over: an older
  one of the same kind and user is ended with 4409 while the new one goes on.
- `close_all` ends every socket with 1001 at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from rtc.tasks import spawn, stopped

log = logging.getLogger(__name__)

GOING_AWAY = 1001
UNAUTHORIZED = 4401
FORBIDDEN = 4403
SESSION_REPLACED = 4409
SHUTDOWN_WAIT_S = 5.0


@dataclass(frozen=True)
class Grant:
    """Who a socket was opened for: the user, the token version it was opened with, and
    when that token expires."""

    username: str
    token_version: int
    expires_at: dt.datetime


@dataclass(frozen=True)
class Ending:
    """Why a socket is ended: its close code, and the `error` frame's code and message."""

    close_code: int
    code: str
    message: str


REVOKED = Ending(UNAUTHORIZED, "session_revoked", "this user may no longer work here")
EXPIRED = Ending(UNAUTHORIZED, "token_expired", "the sign-in expired; sign in again")
REPLACED = Ending(
    SESSION_REPLACED, "session_replaced", "this operator signed in on another headset"
)
SHUTDOWN = Ending(GOING_AWAY, "server_shutdown", "the server is shutting down; reconnect")


class Endable(Protocol):
    async def end(self, ending: Ending) -> None:
        """Tell the client why, close the socket, and stop serving it."""
        ...


@dataclass(eq=False)
class _Open:
    kind: str
    grant: Grant
    socket: Endable
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ended: Ending | None = None


class SocketRegistry:
    def __init__(
        self,
        still_allowed: Callable[[Collection[Grant]], Awaitable[Collection[Grant]]],
        *,
        interval: float,
    ) -> None:
        """`still_allowed(grants)`: those of `grants` whose users may still be here."""
        self.still_allowed = still_allowed
        self.interval = interval
        self._open: set[_Open] = set()
        self._exclusive: dict[tuple[str, str], _Open] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def count(self, kind: str, username: str | None = None) -> int:
        return sum(1 for o in self._open if o.kind == kind and username in (None, o.grant.username))

    @contextlib.asynccontextmanager
    async def hold(
        self, kind: str, grant: Grant, socket: Endable, *, exclusive: bool = False
    ) -> AsyncIterator[None]:
        """Keep `socket` registered and watched while the body serves it."""
        key = (kind, grant.username)
        entry = _Open(kind, grant, socket)
        older = self._exclusive.get(key) if exclusive else None
        self._open.add(entry)
        if exclusive:
            self._exclusive[key] = entry
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = spawn(self._sweep(), "socket re-checks")
        watcher = asyncio.create_task(self._watch(entry), name=f"watch-{kind}-{grant.username}")
        try:
            if older is not None:
                # The older one is told and closed meanwhile: a headset that walked out of
                # Wi-Fi takes a while to close, and the new one must not wait for it.
                log.info("%s of %s taken over by a new connection", kind, grant.username)
                spawn(self._end(older, REPLACED), f"end {kind} of {grant.username}")
                await asyncio.sleep(0)  # the older socket stops taking work before we go on
            yield
        finally:
            try:
                await stopped(watcher)
            finally:
                self._open.discard(entry)
                if self._exclusive.get(key) is entry:
                    del self._exclusive[key]
                entry.done.set()

    def recheck(self, username: str) -> None:
        """Re-check the user's sockets now (after a change to the user)."""
        for entry in self._open:
            if entry.grant.username == username:
                entry.wake.set()

    async def close_all(self) -> None:
        """End every socket (server shutdown) and wait, a while, for them to finish."""
        if self._sweeper is not None:
            await stopped(self._sweeper)
        entries = list(self._open)
        await asyncio.gather(*(self._end(entry, SHUTDOWN) for entry in entries))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_WAIT_S):
                await asyncio.gather(*(entry.done.wait() for entry in entries))

    async def _watch(self, entry: _Open) -> None:
        """End the socket when its token expires, or at once when its user is re-checked
        (`recheck`) and may no longer be here."""
        while entry.ended is None:
            left = (entry.grant.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
            if left <= 0:
                await self._end(entry, EXPIRED)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.wake.wait(), left)
            if entry.wake.is_set():
                entry.wake.clear()
                await self._check([entry])

    async def _sweep(self) -> None:
        """Every `interval`, re-check every open socket at once, while any is open."""
        while self._open:
            await asyncio.sleep(self.interval)
            await self._check([entry for entry in self._open if entry.ended is None])

    async def _check(self, entries: list[_Open]) -> None:
        if not entries:
            return
        try:
            allowed = await self.still_allowed({entry.grant for entry in entries})
        except Exception:
            log.exception("could not re-check %d sockets; will try again", len(entries))
            return
        await asyncio.gather(
            *(self._end(entry, REVOKED) for entry in entries if entry.grant not in allowed)
        )

    async def _end(self, entry: _Open, ending: Ending) -> None:
        if entry.ended is not None:
            return
        entry.ended = ending
        log.info("%s of %s ended: %s", entry.kind, entry.grant.username, ending.code)
        try:
            await entry.socket.end(ending)
        except Exception:
            log.exception("ending the %s of %s failed", entry.kind, entry.grant.username)
