"""Every reach into aiortc's internals, in one place, checked when used.

aiortc hands what a receiver gets to a jitter buffer that reassembles whole encoded frames,
then to a decoder thread; a sender takes decoded frames (and encodes them) or `av.Packet`s
(which it only packetizes: `Encoder.pack`). A forwarding unit wants the middle of that —
reassembled, still encoded frames, with aiortc's jitter buffer, NACKs and RTCP left as they
are — and aiortc has no public API for it. So:

- `tap_receiver` swaps the receiver's decoder queue, before the receiver starts, for one
  that hands each encoded frame to a callback instead of the decoder (the decoder thread,
  started as usual, idles until the receiver stops). Audio also gets a jitter buffer
  without prefetch: the final receiver buffers for jitter, a forwarder should not add
  four frames (80 ms) of its own.
- `request_keyframe` sends a picture loss indication (RTCP PLI) to the remote sender.
- `on_keyframe_request` routes the PLI/FIR a remote receiver sends us to a callback (a
  sender of `av.Packet`s has no encoder to restart).
- `set_stream_id` sets the MediaStream id a sender announces (`a=msid`).
- `packets_received` counts what came in on a peer connection's transports, cheaply
  enough to look every fraction of a second (`getStats` builds a report per track).

Written against aiortc 1.14–1.16; `IncompatibleAiortc` names what is missing otherwise.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

log = logging.getLogger(__name__)

FrameCallback = Callable[[RTCRtpCodecParameters, JitterFrame], None]

_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
_AUDIO_JITTER_CAPACITY = 16  # aiortc's own, in packets


class IncompatibleAiortc(RuntimeError):
    """The installed aiortc lacks an internal that encoded forwarding relies on."""


def _require(obj: object, name: str) -> None:
    if not hasattr(obj, name):
        raise IncompatibleAiortc(
            f"{type(obj).__name__} has no {name!r}: encoded forwarding was written against "
            "aiortc 1.14-1.16"
        )


class _FrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue. aiortc puts `(codec, frame)` on it from the
    event loop, and None (from the event loop too) when the receiver stops."""

    def __init__(self, on_frame: FrameCallback, on_end: Callable[[], None]) -> None:
        super().__init__()
        self._on_frame = on_frame
        self._on_end = on_end

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)  # ends the idle decoder thread
            self._on_end()
            return
        codec, frame = item
        try:
            self._on_frame(codec, frame)
        except Exception:  # a bug in forwarding must not kill the receiver's RTP handling
            log.exception("forwarding an encoded %s frame failed", codec.mimeType)


class ReceiverTap:
    """What `tap_receiver` learnt about the stream: its SSRCs, once the receiver starts."""

    def __init__(self) -> None:
        self.media_ssrcs: list[int] = []
        self.started = False


def tap_receiver(
    receiver: RTCRtpReceiver, on_frame: FrameCallback, on_end: Callable[[], None]
) -> ReceiverTap:
    """Hand `receiver`'s reassembled encoded frames to `on_frame` instead of decoding them;
    `on_end` is called when the receiver stops. Call before the receiver starts (in the
    peer connection's "track" event)."""
    for name in (_DECODER_QUEUE, _JITTER_BUFFER, "receive", "_send_rtcp_pli"):
        _require(receiver, name)
    tap = ReceiverTap()
    start = receiver.receive

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        if not tap.started:
            tap.started = True
            tap.media_ssrcs = [e.ssrc for e in parameters.encodings if e.ssrc is not None]
            setattr(receiver, _DECODER_QUEUE, _FrameTap(on_frame, on_end))
            if receiver.track is not None and receiver.track.kind == "audio":
                setattr(receiver, _JITTER_BUFFER, JitterBuffer(_AUDIO_JITTER_CAPACITY))
        await start(parameters)

    receiver.receive = receive  # type: ignore[method-assign]
    return tap


async def request_keyframe(receiver: RTCRtpReceiver, tap: ReceiverTap) -> None:
    """Ask the remote sender for a keyframe (RTCP PLI, RFC 4585)."""
    ssrcs = tap.media_ssrcs or [s.source for s in receiver.getSynchronizationSources()]
    for ssrc in ssrcs:
        await receiver._send_rtcp_pli(ssrc)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the remote receiver asks this sender for a keyframe."""
    _require(sender, "_send_keyframe")
    sender._send_keyframe = callback  # type: ignore[method-assign]


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """The MediaStream id the sender's track is announced in (`a=msid:<stream> <track>`)."""
    _require(sender, "_stream_id")
    sender._stream_id = stream_id


def packets_received(pc: RTCPeerConnection) -> int:
    """Datagrams (DTLS, SRTP, SRTCP) received so far on the connection's transports."""
    transports = {t.receiver.transport for t in pc.getTransceivers()}
    for transport in transports:
        _require(transport, _RX_PACKETS)
    return sum(getattr(transport, _RX_PACKETS) for transport in transports)
