"""One headset connection on `/ws/headset`: protocol v1 frames translated to and from the
pick `Conversation`: microphone audio in and prompt audio out as binary frames."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.headset.conversation import Busy, Conversation, Event
from server.headset.protocol import (
    PROTOCOL_ERROR,
    Bye,
    FrameError,
    Hello,
    Say,
    check_audio_frame,
    error,
    event_frame,
    parse_text_frame,
)
from server.headset.speech import SpeechServices
from server.sockets import Ending
from voice.dialog.pick import PickWork

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 15 * 60


class SocketPromptAudio:
    """Prompt audio as binary frames of 100 ms: the first 300 ms at once, so playback starts
    without a gap, then one frame every 100 ms."""

    CHUNK_MS = 100
    LEAD_MS = 300

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
        snapshots: dict[str, dict[str, Any]],
    ) -> None:
        self.websocket = websocket
        self.operator = operator
        self.speech = speech
        self.id = uuid.uuid4().hex
        self.socket_audio = SocketPromptAudio(self.send_bytes)
        self.conversation = Conversation(
            self,
            self.socket_audio,
            operator=operator,
            speech=speech,
            open_work=open_work,
            snapshots=snapshots,
        )
        self._send_lock = asyncio.Lock()
        self._closing = False

    async def run(self) -> None:
        """Serve the connection until the headset says bye, signs off or goes away."""
        try:
            while not self._closing:
                message = await asyncio.wait_for(self.websocket.receive(), IDLE_TIMEOUT_S)
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
            await self.conversation.close()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close()

    async def end(self, ending: Ending) -> None:
        """End the session from outside (user revoked, taken over by another headset,
        server shutdown): an `error` frame says why, then the socket closes with the
        ending's code and `run` returns. The dialog is not saved after this."""
        self._closing = True
        self.conversation.abandon()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send_json(error(ending.code, ending.message)), 2)
        with contextlib.suppress(Exception):
            await self.websocket.close(ending.close_code, ending.code)

    async def tell(self, event: Event) -> None:
        """What the conversation says, as a frame; after a sign-off the socket closes."""
        frame = event_frame(event)
        if frame is not None:
            await self.send_json(frame)
            return
        self._closing = True
        await self.websocket.close(1000, "signed off")

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

    # -- sending ------------------------------------------------------------------------

    async def send_json(self, data: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_json(data)

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await self.websocket.send_bytes(data)
