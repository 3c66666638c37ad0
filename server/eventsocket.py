"""`GET /ws/events` (Events v1): the floor's events pushed to supervisors, managers and
admins, each only for the warehouses they work in (admins: all).

The socket is authenticated like the headset (a one-use `?ticket=`, the `Authorization`
header, or the older `?token=`) and held in the socket registry: re-checked while it lasts
(4401 once its user may no longer be here), closed with 1001 at shutdown. A picker is
refused (an `error` frame, then 4403). The user's memberships are read again every
`WAVEPICK_SESSION_CHECK_SECONDS`; a change is applied and announced with a new
`subscribed` frame.

Frames go out through the subscription's bounded queue (`WAVEPICK_EVENTS_QUEUE` frames): a
client that does not read them fast enough is closed with 4408 `events_overflow` instead
of holding frames for it, and reconnects to load the state afresh. The socket takes no
messages: a text frame is answered with an `error` frame and otherwise ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from server.db import Database
from server.deps import socket_user
from server.events import EventBus, Overflowed, Subscription
from server.services import users
from server.services.membership import Scope
from server.sockets import FORBIDDEN, UNAUTHORIZED, Ending, Grant, SocketRegistry
from server.tables import Role, User

log = logging.getLogger(__name__)
router = APIRouter()

PROTOCOL_VERSION = 1
MAY_WATCH = frozenset({Role.supervisor, Role.manager, Role.admin})
TOO_SLOW = 4408  # the client fell WAVEPICK_EVENTS_QUEUE frames behind
CLOSE_WAIT_S = 10.0  # how long a close may wait behind frames the client has not read


@router.websocket("/ws/events")
async def events(websocket: WebSocket) -> None:
    state = websocket.app.state
    registry: SocketRegistry = state.sockets
    signed_in = await socket_user(websocket)
    await websocket.accept()
    if signed_in is None:
        await websocket.close(UNAUTHORIZED, "a valid ticket or bearer token is required")
        return
    user, grant = signed_in
    if user.role not in MAY_WATCH:
        await websocket.send_json(_error("forbidden", f"role {user.role} may not watch events"))
        await websocket.close(FORBIDDEN, "forbidden")
        return
    watcher = EventSocket(
        websocket,
        bus=state.events,
        db=state.db,
        grant=grant,
        warehouses=_warehouses(user),
        limit=state.settings.events_queue,
        refresh_s=state.settings.session_check_seconds,
    )
    async with registry.hold("events", grant, watcher):
        await watcher.run()


def _warehouses(user: User) -> frozenset[str] | None:
    scope = Scope.of(user)
    return None if scope.ids is None else scope.codes


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


class EventSocket:
    """One client watching events: sends what its subscription gets until the client
    leaves, falls behind, or the registry ends it."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        bus: EventBus,
        db: Database,
        grant: Grant,
        warehouses: frozenset[str] | None,
        limit: int,
        refresh_s: float,
    ) -> None:
        self.websocket = websocket
        self.bus = bus
        self.db = db
        self.grant = grant
        self.warehouses = warehouses
        self.limit = limit
        self.refresh_s = refresh_s
        self.ending: Ending | None = None
        self._ended = asyncio.Event()
        self._gone = False  # the client closed or vanished

    async def run(self) -> None:
        with self.bus.subscribe(self.warehouses, limit=self.limit) as subscription:
            subscription.put(self._subscribed())
            parts = [
                asyncio.create_task(self._send(subscription), name="events-send"),
                asyncio.create_task(self._receive(subscription), name="events-receive"),
                asyncio.create_task(self._follow_memberships(subscription), name="events-scope"),
                asyncio.create_task(self._ended.wait(), name="events-ended"),
                asyncio.create_task(subscription.overflowed.wait(), name="events-overflow"),
            ]
            try:
                await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for part in parts:
                    part.cancel()
                outcomes = await asyncio.gather(*parts, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    log.error("events socket of %s failed", self.grant.username, exc_info=outcome)
            overflowed = subscription.overflowed.is_set()
        if self.ending is not None:
            await self._close(self.ending.close_code, self.ending.code, self.ending.message)
        elif overflowed:
            log.info("events of %s dropped: fell %d frames behind", self.grant.username, self.limit)
            await self._close(TOO_SLOW, "events_overflow")
        elif not self._gone:
            await self._close(1000, "")

    async def end(self, ending: Ending) -> None:
        """Called by the registry (revoked, expired, shutdown): `run` says why and closes."""
        self.ending = ending
        self._ended.set()

    async def _send(self, subscription: Subscription) -> None:
        try:
            while True:
                await self.websocket.send_text(await subscription.next())
        except Overflowed:
            return
        except WebSocketDisconnect:
            self._gone = True

    async def _receive(self, subscription: Subscription) -> None:
        """Until the client goes away; what it sends is answered with an `error`."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self._gone = True
                return
            frame = _error("unexpected_frame", "the events socket takes no messages")
            subscription.put(json.dumps(frame))

    async def _follow_memberships(self, subscription: Subscription) -> None:
        """Apply membership changes; a user who is gone is left to the registry."""
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                user = await self.db.read(
                    users.session_user, self.grant.username, self.grant.token_version
                )
            except Exception:
                log.exception("could not re-read the memberships of %s", self.grant.username)
                continue
            if user is None:
                continue
            warehouses = _warehouses(user)
            if warehouses != self.warehouses:
                self.warehouses = subscription.warehouses = warehouses
                subscription.put(self._subscribed())

    def _subscribed(self) -> str:
        codes = None if self.warehouses is None else sorted(self.warehouses)
        frame = {
            "type": "subscribed",
            "protocol": PROTOCOL_VERSION,
            "user": self.grant.username,
            "warehouses": codes,
        }
        return json.dumps(frame)

    async def _close(self, code: int, reason: str, message: str | None = None) -> None:
        """Say why (when there is a message) and close, waiting at most CLOSE_WAIT_S
        behind frames the client has not read; then the connection is let go."""
        # the client may be gone meanwhile (Starlette says so with WebSocketDisconnect, or
        # RuntimeError once the socket is closed): nothing is left to tell it then
        with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError):
            async with asyncio.timeout(CLOSE_WAIT_S):
                if message is not None:
                    await self.websocket.send_json(_error(reason, message))
                await self.websocket.close(code, reason)
