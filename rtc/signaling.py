"""Room signaling, version 1 (DESIGN.md, docs/rooms.md): the frames, and `RoomSession`,
one participant's signaling over any channel that carries text messages.

A session joins its room on `join`, passes descriptions and candidates to its peer, and
leaves on `leave`, when its channel goes away (`disconnected`), or when it is ended from
outside (`end`: revoked, expired, server shutdown). Bad input gets an `error` frame and
changes nothing else: the session and the room go on. Frames to the client go through a
bounded outbox; a client that stops reading is disconnected rather than buffered for.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from typing import Annotated, Any, Literal, Protocol

from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from rtc.peer import NegotiationRefused
from rtc.room import Member, Participant, Room, RoomError
from rtc.tasks import spawn

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024  # an SDP offer for a full room is about 20 KiB
MAX_SDP = 60 * 1024
OUTBOX_FRAMES = 256

# close codes (the socket's; 1000 after a leave, 1001 at server shutdown)
PROTOCOL_ERROR = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
MEDIA_LOST = 4408
ROOM_FULL = 4429
NORMAL = 1000
TRY_AGAIN_LATER = 1013  # the process that hosts the room could not be reached

_REMOVAL_CLOSE_CODES = {"room_closed": NOT_FOUND}


class FrameError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Join(BaseModel):
    type: Literal["join"]
    display_name: str = Field("", max_length=100)


class Offer(BaseModel):
    type: Literal["offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class Answer(BaseModel):
    type: Literal["answer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class CandidateInit(BaseModel):
    """A browser's `RTCIceCandidate.toJSON()`; an empty `candidate` ends the candidates."""

    candidate: str = Field("", max_length=1024)
    sdpMid: str | None = Field(None, max_length=64)
    sdpMLineIndex: int | None = Field(None, ge=0, le=1024)
    usernameFragment: str | None = Field(None, max_length=256)


class Candidate(BaseModel):
    type: Literal["candidate"]
    candidate: CandidateInit | None


class Mute(BaseModel):
    type: Literal["mute"]
    kind: Literal["audio", "video"]
    muted: bool


class Leave(BaseModel):
    type: Literal["leave"]


ClientFrame = Join | Offer | Answer | Candidate | Mute | Leave
_client_frame: TypeAdapter[ClientFrame] = TypeAdapter(
    Annotated[ClientFrame, Field(discriminator="type")]
)
KNOWN_TYPES = frozenset({"join", "offer", "answer", "candidate", "mute", "leave"})


def parse_frame(text: str) -> ClientFrame:
    """A client frame, or FrameError with a stable code."""
    if len(text.encode()) > MAX_FRAME_BYTES:
        raise FrameError("frame_too_large", f"text frames are at most {MAX_FRAME_BYTES} bytes")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FrameError("malformed_json", "a text frame must be a JSON object") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError("malformed_frame", 'a frame is a JSON object with a "type"')
    if data["type"] not in KNOWN_TYPES:
        raise FrameError("unknown_type", f"unknown frame type {data['type'][:40]!r}")
    try:
        return _client_frame.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or data["type"]
        raise FrameError("invalid_frame", f"{where}: {first['msg']}") from exc


def ice_candidate(init: CandidateInit | None) -> RTCIceCandidate | None:
    """The aiortc candidate of a trickled one; None for the end of candidates."""
    if init is None or not init.candidate.strip():
        return None
    text = init.candidate.strip().removeprefix("candidate:")
    try:
        candidate = candidate_from_sdp(text)
    except (AssertionError, ValueError, IndexError) as exc:
        raise FrameError("invalid_candidate", "not an ICE candidate line") from exc
    if init.sdpMid is None and init.sdpMLineIndex is None:
        raise FrameError("invalid_candidate", "a candidate names its sdpMid or sdpMLineIndex")
    candidate.sdpMid = init.sdpMid
    candidate.sdpMLineIndex = init.sdpMLineIndex
    return candidate


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


class Channel(Protocol):
    """The transport under a session (a WebSocket on the server)."""

    async def send_text(self, text: str) -> None: ...
    async def close(self, code: int, reason: str) -> None: ...


