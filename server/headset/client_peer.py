"""The headset's side of WebRTC audio, as a program (tests, `bench/walk.py`): a peer
connection offered over the headset socket (`rtc_offer`), a microphone track that sends the
PCM it is given, and the prompts' audio received back as PCM at the session rate.

    peer = ClientPeer(8000, on_audio=print)
    await ws.send(json.dumps({"type": "rtc_offer", "sdp": await peer.offer()}))
    ...  # the rtc_answer frame
    await peer.accept(answer["sdp"])
    await peer.microphone.send(pcm)  # once the server says {"type":"rtc_state","state":"connected"}
"""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import Callable

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler

from rtc.tasks import stopped


class MicrophoneTrack(MediaStreamTrack):
    """Microphone audio as it is sent (`send`: int16 or s16le bytes at `sample_rate`),
    handed to the encoder as it comes; the sender paces it. While nothing is sent (the
    connection is not up) the last second waits, and older audio is dropped."""

    kind = "audio"

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.time_base = fractions.Fraction(1, sample_rate)
        self.samples_sent = 0
        self._frames: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=50)  # 1 s of 20 ms
        self._pts = 0

    async def send(self, pcm: bytes | np.ndarray) -> None:
        samples = np.frombuffer(pcm, "<i2") if isinstance(pcm, bytes) else pcm
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait(np.asarray(samples, np.int16))
        self.samples_sent += len(samples)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples = await self._frames.get()
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.pts, self._pts = self._pts, self._pts + len(samples)
        frame.sample_rate = self.sample_rate
        frame.time_base = self.time_base
        return frame


class ClientPeer:
    def __init__(
        self,
        sample_rate: int,
        *,
        on_audio: Callable[[np.ndarray], None] | None = None,
        configuration: RTCConfiguration | None = None,
    ) -> None:
        """`on_audio` is given the prompt audio received, as int16 at `sample_rate`."""
        self.sample_rate = sample_rate
        self.on_audio = on_audio
        self.microphone = MicrophoneTrack(sample_rate)
        self.pc = RTCPeerConnection(configuration or RTCConfiguration(iceServers=[]))
        self.pc.addTrack(self.microphone)
        self.samples_received = 0
        self._listening: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    async def offer(self) -> str:
        """The SDP offer, with every ICE candidate (the protocol has no trickle ICE)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))

    async def close(self) -> None:
        self.microphone.stop()
        if self._listening is not None:
            await stopped(self._listening)
        await self.pc.close()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._listening is None:
            self._listening = asyncio.create_task(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="mono", rate=self.sample_rate)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, AudioFrame)
            for part in resampler.resample(frame):
                samples = part.to_ndarray().reshape(-1)
                self.samples_received += len(samples)
                if self.on_audio is not None:
                    self.on_audio(samples)
