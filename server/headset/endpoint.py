"""`GET /ws/headset`: authenticate the headset (a one-use `?ticket=`, the `Authorization`
header, or the older `?token=`), check that its user may pick, then hand the connection to
a `HeadsetSession`, held in the socket registry: one live session per operator (a new one
takes over), re-checked while it lasts, closed at shutdown. Headsets may move their audio to
WebRTC (`rtc_offer`) unless `WAVEPICK_RTC_HEADSET_AUDIO` is off; ICE gathers host candidates
only, so nothing is asked of a STUN server outside the warehouse. The picker's live status
(headset connected, each answer heard, offline) goes to the floor boards (Events v1)."""

from __future__ import annotations

from aiortc import RTCConfiguration
from fastapi import APIRouter, WebSocket

from server.config import Settings
from server.db import Database
from server.deps import MAY_PICK, socket_user
from server.headset.protocol import FORBIDDEN, UNAUTHORIZED, error
from server.headset.session import HeadsetSession
from server.headset.work import DatabasePickWork
from server.services.floor_events import announce_picker
from server.sockets import SocketRegistry

router = APIRouter()


@router.websocket("/ws/headset")
async def headset(websocket: WebSocket) -> None:
    state = websocket.app.state
    db: Database = state.db
    settings: Settings = state.settings
    registry: SocketRegistry = state.sockets
    signed_in = await socket_user(websocket)
    await websocket.accept()
    if signed_in is None:
        await websocket.close(UNAUTHORIZED, "a valid ticket or bearer token is required")
        return
    user, grant = signed_in
    if user.role not in MAY_PICK:
        await websocket.send_json(error("forbidden", f"role {user.role} may not pick"))
        await websocket.close(FORBIDDEN, "forbidden")
        return
    session = HeadsetSession(
        websocket,
        operator=user.username,
        speech=state.speech,
        open_work=lambda operator: DatabasePickWork(
            db, operator, token_version=grant.token_version
        ),
        snapshots=state.headset_snapshots,
        # no ICE servers: host candidates only (aiortc's default would ask Google's STUN)
        rtc=RTCConfiguration(iceServers=[]) if settings.rtc_headset_audio else None,
        announce=lambda status, **fields: announce_picker(
            db, state.events, user.username, status, **fields
        ),
    )
    async with registry.hold("headset", grant, session, exclusive=True):
        await session.run()
