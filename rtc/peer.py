"""The server's peer connection with one participant (`Peer`): the tracks it sends
(sources), the other participants' tracks forwarded to it (slots), and their negotiation.

Negotiation, in the order things arrive:
- the participant makes the first offer, right after it joined (with what it sends, or
  receive-only); one that waits instead gets the server's first offer after
  `Timeouts.first_offer` (a server offer never crosses the participant's first one);
- the participant's offers are answered (its tracks become sources);
- when the set of tracks to forward changes, the server offers (`negotiate`), reusing the
  m-line of a track that went for a new track of the same kind and codec, so a long call
  with people coming and going does not grow its SDP without bound. The server is the
  impolite peer: an offer from the participant while a server offer waits for its answer
  is refused (`offer_collision`); the participant answers, then offers again;
- trickled candidates are added in order with the descriptions.

A participant is given up (`PeerEvents.peer_failed`) when its connection fails or closes,
when no packet has come from it for `silence_timeout` while it should be sending (its own
tracks, or receiver reports for what it is sent), or when it does not answer an offer
within `answer_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from rtc import Forwarding, _aiortc
from rtc.forwarding import Outlet, Source, capability, codec_key
from rtc.tasks import spawn

log = logging.getLogger(__name__)

Signal = Callable[[dict[str, Any]], Awaitable[None]]
RECEIVING = ("recvonly", "sendrecv")
SENDING = ("sendonly", "sendrecv")


class PeerEvents(Protocol):
    """What a peer tells its room."""

    def source_live(self, peer: Peer, source: Source) -> None: ...
    def source_gone(self, peer: Peer, source: Source) -> None: ...
    def peer_failed(self, peer: Peer, code: str, message: str) -> None: ...


class NegotiationRefused(Exception):
    """A description the peer cannot take now (`code` for the client's error frame)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Timeouts:
    answer: float = 15.0  # s for the participant to answer a server offer
    first_offer: float = 3.0  # s the server waits for the participant's first offer
    silence: float = 8.0  # s without a packet from a participant that should be sending
    check_interval: float = 0.25  # s between two looks at the connection's counters


@dataclass(eq=False)
class Slot:
    """One m-line the server sends on: a forwarded track, or idle until it is reused."""

    transceiver: RTCRtpTransceiver
    kind: str
    source: Source | None
    outlet: Outlet | None = None  # encoded forwarding
    relayed: MediaStreamTrack | None = None  # transcoded forwarding

    @property
    def sender(self) -> RTCRtpSender:
        return self.transceiver.sender


class Peer:
    def __init__(
        self,
        owner: str,
        configuration: RTCConfiguration,
        *,
        signal: Signal,
        events: PeerEvents,
        forwarding: Forwarding = Forwarding.encoded,
        relay: MediaRelay | None = None,
        timeouts: Timeouts = Timeouts(),
    ) -> None:
        self.owner = owner
        self.pc = RTCPeerConnection(configuration)
        self.sources: dict[RTCRtpTransceiver, Source] = {}
        self.slots: list[Slot] = []
        self._signal = signal
        self._events = events
        self._forwarding = forwarding
        self._relay = relay or MediaRelay()
        self._timeouts = timeouts
        self._wanted: set[Source] = set()
        self._inbox: deque[tuple[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._renegotiate = False
        self._answer: asyncio.Future[str] | None = None
        self._closed = False
        self._failed = False
        self._first_offer_done = False
        self.pc.on("track", self._track)
        self.pc.on("connectionstatechange", self._connection_state)
        self._worker = spawn(self._work(), f"negotiation-{owner}")
        self._watcher = spawn(self._watch(), f"liveness-{owner}")
        self._first_offer_timer = asyncio.get_running_loop().call_later(
            timeouts.first_offer, self._first_offer_over
        )

    # ---- what the participant sends over signaling ----

    def offer_received(self, sdp: str) -> None:
        if self._answer is not None:
            raise NegotiationRefused(
                "offer_collision",
                "the server's offer is waiting for your answer: answer it, then offer again",
            )
        self._post("offer", sdp)

    def answer_received(self, sdp: str) -> None:
        if self._answer is None or self._answer.done():
            raise NegotiationRefused("unexpected_answer", "there is no offer to answer")
        self._answer.set_result(sdp)

    def candidate_received(self, candidate: RTCIceCandidate | None) -> None:
        self._post("candidate", candidate)

    # ---- what the room asks ----

    def subscribe(self, source: Source) -> None:
        """Forward `source` to this participant (from the next negotiation)."""
        if source not in self._wanted:
            self._wanted.add(source)
            self._request_negotiation()

    def unsubscribe(self, source: Source) -> None:
        if source in self._wanted:
            self._wanted.discard(source)
            self._request_negotiation()

    def set_muted(self, kind: str, muted: bool) -> None:
        for source in self.sources.values():
            if source.kind == kind:
                source.set_muted(muted)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._first_offer_timer.cancel()
        for task in (self._worker, self._watcher):
            task.cancel()
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        for source in self.sources.values():
            source.end()
        for slot in self.slots:
            if slot.outlet is not None:
                slot.outlet.detach()
                slot.outlet.stop()
        await self.pc.close()

    # ---- negotiation ----

    def _post(self, kind: str, item: Any) -> None:
        self._inbox.append((kind, item))
        self._wake.set()

    def _request_negotiation(self) -> None:
        self._renegotiate = True
        self._wake.set()

    def _first_offer_over(self) -> None:
        self._first_offer_done = True
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inbox:
                kind, item = self._inbox.popleft()
                try:
                    if kind == "offer":
                        await self._answer_offer(item)
                    else:
                        await self.pc.addIceCandidate(item)
                except NegotiationRefused as refused:
                    await self._signal(_error(refused.code, refused.message))
                except Exception as exc:  # aiortc refused what passed our checks
                    log.warning("%s of %s failed: %r", kind, self.owner, exc)
                    code = "invalid_sdp" if kind == "offer" else "invalid_candidate"
                    await self._signal(_error(code, f"the {kind} cannot be used: {exc}"))
            if self._renegotiate and self._first_offer_done and not self._closed:
                self._renegotiate = False
                try:
                    await self._negotiate()
                except Exception:
                    log.exception("negotiating with %s failed", self.owner)
                    self._fail("negotiation_failed", "the server could not negotiate with you")

    async def _answer_offer(self, sdp: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            log.info("offer of %s refused: %s", self.owner, exc)
            raise NegotiationRefused("invalid_sdp", f"the offer cannot be used: {exc}") from exc
        try:
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            log.info("no answer to the offer of %s: %s", self.owner, exc)
            raise NegotiationRefused("invalid_sdp", f"the offer cannot be answered: {exc}") from exc
        await self._signal({"type": "answer", "sdp": self.pc.localDescription.sdp})
        self._first_offer_done = True
        self._first_offer_timer.cancel()
        self._review_sources()

    async def _negotiate(self) -> None:
        """Offer the participant what it should now receive, and wait for its answer."""
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        try:
            if not self._update_slots():
                return
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await self._signal({"type": "offer", "sdp": self.pc.localDescription.sdp})
            deadline = loop.time() + self._timeouts.answer
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        sdp = await self._answer
                except TimeoutError:
                    self._fail("negotiation_timeout", "the server's offer was not answered")
                    return
                try:
                    description = RTCSessionDescription(sdp=sdp, type="answer")
                    await self.pc.setRemoteDescription(description)
                    break
                except Exception as exc:
                    log.info("answer of %s refused: %s", self.owner, exc)
                    await self._signal(
                        _error("invalid_sdp", f"the answer cannot be used: {exc}; answer again")
                    )
                    self._answer = loop.create_future()
            self._start_slots()
        finally:
            self._answer = None

    def _update_slots(self) -> bool:
        """Give every wanted source a slot and free the slots of the others; whether the
        peer connection changed (and needs an offer)."""
        changed = False
        for slot in self.slots:
            if slot.source is not None and slot.source not in self._wanted:
                self._release(slot)
                changed = True
        carried = {slot.source for slot in self.slots if slot.source is not None}
        for source in sorted(self._wanted - carried, key=lambda s: (s.owner, s.kind)):
            if not source.live:
                continue  # went quiet meanwhile; announced again when it goes live
            self._assign(source)
            changed = True
        return changed

    def _assign(self, source: Source) -> None:
        if self._forwarding is Forwarding.transcoded:
            assert source.receiver is not None and source.receiver.track is not None
            relayed = self._relay.subscribe(source.receiver.track, buffered=False)
            transceiver = self.pc.addTransceiver(relayed, direction="sendonly")
            slot = Slot(transceiver, source.kind, source, relayed=relayed)
            self.slots.append(slot)
        else:
            assert source.codec is not None  # an encoded source is live with its codec
            key = codec_key(source.codec)
            idle = (
                s
                for s in self.slots
                if s.source is None and s.outlet is not None and s.outlet.codec_key == key
            )
            slot_or_none = next(idle, None)
            if slot_or_none is None:
                outlet = Outlet(source.kind, source.codec)
                transceiver = self.pc.addTransceiver(outlet, direction="sendonly")
                transceiver.setCodecPreferences(_preferences(source))
                _aiortc.on_keyframe_request(transceiver.sender, outlet.keyframe_requested)
                slot = Slot(transceiver, source.kind, None, outlet=outlet)
                self.slots.append(slot)
            else:
                slot = slot_or_none
                slot.transceiver.direction = "sendonly"
            assert slot.outlet is not None
            slot.source = source
            slot.outlet.attach(source)
        _aiortc.set_stream_id(slot.sender, source.owner)

    def _release(self, slot: Slot) -> None:
        slot.source = None
        slot.transceiver.direction = "inactive"
        if slot.outlet is not None:
            slot.outlet.detach()
        if slot.relayed is not None:
            slot.relayed.stop()  # a relayed m-line is not reused: its sender stops with it
            slot.relayed = None

    def _start_slots(self) -> None:
        for slot in self.slots:
            if (
                slot.outlet is not None
                and slot.source is not None
                and slot.transceiver.currentDirection in SENDING
            ):
                slot.outlet.activate()

    # ---- the participant's own tracks ----

    def _track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        source = Source(
            self.owner,
            track.kind,
            on_live=lambda s: self._events.source_live(self, s),
            on_gone=lambda s: self._events.source_gone(self, s),
        )
        self.sources[transceiver] = source
        if self._forwarding is Forwarding.encoded:
            source.tap(transceiver.receiver)  # live with its first frame
        else:
            # decoded by aiortc and encoded again per subscriber: live at once
            source.receiver = transceiver.receiver
            track.on("ended", source.end)
            source.live = True
            self._events.source_live(self, source)

    def _review_sources(self) -> None:
        """After a new offer: tracks the participant no longer sends are gone."""
        for transceiver, source in self.sources.items():
            if transceiver.currentDirection not in RECEIVING:
                source.withdraw()

    # ---- liveness ----

    def _connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "failed":
            self._fail("connection_failed", "the media connection failed")
        elif state == "closed" and not self._closed:
            self._fail("connection_closed", "the media connection was closed")

    async def _watch(self) -> None:
        received = -1
        heard = time.monotonic()
        while True:
            await asyncio.sleep(self._timeouts.check_interval)
            if self.pc.connectionState != "connected":
                heard = time.monotonic()
                continue
            now_received = _aiortc.packets_received(self.pc)
            now = time.monotonic()
            if now_received != received or not self._expects_traffic():
                received, heard = now_received, now
            elif now - heard > self._timeouts.silence:
                self._fail("media_timeout", "nothing was heard from your peer connection")
                return

    def _expects_traffic(self) -> bool:
        """Whether the participant should be sending packets: media on its own tracks, or
        receiver reports for the tracks it is sent."""
        sending = any(s.live and not s.muted for s in self.sources.values())
        receiving = any(slot.outlet is not None and slot.outlet.sent for slot in self.slots)
        return sending or receiving or any(slot.relayed is not None for slot in self.slots)

    def _fail(self, code: str, message: str) -> None:
        if self._failed or self._closed:
            return
        self._failed = True
        log.info("peer of %s given up: %s", self.owner, code)
        self._events.peer_failed(self, code, message)


def _preferences(source: Source) -> list[RTCRtpCodecCapability]:
    assert source.codec is not None
    preferences = [capability(source.codec)]
    if source.kind == "video":
        preferences.append(RTCRtpCodecCapability(mimeType="video/rtx", clockRate=90000))
    return preferences


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
