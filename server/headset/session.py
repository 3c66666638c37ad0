"""One headset connection on `/ws/headset`: protocol v1 frames translated to and from the
pick `Conversation`. Microphone audio comes as binary frames, or, once the headset has
offered WebRTC (`rtc_offer`) and the peer connection is up, as an audio track (`peer.py`);
prompt audio goes out the same way it comes in. If the peer connection fails or closes,
the conversation goes on over binary frames; JSON frames always travel on the socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiortc import RTCConfiguration
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.headset.call import CallJoiner, HeadsetCall
from server.headset.conversation import Answered, Busy, Conversation, HeadsetMessage
from server.headset.peer import HeadsetPeer, OfferRefused
from server.headset.protocol import (
    PROTOCOL_ERROR,
    Bye,
    FrameError,
    Hello,
    RtcClose,
    RtcOffer,
    Say,
    check_audio_frame,
    error,
    message_frame,
    parse_text_frame,
)
from server.headset.snapshots import SnapshotStore
from server.headset.speech import SpeechServices
from server.sockets import Ending
from voice.dialog.pick import PickWork

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 15 * 60


class SocketPromptAudio:
    """Prompt audio as binary frames of 200 ms: the first 400 ms at once, so playback starts
    without a gap, then one frame every 200 ms (a frame a tenth of a second doubled the
    sends, each a system call, of a busy server's thousand headsets)."""

    CHUNK_MS = 200
    LEAD_MS = 400

    def __init__(self, send_bytes: Callable[[bytes], Awaitable[None]]) -> None:
        self.send_bytes = send_bytes

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        chunk = sample_rate * 2 * self.CHUNK_MS // 1000
        lead = self.LEAD_MS // self.CHUNK_MS
        for n, start in enumerate(range(0, len(pcm), chunk)):
            if n >= lead:
                await asyncio.sleep(self.CHUNK_MS / 1000)
            await self.send_bytes(pcm[start : start + chunk])


class HeadsetSession:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        operator: str,
        speech: SpeechServices,
        open_work: Callable[[str], PickWork],
        snapshots: SnapshotStore,
        rtc: RTCConfiguration | None = None,
        on_answer: Callable[[Answered], None] | None = None,
        calls: CallJoiner | None = None,
    ) -> None:
        """`rtc`: how to set up WebRTC audio for headsets that offer it (ICE servers);
        None answers their offers with an `rtc_unavailable` error. `on_answer`: see
        `Conversation`. `calls`: how a call the picker asks for is joined."""
        self.websocket = websocket
        self.operator = operator
        self.speech = speech
        self.rtc = rtc
        self.id = uuid.uuid4().hex
        self.socket_audio = SocketPromptAudio(self.send_bytes)
        self.conversation = Conversation(
            self,
            self.socket_audio,
            operator=operator,
            speech=speech,
            open_work=open_work,
            snapshots=snapshots,
            on_answer=on_answer,
        )
        self.peer: HeadsetPeer | None = None
        self._send_lock = asyncio.Lock()
        self._closing = False
        self.ended = False  # ended from outside (`end`), not by the headset
        self.calls = calls
        self.call: HeadsetCall | None = None

    async def run(self) -> None:
        """Serve the connection until the headset says bye, signs off or goes away."""
        try:
            while not self._closing:
                try:
                    message = await asyncio.wait_for(self.websocket.receive(), IDLE_TIMEOUT_S)
                except TimeoutError:
                    if self.peer is not None and self.peer.connected:
                        continue  # the headset talks over WebRTC, and its socket is quiet
                    raise
                if message["type"] == "websocket.disconnect":
                    break
                try:
                    if message.get("bytes") is not None:
                        await self._on_audio(message["bytes"])
                    elif message.get("text") is not None:
                        frame = parse_text_frame(message["text"])
                        if isinstance(frame, Hello):
                            await self._on_hello(frame)
                        elif isinstance(frame, Say):
                            await self._on_say(frame)
                        elif isinstance(frame, RtcOffer):
                            await self._on_rtc_offer(frame)
                        elif isinstance(frame, RtcClose):
                            await self._close_peer()
                        elif isinstance(frame, Bye):
                            break
                except FrameError as exc:
                    await self.send_json(error(exc.code, exc.message))
                    if exc.fatal:
                        await self.websocket.close(PROTOCOL_ERROR, exc.code)
                        return
        except (WebSocketDisconnect, TimeoutError):
            pass
        finally:
            if self.call is not None:
                await self.call.hang_up()
            await self._close_peer()
            await self.conversation.close()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close()

    async def end(self, ending: Ending) -> None:
        """End the session from outside (user revoked, taken over by another headset,
        server shutdown): an `error` frame says why, then the socket closes with the
        ending's code and `run` returns. The dialog is not saved after this."""
        self._closing = self.ended = True
        self.conversation.abandon()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send_json(error(ending.code, ending.message)), 2)
        with contextlib.suppress(Exception):
            await self.websocket.close(ending.close_code, ending.code)

    async def tell(self, message: HeadsetMessage) -> None:
        """What the conversation says, as a frame; after a sign-off the socket closes."""
        frame = message_frame(message)
        if frame is not None:
            await self.send_json(frame)
            return
        self._closing = True
        await self.websocket.close(1000, "signed off")

    # -- a call -------------------------------------------------------------------------

    def join_call(self, room_id: int) -> None:
        """Wait in the video room the picker's words opened; when someone joins, the call
        takes the headset over (a `call` frame says so) until they have all left."""
        if self.calls is None or self.call is not None or self._closing:
            return
        call = self.call = HeadsetCall(
            self.calls,
            room_id,
            self.conversation.sample_rate,
            on_started=self._call_started,
            on_ended=self._call_ended,
        )
        call.when_over(lambda: self._forget_call(call))

    def _forget_call(self, call: HeadsetCall) -> None:
        if self.call is call:  # nobody came, or it ended: the next call may be joined
            self.call = None

    async def _call_started(self, call: HeadsetCall) -> None:
        await self.send_json({"type": "call", "room": call.room_id, "state": "started"})
        await self.conversation.enter_call(call)

    async def _call_ended(self, call: HeadsetCall) -> None:
        self.call = None
        if self._closing:
            return
        await self.send_json({"type": "call", "room": call.room_id, "state": "ended"})
        await self.conversation.leave_call()

    async def _on_hello(self, hello: Hello) -> None:
        if self.conversation.started:
            raise FrameError("already_started", "hello was already received")
        if hello.locale not in self.speech.locales:
            raise FrameError(
                "unsupported_locale",
                f"locale must be one of {sorted(self.speech.locales)}",
                fatal=True,
            )
        sample_rate = hello.audio.sample_rate
        await self.send_json(
            {
                "type": "welcome",
                "session": self.id,
                "operator": self.operator,
                "sample_rate": sample_rate,
            }
        )
        await self.conversation.start(hello.locale, sample_rate)

    async def _on_audio(self, data: bytes) -> None:
        check_audio_frame(data)
        if not self.conversation.started:
            raise FrameError("audio_before_hello", "send hello before audio")
        try:
            await self.conversation.hear_audio(data)
        except Busy as exc:
            raise FrameError("busy", str(exc)) from None

    async def _on_say(self, frame: Say) -> None:
        if not self.conversation.started:
            raise FrameError("hello_required", "send hello before say")
        try:
            await self.conversation.hear_text(frame.text)
        except Busy as exc:
            raise FrameError("busy", str(exc)) from None

    # -- WebRTC audio -------------------------------------------------------------------

    async def _on_rtc_offer(self, offer: RtcOffer) -> None:
        """Answer the headset's offer with a peer connection of our own (a new offer
        replaces the one before); until it is up, audio goes on over binary frames."""
        if not self.conversation.started:
            raise FrameError("hello_required", "send hello before rtc_offer")
        if self.rtc is None:
            raise FrameError(
                "rtc_unavailable", "this server takes no WebRTC audio; go on with binary frames"
            )
        await self._close_peer()
        peer = self.peer = HeadsetPeer(
            self.rtc,
            self.conversation.sample_rate,
            hear=self._hear_track,
            on_state=self._on_peer_state,
        )
        try:
            answer = await peer.answer(offer.sdp)
        except OfferRefused as exc:
            await self._close_peer()
            raise FrameError("invalid_offer", str(exc)) from None
        await self.send_json({"type": "rtc_answer", "sdp": answer})

    async def _hear_track(self, pcm: np.ndarray) -> None:
        try:
            await self.conversation.hear_audio(pcm)
        except Busy as exc:
            await self.send_json(error("busy", str(exc)))

    async def _on_peer_state(self, peer: HeadsetPeer, state: str) -> None:
        if peer is not self.peer:
            return
        if state == "connected":
            log.info("headset %s: WebRTC audio connected", self.operator)
            if peer.sends_prompts:
                self.conversation.prompt_audio = peer.prompt_track
            await self._tell_rtc_state("connected")
        elif state in ("failed", "closed"):
            log.info("headset %s: WebRTC audio %s; back to the socket", self.operator, state)
            await self._close_peer()
            await self._tell_rtc_state("closed")

    async def _tell_rtc_state(self, state: str) -> None:
        """Tell the headset where its audio goes now, if it is still there to hear it."""
        try:
            await self.send_json({"type": "rtc_state", "state": state})
        except (RuntimeError, OSError, WebSocketDisconnect) as exc:
            log.debug("headset %s: rtc_state %s not sent: %r", self.operator, state, exc)

    async def _close_peer(self) -> None:
        """Back to binary frames both ways (a prompt playing on the track stops there)."""
        peer, self.peer = self.peer, None
        self.conversation.prompt_audio = self.socket_audio
        if peer is not None:
            await peer.close()

    # -- sending ------------------------------------------------------------------------

    async def send_json(self, data: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_json(data)

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await self.websocket.send_bytes(data)