class RoomSession:
    """One participant's signaling: implements the room's `Sink`."""

    def __init__(
        self,
        room: Room,
        member: Member,
        channel: Channel,
        *,
        credentials_until: dt.datetime | None = None,
    ) -> None:
        self.room = room
        self.member = member
        self.channel = channel
        self.participant: Participant | None = None
        self.credentials_until = credentials_until
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(OUTBOX_FRAMES)
        self._writer = asyncio.create_task(self._write(), name=f"room-out-{member.user}")
        self._over = False
        self._channel_closed = asyncio.Event()

    @property
    def over(self) -> bool:
        return self._over

    async def channel_closed(self) -> None:
        """Wait until the session, ending from its side, has closed the channel: a socket
        handler that stops reading must not drop the connection before the close code
        and the last frames are out."""
        await self._channel_closed.wait()

    # ---- from the client ----

    async def handle_text(self, text: str) -> None:
        if self._over:
            return
        try:
            frame = parse_frame(text)
            await self._handle(frame)
        except FrameError as bad:
            self.send(error(bad.code, bad.message))
        except NegotiationRefused as refused:
            self.send(error(refused.code, refused.message))

    async def handle_binary(self) -> None:
        self.send(error("binary_frame", "room signaling uses JSON text frames only"))

    async def _handle(self, frame: ClientFrame) -> None:
        if isinstance(frame, Join):
            await self._join(frame)
            return
        participant = self.participant
        if participant is None:
            raise FrameError("not_joined", 'send {"type":"join"} first')
        peer = participant.peer
        if isinstance(frame, Offer):
            peer.offer_received(frame.sdp)
        elif isinstance(frame, Answer):
            peer.answer_received(frame.sdp)
        elif isinstance(frame, Candidate):
            peer.candidate_received(ice_candidate(frame.candidate))
        elif isinstance(frame, Mute):
            self.room.mute(participant.id, frame.kind, frame.muted)
        else:
            await self.finish(NORMAL, "left")

    async def _join(self, frame: Join) -> None:
        if self.participant is not None:
            raise FrameError("already_joined", "this connection has joined already")
        name = frame.display_name.strip() or self.member.display_name
        member = Member(self.member.user, name, self.member.role)
        try:
            self.participant = self.room.join(member, self)
        except RoomError as refused:
            self.send(error(refused.code, refused.message))
            code = ROOM_FULL if refused.code == "room_full" else NOT_FOUND
            await self.finish(code, refused.code)
            return
        servers = self.room.config.ice.servers(
            member.user, now=dt.datetime.now(dt.UTC), not_after=self.credentials_until
        )
        self.send(
            {
                "type": "joined",
                "protocol": PROTOCOL_VERSION,
                "room": self.room.key,
                "participant": self.participant.id,
                "participants": self.room.others(self.participant.id),
                "ice_servers": [s.as_json() for s in servers],
            }
        )

    # ---- Sink ----

    def send(self, frame: dict[str, Any]) -> None:
        if self._over:
            return
        try:
            self._outbox.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("room client of %s stopped reading: disconnecting", self.member.user)
            self._over = True
            self._writer.cancel()
            spawn(self._leave_and_close(PROTOCOL_ERROR, "not reading"), "room-drop-slow")

    async def removed(self, code: str, message: str) -> None:
        self.send(error(code, message))
        await self.finish(_REMOVAL_CLOSE_CODES.get(code, MEDIA_LOST), code)

    # ---- ending ----

    async def end(self, close_code: int, code: str, message: str) -> None:
        """End from outside (the socket registry): tell the client why, then leave."""
        self.send(error(code, message))
        await self.finish(close_code, code)

    async def disconnected(self) -> None:
        """The channel went away: leave the room."""
        self._over = True
        self._writer.cancel()
        await self._leave()

    async def finish(self, close_code: int, reason: str) -> None:
        """Leave the room, send what is queued, and close the channel (once)."""
        if self._over:
            return
        self._over = True
        await self._leave()
        await self._outbox.put(None)
        await asyncio.wait({self._writer})  # it sends what is queued, unless it was stopped
        await self._leave_and_close(close_code, reason)

    async def _leave(self) -> None:
        if self.participant is not None:
            participant, self.participant = self.participant, None
            await self.room.leave(participant.id)

    async def _leave_and_close(self, close_code: int, reason: str) -> None:
        try:
            await self._leave()
            with contextlib.suppress(Exception):  # the channel may be gone already
                await self.channel.close(close_code, reason)
        finally:
            self._channel_closed.set()

    async def _write(self) -> None:
        while (frame := await self._outbox.get()) is not None:
            try:
                await self.channel.send_text(json.dumps(frame))
            except Exception:
                log.info("room client of %s went away while being written to", self.member.user)
                return
