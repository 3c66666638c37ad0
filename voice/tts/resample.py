"""Sample-rate conversion of 16-bit mono PCM, with soxr.

espeak-ng renders at 22050 Hz; headsets ask for their own rate (16000 Hz usually, 8000 Hz on
narrowband devices, 48000 Hz from browsers).
"""

from __future__ import annotations

import numpy as np
import soxr


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Return `pcm` (s16le mono at `from_rate`) converted to `to_rate`."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if len(pcm) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    converted = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return np.asarray(converted, dtype="<i2").tobytes()
