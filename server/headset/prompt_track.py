"""Prompt audio as an outgoing WebRTC track: 20 ms frames at the session rate, paced by the
clock, silence between prompts. `play` queues one prompt and returns once its last frame has
gone to the encoder; cancelled (barge-in), the rest is dropped and silence follows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from rtc.pcm import PacedPcmTrack


@dataclass
class _Playback:
    samples: np.ndarray
    done: asyncio.Future[None]
    offset: int = 0


class PromptTrack(PacedPcmTrack):
    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self._playback: _Playback | None = None

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

    def stop(self) -> None:
        playback, self._playback = self._playback, None
        if playback is not None and not playback.done.done():
            playback.done.set_result(None)
        super().stop()

    def next_samples(self) -> np.ndarray:
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
