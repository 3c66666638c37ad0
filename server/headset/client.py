"""A headset over protocol v1, as a program: for simulated pickers (`wavepick simulate`) and
end-to-end tests. It speaks typed `say` frames or real audio, and times each turn from the
answer sent to the first byte of the next prompt's audio. It authenticates with the
`Authorization` header, or like the browser page with a one-use ticket (`?ticket=`); the
bearer token never goes into a URL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from voice.endpoint import LIVE_ANSWERS

CHUNK_MS = 20
# Quiet sent after an utterance: the longest the server waits before it hears an answer
# end (a partial one, or any when no reading at a pause could end it), and a little more.
TRAILING_QUIET_MS = LIVE_ANSWERS.end_silence_ms + 200


@dataclass
class Exchange:
    """One thing the headset said and what the server answered to it."""

    heard: dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    audio_bytes: int = 0
    latency_s: float | None = None  # answer sent -> first audio byte of the new prompt
    first_audio_at: float | None = None
    closed: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)


class HeadsetClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        locale: str = "en-US",
        sample_rate: int = 16000,
        device: str = "sim",
        turn_timeout: float = 60,
        ticket: bool = False,
    ) -> None:
        self.url = url
        self.token = token
        self.ticket = ticket  # authenticate as browsers do: POST /api/v1/auth/ticket first
        self.locale = locale
        self.sample_rate = sample_rate
        self.device = device
        self.turn_timeout = turn_timeout  # seconds a turn may take before it fails
        self.ws: ClientConnection | None = None
        self.welcome: dict[str, Any] | None = None
        self.prompt: dict[str, Any] | None = None
        self.close_code: int | None = None

    async def connect(self) -> Exchange:
        """Open the socket, say hello, and wait for the first prompt's audio."""
        await self.open()
        started = time.perf_counter()
        self.welcome = await self._next_json("welcome")
        return await self._exchange(started, expect=None)

    async def open(self) -> None:
        """Open the socket and say hello without waiting for the answer: for a headset that
        streams its microphone from the first moment and reads every frame itself."""
        self.close_code = None
        url, headers = self.url, {"Authorization": f"Bearer {self.token}"}
        if self.ticket:
            url, headers = f"{self.url}?ticket={await self._new_ticket()}", {}
        self.ws = await websockets.connect(
            url,
            additional_headers=headers,
            max_size=2**20,
            open_timeout=self.turn_timeout,
            # keep reading while the picker "thinks": a full queue would stop the reads that
            # answer keepalive pings, and the connection would be dropped
            max_queue=None,
        )
        await self.send_json(
            {
                "type": "hello",
                "protocol": 1,
                "device": self.device,
                "locale": self.locale,
                "audio": {"encoding": "pcm_s16le", "sample_rate": self.sample_rate},
            }
        )

    async def _new_ticket(self) -> str:
        base = self.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        base = base.split("/ws/", 1)[0]
        async with httpx.AsyncClient(base_url=base, timeout=self.turn_timeout) as http:
            response = await http.post(
                "/api/v1/auth/ticket", headers={"Authorization": f"Bearer {self.token}"}
            )
            response.raise_for_status()
            ticket: str = response.json()["ticket"]
            return ticket

    async def say(self, text: str) -> Exchange:
        """A typed answer (keypad, scanner): handled by the server like speech."""
        await self.send_json({"type": "say", "text": text})
        return await self._exchange(time.perf_counter(), expect=("text", text))

    async def speak(self, pcm: np.ndarray, *, realtime: bool = False) -> Exchange:
        """Send an utterance (int16 at the session rate) as microphone audio in 20 ms
        chunks, followed by silence so the server hears it end, while listening for the
        answer; the turn is timed from the end of the speech."""
        chunk = self.sample_rate * CHUNK_MS // 1000
        silence = np.zeros(self.sample_rate * TRAILING_QUIET_MS // 1000, np.int16)
        samples = np.concatenate([pcm.astype(np.int16), silence])
        speech_ended = asyncio.get_running_loop().create_future()

        async def microphone() -> None:
            assert self.ws is not None
            for offset in range(0, len(samples), chunk):
                if offset >= len(pcm) and not speech_ended.done():
                    speech_ended.set_result(time.perf_counter())
                await self.ws.send(samples[offset : offset + chunk].tobytes())
                if realtime:
                    await asyncio.sleep(CHUNK_MS / 1000)

        sending = asyncio.create_task(microphone())
        turn = await self._exchange(time.perf_counter(), expect=("speech", None))
        await sending
        if turn.latency_s is not None and turn.first_audio_at is not None:
            turn.latency_s = turn.first_audio_at - speech_ended.result()
        return turn

    async def send_json(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.send_json({"type": "bye"})
            await self.ws.close()

    async def drop(self) -> None:
        """Lose the connection without a goodbye, as a headset walking out of Wi-Fi would."""
        if self.ws is not None:
            await self.ws.close()

    async def _next_json(self, kind: str) -> dict[str, Any]:
        assert self.ws is not None
        async with asyncio.timeout(self.turn_timeout):
            while True:
                message = await self.ws.recv()
                if isinstance(message, str):
                    frame: dict[str, Any] = json.loads(message)
                    if frame["type"] == kind:
                        return frame

    async def _exchange(self, started: float, *, expect: tuple[str, str | None] | None) -> Exchange:
        """Frames up to the first audio of the prompt that answers what was said (or the
        close). `expect` is the (source, text) of the answer's `heard` frame: turns of
        other answers still in flight (a stray noise, an earlier utterance) are passed."""
        assert self.ws is not None
        turn = Exchange()
        try:
            async with asyncio.timeout(self.turn_timeout):
                while True:
                    message = await self.ws.recv()
                    if isinstance(message, bytes):
                        if turn.prompt is not None:
                            turn.audio_bytes += len(message)
                            turn.first_audio_at = time.perf_counter()
                            turn.latency_s = turn.first_audio_at - started
                            return turn
                        continue  # the rest of an earlier prompt
                    frame = json.loads(message)
                    if frame["type"] == "heard" and expect and _answers(frame, expect):
                        turn.heard, turn.prompt = frame, None
                    elif frame["type"] == "prompt":
                        self.prompt = frame
                        if turn.heard or not expect:
                            turn.prompt = frame
                    elif frame["type"] == "error":
                        turn.errors.append(frame)
                        if not expect or turn.heard is None:
                            return turn
        except websockets.ConnectionClosed as closed:
            turn.closed = True
            self.close_code = closed.rcvd.code if closed.rcvd else None
        return turn


def _answers(heard: dict[str, Any], expect: tuple[str, str | None]) -> bool:
    source, text = expect
    return bool(heard.get("source") == source and (text is None or heard.get("text") == text))
