"""`GET /ws/headset`: authenticate the headset (a one-use `?ticket=`, the `Authorization`
header, or the older `?token=`), check that its user may pick, then hand the connection to
a `HeadsetSession`, held in the socket registry: one live session per operator (a new one
takes over, on any process: `leases`), re-checked while it lasts, closed at shutdown. The
dialog is kept in the shared snapshot store between sessions. What it hears is reported to
the floor (`FloorReport`). A video room the picker's words open ("call supervisor",
"damaged") is joined for them: the headset is in the call once someone else joins.
Headsets may move their audio to WebRTC (`rtc_offer`) unless `WAVEPICK_RTC_HEADSET_AUDIO`
is off; ICE gathers host candidates only, so nothing is asked of a STUN server outside the
warehouse."""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration
from fastapi import APIRouter, WebSocket

from server.config import Settings
from server.db import Database
from server.deps import MAY_PICK, socket_user
from server.headset.call import call_joiner
from server.headset.floor import FloorReport
from server.headset.leases import LeaseRefused, OperatorLeases
from server.headset.protocol import FORBIDDEN, UNAUTHORIZED, error
from server.headset.session import HeadsetSession
from server.headset.work import DatabasePickWork
from server.sockets import SocketRegistry

router = APIRouter()


@router.websocket("/ws/headset")
async def headset(websocket: WebSocket) -> None:
    state = websocket.app.state
    db: Database = state.db
    settings: Settings = state.settings
    registry: SocketRegistry = state.sockets
    leases: OperatorLeases = state.headset_leases
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
    floor = FloorReport(db, state.events, state.heard_answers, user.username)
    loop = asyncio.get_running_loop()

    def call_opened(room_id: int) -> None:  # on the dialog's worker thread
        loop.call_soon_threadsafe(session.join_call, room_id)

    session = HeadsetSession(
        websocket,
        operator=user.username,
        speech=state.speech,
        open_work=lambda operator: DatabasePickWork(
            db, operator, token_version=grant.token_version, on_room=call_opened
        ),
        snapshots=state.headset_snapshots,
        # no ICE servers: host candidates only (aiortc's default would ask Google's STUN)
        rtc=RTCConfiguration(iceServers=[]) if settings.rtc_headset_audio else None,
        on_answer=floor.answered,
        calls=call_joiner(settings, state.rooms, user, grant),
    )
    try:
        async with (
            leases.hold(user.username, session.end),
            registry.hold("headset", grant, session, exclusive=True),
        ):
            floor.status("connected")
            try:
                await session.run()
            finally:
                if not (session.conversation.signed_off or session.ended):
                    floor.status("offline")  # gone without signing off: the board warns
                await floor.close()
    except LeaseRefused as refused:
        await session.end(refused.ending)
        await floor.close()
