"""`RoomClient`: a participant of a room over Room signaling v1 (a WebSocket, or a
`LoopbackSignaling` in the server's own process) with one aiortc peer connection: what the
tests and the benchmark join rooms with, what a headset is bridged into a call with, and a
short model of what any client does.

It offers what it sends right after `joined` (or, sending nothing, waits for the server's
offer), answers the server's offers, and tells the tracks it receives apart by the
MediaStream id the server gives each of them: the id of the participant it comes from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import websockets
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from av.frame import Frame

from rtc import _aiortc
from rtc.tasks import stopped

FrameHandler = Callable[[str, str, Frame], None]
CLOSE_WAIT_S = 5.0


class RoomRefused(Exception):
    """The server would not let this client in: its error code and close code."""

    def __init__(self, code: str | None, close_code: int | None) -> None:
        super().__init__(f"refused: {code} (closed with {close_code})")
        self.code = code
        self.close_code = close_code


@dataclass
class Reception:
    """What arrived on one of the m-lines the server sends on."""

    mid: str
    kind: str
    frames: int = 0
    last: Frame | None = None


@dataclass
class RoomClient:
    url: str
    headers: dict[str, str] | None = None
    display_name: str = ""
    tracks: Iterable[MediaStreamTrack] = ()
    relay_only: bool = False
    decode: Collection[str] = ("audio", "video")  # kinds decoded; others' encoded frames
    # are only counted (a headset in a call hears and never looks; load clients: none)
    decode_from: Collection[str] | None = None  # decode only these participants' tracks
    video_codec: str | None = None  # send this codec ("video/H264"), not the first offered
    on_frame: FrameHandler | None = None  # (participant, kind, decoded frame)
    connection: Any = None  # signaling already open (`LoopbackSignaling`), not `url`
    take_track: Callable[[str, MediaStreamTrack], None] | None = None  # (participant, track):
    # each received track handed over whole (a recorder reads it), instead of read here

    participant: str | None = None
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    frames: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    received: Counter[tuple[str, str]] = field(default_factory=Counter)
    receptions: dict[str, Reception] = field(default_factory=dict)
    close_code: int | None = None

    def __post_init__(self) -> None:
        self.pc: RTCPeerConnection | None = None
        self._ws: Any = None
        self._streams: dict[str, str] = {}  # mid -> participant the server forwards on it
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._last: dict[tuple[str, str], Frame] = {}

    # ---- joining and leaving ----

    async def join(self, within: float = 30) -> dict[str, Any]:
        """Open the socket, join, and offer what this client sends; the `joined` frame."""
        self._ws = self.connection or await websockets.connect(
            self.url, additional_headers=self.headers, max_size=1 << 20, open_timeout=within
        )
        with contextlib.suppress(websockets.ConnectionClosed):  # refused: read why below
            await self.send({"type": "join", "display_name": self.display_name})
        joined = await self._first_frame("joined", within)
        self.participant = joined["participant"]
        self.participants = {p["id"]: p for p in joined["participants"]}
        self.pc = RTCPeerConnection(self._configuration(joined["ice_servers"]))
        self.pc.on("track", self._track)
        for track in self.tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            if track.kind == "video" and self.video_codec is not None:
                transceiver.setCodecPreferences(_codecs(self.video_codec))
        self._tasks.append(asyncio.create_task(self._read(), name="room-client-read"))
        if self.pc.getTransceivers():
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await self.send({"type": "offer", "sdp": self.pc.localDescription.sdp})
        return joined

    async def leave(self, within: float = 15) -> int | None:
        """Say `leave` and wait for the server to close; the close code."""
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.send({"type": "leave"})
        await self.until(lambda: self.close_code is not None, within)
        await self.close()
        return self.close_code

    async def close(self) -> None:
        """Drop out without a word: the socket and the peer connection close."""
        if self._ws is not None:
            await self._ws.close()
        await stopped(*self._tasks)
        if self.pc is not None:
            await self.pc.close()

    async def send(self, frame: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self._ws.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self._ws.send(data)

    # ---- waiting for things ----

    async def until(self, condition: Callable[[], bool], within: float = 30) -> None:
        """Wait until `condition()` holds (checked whenever something arrives)."""
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def next_error(self, within: float = 15) -> dict[str, Any]:
        seen = len(self.errors)
        await self.until(lambda: len(self.errors) > seen or self.close_code is not None, within)
        if len(self.errors) == seen:
            raise AssertionError(f"closed with {self.close_code} and no error frame")
        return self.errors[seen]

    def last_frame(self, participant: str, kind: str) -> Frame | None:
        return self._last.get((participant, kind))

    # ---- signaling ----

    def _configuration(self, servers: list[dict[str, Any]]) -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(s["urls"], s.get("username"), s.get("credential")) for s in servers
            ],
            iceTransportPolicy=(
                RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
            ),
        )

    async def _first_frame(self, kind: str, within: float) -> dict[str, Any]:
        try:
            async with asyncio.timeout(within):
                while True:
                    frame = json.loads(await self._ws.recv())
                    self.frames.append(frame)
                    if frame["type"] == "error":
                        self.errors.append(frame)
                    if frame["type"] == kind:
                        return frame
        except websockets.ConnectionClosed as closed:
            code = self.errors[-1]["code"] if self.errors else None
            raise RoomRefused(code, closed.rcvd.code if closed.rcvd else None) from None

    async def _read(self) -> None:
        assert self.pc is not None
        try:
            async for message in self._ws:
                frame = json.loads(message)
                self.frames.append(frame)
                kind = frame["type"]
                if kind == "offer":
                    self._streams.update(streams_of(frame["sdp"]))
                    await self.pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "offer"))
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    await self.send({"type": "answer", "sdp": self.pc.localDescription.sdp})
                    self.negotiated()
                elif kind == "answer":
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(frame["sdp"], "answer")
                    )
                    self.negotiated()
                elif kind == "participant_joined":
                    self.participants[frame["participant"]["id"]] = frame["participant"]
                elif kind == "participant_left":
                    self.participants.pop(frame["participant"]["id"], None)
                elif kind == "error":
                    self.errors.append(frame)
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            # a frame handled as the server closes (an answer sent, an offer set) can fail
            # before the close frame is read: the close code comes once the closing is over
            wait_closed = getattr(self._ws, "wait_closed", None)
            if self._ws.close_code is None and wait_closed is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(wait_closed(), CLOSE_WAIT_S)
            self.close_code = self._ws.close_code or 1006
            self._changed.set()

    def negotiated(self) -> None:
        """Called after each offer/answer exchange (for subclasses)."""

    # ---- media ----

    def _track(self, track: MediaStreamTrack) -> None:
        assert self.pc is not None
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        mid = transceiver.mid or "?"
        reception = self.receptions[mid] = Reception(mid, track.kind)
        source = self._streams.get(mid, "?")
        if self.take_track is not None:
            self.take_track(source, track)
        elif track.kind in self.decode and (self.decode_from is None or source in self.decode_from):
            self._tasks.append(asyncio.create_task(self._consume(track, reception)))
        else:
            self._count_encoded(transceiver, reception)

    async def _consume(self, track: MediaStreamTrack, reception: Reception) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, Frame)
                source = self._streams.get(reception.mid, "?")
                reception.frames += 1
                reception.last = frame
                self.received[(source, reception.kind)] += 1
                self._last[(source, reception.kind)] = frame
                if self.on_frame is not None:
                    self.on_frame(source, reception.kind, frame)
                self._changed.set()

    def _count_encoded(self, transceiver: RTCRtpTransceiver, reception: Reception) -> None:
        def counted(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            reception.frames += 1
            self.received[(self._streams.get(reception.mid, "?"), reception.kind)] += 1

        _aiortc.tap_receiver(transceiver.receiver, counted, lambda: None)


def _codecs(mime_type: str) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == mime_type.lower()]
    if not chosen:
        raise ValueError(f"aiortc cannot send {mime_type}")
    return chosen


def streams_of(sdp: str) -> dict[str, str]:
    """mid -> MediaStream id of every m-section of an SDP that announces one."""
    streams: dict[str, str] = {}
    mid: str | None = None
    msid: str | None = None
    for line in [*sdp.splitlines(), "m=end"]:
        if line.startswith("m="):
            if mid is not None and msid is not None:
                streams[mid] = msid
            mid = msid = None
        elif line.startswith("a=mid:"):
            mid = line[6:].strip()
        elif line.startswith("a=msid:"):
            msid = line[7:].split()[0]
    return streams
