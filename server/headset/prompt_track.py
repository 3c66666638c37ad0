"""Prompt audio as an outgoing WebRTC track: 20 ms frames at the session rate, paced by the
clock, silence between prompts. `play` queues one prompt and returns once its last frame has
gone to the encoder; cancelled (barge-in), the rest is dropped and silence follows."""

from __future__ import annotations

import asyncio
import fractions
from dataclasses import dataclass

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

FRAME_MS = 20


@dataclass
class _Playback:
    samples: np.ndarray
    done: asyncio.Future[None]
    offset: int = 0


class PromptTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self.time_base = fractions.Fraction(1, sample_rate)
        self._playback: _Playback | None = None
        self._started: float | None = None  # loop time of the first frame
        self._pts = 0

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        """Send one prompt's audio (s16le at the track's rate) at speaking speed; returns
        when it has all gone out, or when the track ends."""
        if sample_rate != self.sample_rate:
            raise ValueError(f"prompt audio at {sample_rate} Hz on a {self.sample_rate} Hz track")
        if self.readyState != "live":
            return
        done = asyncio.get_running_loop().create_future()
        playback = self._playback = _Playback(np.frombuffer(pcm, "<i2"), done)
        try:
            await done
        finally:
            if self._playback is playback:
                self._playback = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
        else:
            self._pts += self.frame_samples
            wait = self._started + self._pts / self.sample_rate - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = self._next_samples().reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.pts = self._pts
        frame.sample_rate = self.sample_rate
        frame.time_base = self.time_base
        return frame

    def stop(self) -> None:
        playback, self._playback = self._playback, None
        if playback is not None and not playback.done.done():
            playback.done.set_result(None)
        super().stop()

    def _next_samples(self) -> np.ndarray:
        """The next frame of the prompt playing (padded with silence), or silence."""
        out = np.zeros(self.frame_samples, "<i2")
        playback = self._playback
        if playback is None:
            return out
        part = playback.samples[playback.offset : playback.offset + self.frame_samples]
        out[: len(part)] = part
        playback.offset += len(part)
        if playback.offset >= len(playback.samples):
            self._playback = None
            if not playback.done.done():
                playback.done.set_result(None)
        return out
