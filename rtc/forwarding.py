"""Forwarding encoded media: a participant's track as the server receives it (`Source`),
and what one other participant's sender sends of it (`Outlet`).

Nothing on this path decodes or encodes. aiortc's receiver keeps its jitter buffer, NACKs
and RTCP; the reassembled encoded frames it would have decoded are tapped (`_aiortc`) and
handed, as `av.Packet`s, to one `Outlet` per subscriber, whose sender only packetizes them
again (`Encoder.pack`: VP8, H.264, Opus, G.711 and G.722 all have one). So each subscriber
negotiates the codec its source sends, and its decoder must start at a keyframe: an
outlet drops video until one comes, and asks the source for one (RTCP PLI, at most every
`KEYFRAME_REQUEST_INTERVAL` per source) when it starts, when it has to drop, and when its
own receiver asks for one.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable

from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from av.packet import Packet

from rtc import _aiortc
from rtc.tasks import spawn

log = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 0.5  # s, per source: a room full of new subscribers asks once
OUTLET_QUEUE_FRAMES = {"audio": 50, "video": 30}  # about 1 s: a sender further behind resyncs
# nominal, for the gap left when an outlet's source changes
FRAMES_PER_SECOND = {"audio": 50, "video": 30}

CodecKey = tuple[str, int, int | None, tuple[tuple[str, str], ...]]


def codec_key(codec: RTCRtpCodecParameters | RTCRtpCodecCapability) -> CodecKey:
    """What must match for an outlet to carry a source's frames without transcoding."""
    parameters = tuple(sorted((k, str(v)) for k, v in codec.parameters.items()))
    return (codec.mimeType.lower(), codec.clockRate, codec.channels, parameters)


def capability(codec: RTCRtpCodecParameters) -> RTCRtpCodecCapability:
    return RTCRtpCodecCapability(
        mimeType=codec.mimeType,
        clockRate=codec.clockRate,
        channels=codec.channels,
        parameters=dict(codec.parameters),
    )


def is_keyframe(codec: RTCRtpCodecParameters, data: bytes) -> bool:
    """Whether a decoder can start at this encoded frame. Audio frames always can."""
    name = codec.name.lower()
    if name == "vp8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame
        return len(data) >= 3 and not data[0] & 0x01
    if name == "h264":
        return _h264_has_idr(data)
    return True


def _h264_has_idr(data: bytes) -> bool:
    """An Annex B access unit (as aiortc reassembles one) that holds an IDR slice or a
    sequence parameter set, which browsers send just before their IDR."""
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        if data[start + 3] & 0x1F in (5, 7):
            return True
        start = data.find(b"\x00\x00\x01", start + 3)
    return False


class Source:
    """One track a participant sends, received by the server and fanned out to outlets.

    It goes live with its first frame (then its codec is known) and is announced through
    `on_live`; `on_gone` when it stops (the participant stopped sending it, or left)."""

    def __init__(
        self,
        owner: str,
        kind: str,
        *,
        on_live: Callable[[Source], None],
        on_gone: Callable[[Source], None],
    ) -> None:
        self.owner = owner
        self.kind = kind
        self.codec: RTCRtpCodecParameters | None = None
        self.live = False
        self.muted = False
        self.frames = 0
        self.outlets: set[Outlet] = set()
        self.receiver: RTCRtpReceiver | None = None
        self._tap: _aiortc.ReceiverTap | None = None
        self._on_live = on_live
        self._on_gone = on_gone
        self._last_keyframe_request = float("-inf")
        self._ended = False
        self._codec_warned = False

    def __repr__(self) -> str:
        return f"Source({self.owner}, {self.kind}, live={self.live})"

    def tap(self, receiver: RTCRtpReceiver) -> None:
        """Take `receiver`'s encoded frames (call before it starts)."""
        self.receiver = receiver
        self._tap = _aiortc.tap_receiver(receiver, self._frame, self.end)

    def _frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if self._ended or not frame.data:
            return
        if self.codec is None:
            self.codec = codec
        elif codec_key(codec) != codec_key(self.codec):
            if not self._codec_warned:
                self._codec_warned = True
                log.warning(
                    "%s of %s switched from %s to %s: frames dropped (no transcoding)",
                    self.kind,
                    self.owner,
                    self.codec.mimeType,
                    codec.mimeType,
                )
            return
        if not self.live:
            self.live = True
            self._on_live(self)
        if self.muted:
            return
        self.frames += 1
        keyframe = self.kind != "video" or is_keyframe(codec, frame.data)
        for outlet in tuple(self.outlets):
            outlet.push(frame.data, frame.timestamp, keyframe)

    def set_muted(self, muted: bool) -> None:
        if muted == self.muted:
            return
        self.muted = muted
        if not muted:
            for outlet in self.outlets:
                outlet.resync()

    def request_keyframe(self) -> None:
        """Ask the participant's encoder for a keyframe, unless asked very recently."""
        if self.kind != "video" or self.receiver is None or self._tap is None or self._ended:
            return
        now = time.monotonic()
        if now - self._last_keyframe_request < KEYFRAME_REQUEST_INTERVAL:
            return
        self._last_keyframe_request = now
        spawn(_aiortc.request_keyframe(self.receiver, self._tap), f"pli-{self.owner}")

    def withdraw(self) -> None:
        """The participant stopped sending this track (it may send it again)."""
        if self.live:
            self.live = False
            self.codec = None
            self._on_gone(self)

    def end(self) -> None:
        """The track is over for good (its receiver stopped)."""
        if not self._ended:
            self._ended = True
            self.withdraw()


