"""A headset microphone over the socket: 20 ms PCM frames paced by the clock from the moment
it is switched on until it is switched off, a quiet noise floor under everything, and the
picker's speech mixed in when they talk.

A real microphone never stops between answers, so the server's endpointer has to find each
answer in one continuous stream, over a floor that is never digital silence; the times
taken here (when the first and last speech samples left) are what turn latency is measured
from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

FRAME_MS = 20
FULL_SCALE = 32768.0
# Paul Kellet's pink (1/f) filter: three poles and zeros, within 0.5 dB over the audio band
PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


class NoiseFloor:
    """Stationary noise at `dbfs` RMS (re full scale), white or pink, generated frame by
    frame with a seeded generator (the filter's state runs on, so frames join smoothly)."""

    def __init__(self, dbfs: float, colour: str = "pink", seed: int = 0) -> None:
        if colour not in ("white", "pink"):
            raise ValueError(f"noise colour must be white or pink, not {colour!r}")
        self.rng = np.random.default_rng(seed)
        self.colour = colour
        level = FULL_SCALE * 10 ** (dbfs / 20)
        if colour == "pink":
            impulse = lfilter(PINK_B, PINK_A, np.eye(1, 50_000)[0])
            level /= float(np.sqrt(np.sum(impulse**2)))
            self._state = np.zeros(len(PINK_A) - 1)
        self.sigma = level

    def next(self, count: int) -> np.ndarray:
        """The next `count` samples (float, not yet rounded)."""
        white = self.rng.normal(0.0, self.sigma, count)
        if self.colour == "white":
            return white
        pink, self._state = lfilter(PINK_B, PINK_A, white, zi=self._state)
        return np.asarray(pink)


@dataclass(frozen=True)
class Spoken:
    """When an utterance went out: the frames holding its first and last samples were sent
    at these `time.perf_counter()` times."""

    started: float
    ended: float


@dataclass
class _Utterance:
    samples: np.ndarray
    done: asyncio.Future[Spoken]
    offset: int = 0
    started: float | None = None


class Microphone:
    """``mic = Microphone(ws.send, 8000, NoiseFloor(-60))``; run ``mic.run()`` as a task;
    ``await mic.say(samples)`` returns once the last sample has been sent; ``mic.stop()``."""

    def __init__(
        self, send: Callable[[bytes], Awaitable[None]], rate: int, floor: NoiseFloor
    ) -> None:
        self.send = send
        self.rate = rate
        self.floor = floor
        self.frame = rate * FRAME_MS // 1000
        self.frames_sent = 0
        self._speech: _Utterance | None = None
        self._stopped = False

    async def run(self) -> None:
        """Send frames until stopped, on a fixed schedule: a late frame is sent at once and
        the next ones catch up, as a buffered microphone's would. An utterance still being
        said when the stream ends (stopped, or the socket closed) fails with
        ConnectionError."""
        origin = time.perf_counter()
        try:
            while not self._stopped:
                delay = origin + self.frames_sent * FRAME_MS / 1000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._send_frame()
        finally:
            self._stopped = True
            if self._speech is not None and not self._speech.done.done():
                self._speech.done.set_exception(ConnectionError("the microphone stopped"))

    async def say(self, samples: np.ndarray) -> Spoken:
        """Mix `samples` (int16 at the microphone's rate) into the next frames."""
        if self._speech is not None:
            raise RuntimeError("the picker is already talking")
        if self._stopped:
            raise ConnectionError("the microphone is off")
        done: asyncio.Future[Spoken] = asyncio.get_running_loop().create_future()
        self._speech = _Utterance(samples.astype(np.float64), done)
        try:
            return await done
        finally:
            self._speech = None

    def stop(self) -> None:
        self._stopped = True

    async def _send_frame(self) -> None:
        samples = self.floor.next(self.frame)
        speech = self._speech
        if speech is not None:
            part = speech.samples[speech.offset : speech.offset + self.frame]
            samples[: len(part)] += part
            speech.offset += len(part)
        await self.send(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())
        self.frames_sent += 1
        if speech is not None:
            at = time.perf_counter()
            speech.started = speech.started or at
            if speech.offset >= len(speech.samples) and not speech.done.done():
                speech.done.set_result(Spoken(speech.started, at))
