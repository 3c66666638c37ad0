"""Synthetic media for tests, benchmarks and trying a room without a camera: a tone, a
solid colour, and frames that carry the moment they were made (for latency), with the
functions that read them back from decoded frames.

Tracks pace themselves in real time like a capture device.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms
VIDEO_CLOCK = 90000
STAMP_BITS = 32
STAMP_ROWS = 32  # the band at the top of a stamped frame that holds the time (2 block rows)


def _rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range, as libvpx and browsers use for yuv420p."""
    r, g, b = rgb
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return round(y), round(u), round(v)


class _Paced(MediaStreamTrack):
    def __init__(self, period: float) -> None:
        super().__init__()
        self._period = period
        self._start: float | None = None
        self._count = 0

    async def _next(self) -> int:
        """Wait for the next frame's time; its index."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self._count += 1
            wait = self._start + self._count * self._period - now
            if wait > 0:
                await asyncio.sleep(wait)
        return self._count


class ToneTrack(_Paced):
    """A sine tone of `frequency` Hz: 48 kHz mono 16-bit frames of 20 ms."""

    kind = "audio"

    def __init__(self, frequency: float, amplitude: float = 0.3) -> None:
        super().__init__(AUDIO_SAMPLES / AUDIO_RATE)
        self.frequency = frequency
        self._amplitude = amplitude
        self._time_base = fractions.Fraction(1, AUDIO_RATE)

    async def recv(self) -> AudioFrame:
        index = await self._next()
        start = index * AUDIO_SAMPLES
        t = (np.arange(AUDIO_SAMPLES) + start) / AUDIO_RATE
        samples = self._amplitude * 32767 * np.sin(2 * math.pi * self.frequency * t)
        frame = AudioFrame.from_ndarray(
            samples.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = self._time_base
        return frame


class ColorTrack(_Paced):
    """Frames of one colour, `width`×`height` at `fps`. With `stamped`, the top rows hold
    the monotonic clock (ms, 32 bits) of the moment each frame was made."""

    kind = "video"

    def __init__(
        self,
        rgb: tuple[int, int, int],
        *,
        width: int = 160,
        height: int = 120,
        fps: float = 15,
        stamped: bool = False,
    ) -> None:
        super().__init__(1 / fps)
        if width % (STAMP_BITS // 2) or width < 64 or height < 2 * STAMP_ROWS or height % 2:
            raise ValueError(f"cannot make {width}x{height} frames")
        self.rgb = rgb
        self.stamped = stamped
        self._fps = fps
        y, u, v = _rgb_to_yuv(rgb)
        self._planes = np.empty((height * 3 // 2, width), dtype=np.uint8)
        self._planes[:height] = y
        chroma = self._planes[height:].reshape(2, height // 2, width // 2)  # U then V rows
        chroma[0], chroma[1] = u, v
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK)

    async def recv(self) -> VideoFrame:
        index = await self._next()
        planes = self._planes
        if self.stamped:
            planes = planes.copy()
            _stamp(planes, now_ms())
        frame = VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = round(index * VIDEO_CLOCK / self._fps)
        frame.time_base = self._time_base
        return frame


def now_ms() -> int:
    """The clock stamped frames carry: monotonic (one clock for every process on a
    machine), in ms, 32 bits."""
    return time.monotonic_ns() // 1_000_000 % (1 << STAMP_BITS)


def _stamp(planes: np.ndarray, value: int) -> None:
    """Write `value` as two rows of 16 black/white blocks into the luma's top band."""
    width = planes.shape[1]
    block = width // (STAMP_BITS // 2)
    rows = STAMP_ROWS // 2
    for bit in range(STAMP_BITS):
        row, column = divmod(bit, STAMP_BITS // 2)
        shade = 235 if value >> (STAMP_BITS - 1 - bit) & 1 else 16
        planes[row * rows : (row + 1) * rows, column * block : (column + 1) * block] = shade


def read_stamp(frame: VideoFrame) -> int:
    """The clock value a stamped frame carries (sampled in the middle of each block)."""
    luma = frame.to_ndarray(format="yuv420p")[: frame.height]
    width = luma.shape[1]
    block = width // (STAMP_BITS // 2)
    rows = STAMP_ROWS // 2
    value = 0
    for bit in range(STAMP_BITS):
        row, column = divmod(bit, STAMP_BITS // 2)
        centre = luma[row * rows + rows // 2, column * block + block // 2]
        value = value << 1 | int(centre > 128)
    return value


def mean_rgb(frame: VideoFrame) -> tuple[int, int, int]:
    """The average colour of a decoded frame's lower half (below any stamp)."""
    rgb = frame.to_ndarray(format="rgb24")[frame.height // 2 :]
    r, g, b = (int(c) for c in rgb.reshape(-1, 3).mean(axis=0))
    return r, g, b


def dominant_frequency(frame: AudioFrame) -> float:
    """The strongest frequency (Hz) in a decoded audio frame (first channel)."""
    samples = frame.to_ndarray()
    if frame.format.is_planar:
        mono = samples[0]
    else:
        channels = len(frame.layout.channels)
        mono = samples.reshape(-1)[::channels]
    mono = mono.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * frame.sample_rate / len(mono))