class Outlet(MediaStreamTrack):
    """The track one subscriber's sender sends: the encoded frames of one source at a time,
    as `av.Packet`s on a timeline of its own (a source that replaces another continues it,
    so the subscriber's RTP timestamps never jump back).

    Frames are taken only while `active` (negotiated with the subscriber); video waits for
    a keyframe after every (re)start. A sender that falls more than about a second behind
    loses its queue and starts again at the next keyframe."""

    def __init__(self, kind: str, codec: RTCRtpCodecParameters) -> None:
        super().__init__()
        self.kind = kind
        self.codec_key = codec_key(codec)
        self.source: Source | None = None
        self.active = False
        self.sent = 0
        self._time_base = fractions.Fraction(1, codec.clockRate)
        self._frame_ticks = codec.clockRate // FRAMES_PER_SECOND[kind]
        self._queue: asyncio.Queue[Packet] = asyncio.Queue(OUTLET_QUEUE_FRAMES[kind])
        self._need_keyframe = kind == "video"
        self._shift: int | None = None
        self._next_pts = 0

    def attach(self, source: Source) -> None:
        """Carry `source` from now on (inactive until `activate`)."""
        self.detach()
        self.source = source
        source.outlets.add(self)
        self._shift = None

    def detach(self) -> None:
        if self.source is not None:
            self.source.outlets.discard(self)
        self.source = None
        self.active = False
        self._drain()

    def activate(self) -> None:
        """The subscriber accepted this track: start taking frames."""
        if not self.active:
            self.active = True
            self.resync()

    def resync(self) -> None:
        """Start again at the next keyframe (video), and ask for one."""
        self._drain()
        if self.kind == "video":
            self._need_keyframe = True
            if self.source is not None:
                self.source.request_keyframe()

    def keyframe_requested(self) -> None:
        """The subscriber's decoder lost the picture (its PLI/FIR to our sender)."""
        if self.source is not None:
            self.source.request_keyframe()

    def push(self, data: bytes, timestamp: int, keyframe: bool) -> None:
        if not self.active or self.readyState != "live":
            return
        if self._need_keyframe:
            if not keyframe:
                if self.source is not None:
                    self.source.request_keyframe()
                return
            self._need_keyframe = False
        if self._shift is None:
            self._shift = self._next_pts - timestamp
        packet = Packet(data)
        packet.pts = timestamp + self._shift
        packet.time_base = self._time_base
        self._next_pts = packet.pts + self._frame_ticks
        try:
            self._queue.put_nowait(packet)
        except asyncio.QueueFull:
            log.info("a %s outlet fell behind its source: resyncing", self.kind)
            self.resync()

    async def recv(self) -> Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        self.sent += 1
        return packet

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
