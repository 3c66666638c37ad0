"""`GET /ws/headset`: authenticate the headset (bearer token in the `Authorization` header
or `?token=`), then hand the connection to a `HeadsetSession`."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from server.db import Database
from server.headset.protocol import UNAUTHORIZED
from server.headset.session import HeadsetSession
from server.headset.work import DatabasePickWork
from server.security import bearer_username
from server.services import users

router = APIRouter()


@router.websocket("/ws/headset")
async def headset(websocket: WebSocket) -> None:
    state = websocket.app.state
    db: Database = state.db
    authorization = websocket.headers.get("authorization", "")
    if not authorization and websocket.query_params.get("token"):
        authorization = f"Bearer {websocket.query_params['token']}"
    username = bearer_username(authorization, key=state.settings.signing_key)
    user = await db.read(users.get_by_username, username) if username else None
    await websocket.accept()
    if user is None or not user.active:
        await websocket.close(UNAUTHORIZED, "a valid bearer token is required")
        return
    session = HeadsetSession(
        websocket,
        operator=user.username,
        speech=state.speech,
        open_work=lambda operator: DatabasePickWork(db, operator),
        snapshots=state.headset_snapshots,
    )
    await session.run()
