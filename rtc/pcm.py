"""Plain PCM in and out of a call, for a participant whose audio is not WebRTC: a headset
on a socket, bridged into a room by the server.

`PcmTrack` is an outgoing audio track fed with PCM as it arrives (the headset's
microphone), paced in 20 ms frames, silence when nothing came. `PcmMixer` takes the decoded
audio frames of the other participants and mixes them into chunks of PCM at one rate, for
a speaker that is not a browser.
"""

from __future__ import annotations

import asyncio
import fractions
from collections import deque
from collections.abc import AsyncIterator

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame
from av.audio.resampler import AudioResampler

FRAME_MS = 20
MAX_BUFFERED_S = 1.0  # more than this waiting is dropped, oldest first: a call stays live


class PacedPcmTrack(MediaStreamTrack):
    """An outgoing audio track of mono s16 at `sample_rate`, in 20 ms frames paced by the
    clock; each frame's samples come from `next_samples`."""

    kind = "audio"

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self.time_base = fractions.Fraction(1, sample_rate)
        self._started: float | None = None
        self._pts = 0

    def next_samples(self) -> np.ndarray:
        """The next frame's `frame_samples` samples (int16)."""
        raise NotImplementedError

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
        frame = AudioFrame.from_ndarray(
            self.next_samples().reshape(1, -1), format="s16", layout="mono"
        )
        frame.pts = self._pts
        frame.sample_rate = self.sample_rate
        frame.time_base = self.time_base
        return frame


class PcmTrack(PacedPcmTrack):
    """Mono s16 audio at `sample_rate`, pushed in any chunk size, sent as it comes
    (silence when nothing did)."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self._buffer = _Samples(int(sample_rate * MAX_BUFFERED_S))

    def push(self, pcm: np.ndarray | bytes) -> None:
        samples = np.frombuffer(pcm, "<i2") if isinstance(pcm, bytes) else pcm.astype("<i2")
        self._buffer.add(samples)

    def next_samples(self) -> np.ndarray:
        return self._buffer.take(self.frame_samples)


class PcmMixer:
    """The other participants' audio as one stream of mono s16 PCM at `sample_rate`:
    `add` each decoded frame as it arrives (any rate and layout), read `chunks`."""

    def __init__(self, sample_rate: int, chunk_ms: int = 60) -> None:
        self.sample_rate = sample_rate
        self.chunk_samples = sample_rate * chunk_ms // 1000
        self._sources: dict[str, tuple[AudioResampler, _Samples]] = {}
        self._closed = False

    def add(self, source: str, frame: AudioFrame) -> None:
        if source not in self._sources:
            resampler = AudioResampler(format="s16", layout="mono", rate=self.sample_rate)
            self._sources[source] = (resampler, _Samples(int(self.sample_rate * MAX_BUFFERED_S)))
        resampler, buffer = self._sources[source]
        for out in resampler.resample(frame):
            buffer.add(out.to_ndarray().reshape(-1))

    def remove(self, source: str) -> None:
        self._sources.pop(source, None)

    def close(self) -> None:
        self._closed = True

    async def chunks(self) -> AsyncIterator[bytes]:
        """One chunk per `chunk_ms`, in real time, while anyone has something to say
        (nothing is yielded during silence); ends at `close`."""
        loop = asyncio.get_running_loop()
        period = self.chunk_samples / self.sample_rate
        due = loop.time()
        while not self._closed:
            due += period
            await asyncio.sleep(max(0.0, due - loop.time()))
            waiting = [buffer for _, buffer in self._sources.values() if len(buffer)]
            if not waiting:
                continue
            mixed = np.zeros(self.chunk_samples, np.int32)
            for buffer in waiting:
                mixed += buffer.take(self.chunk_samples)
            yield np.clip(mixed, -32768, 32767).astype("<i2").tobytes()


class _Samples:
    """A bounded FIFO of int16 samples."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: deque[np.ndarray] = deque()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, samples: np.ndarray) -> None:
        self._parts.append(samples)
        self._count += len(samples)
        while self._count > self.limit and self._parts:
            self._count -= len(self._parts.popleft())

    def take(self, n: int) -> np.ndarray:
        """`n` samples, padded with silence when fewer are waiting."""
        out = np.zeros(n, "<i2")
        filled = 0
        while filled < n and self._parts:
            part = self._parts[0]
            used = min(n - filled, len(part))
            out[filled : filled + used] = part[:used]
            filled += used
            if used == len(part):
                self._parts.popleft()
            else:
                self._parts[0] = part[used:]
        self._count -= filled
        return out
