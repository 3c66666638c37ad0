"""Speech level: how loud an utterance is, and the one gain that brings it to the level the
recognisers were built for.

People are 30 dB apart on real headsets (a quiet voice, a boom mic at the chin, a cheap
earbud), and Whisper's log-mel input, its encoder frames and webrtcvad all change with
level: speakers 14-22 dB quieter than fsdd-dev's lost a third of their answers. So every
utterance is heard at one level before it is recognised, and so is every enrolled and
synthetic take it is matched against. The level is read off the utterance's loud frames
(its 90th-percentile 20 ms frame), so leading and trailing silence does not inflate it,
and the gain is bounded, so a burst of faint hiss is not blown up into a word.
"""

from __future__ import annotations

import numpy as np

from voice.audio import gain, to_int16

TARGET_DBFS = -16.0  # fsdd-dev's close-miked voices peak about here (90th-percentile frame)
MAX_GAIN_DB = 45.0  # speech peaking at -45 dBFS still reaches the target
MIN_GAIN_DB = -12.0
FULL_SCALE = 32768.0
DIGITAL_SILENCE_DBFS = -70.0  # frames below carry nothing (muted mic, zero padding)


def frame_levels_dbfs(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy of each 20 ms frame in dB relative to full scale."""
    frame = max(1, sample_rate // 50)
    count = len(samples) // frame
    if count == 0:
        return np.zeros(0)
    x = samples[: count * frame].astype(np.float64).reshape(count, frame) / FULL_SCALE
    return 10.0 * np.log10(np.mean(x * x, axis=1) + 1e-12)


def speech_level_dbfs(samples: np.ndarray, sample_rate: int) -> float | None:
    """The utterance's level: its 90th-percentile frame, in dBFS (None: digital silence)."""
    levels = frame_levels_dbfs(samples, sample_rate)
    audible = levels[levels > DIGITAL_SILENCE_DBFS]
    if len(audible) == 0:
        return None
    return float(np.percentile(audible, 90))


def normalize(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The utterance at `TARGET_DBFS` (gain bounded to -12..+45 dB). Idempotent: audio
    already within half a decibel of the target comes back as it is, so engines that
    share one utterance's encoding still see the same samples."""
    level = speech_level_dbfs(samples, sample_rate)
    if level is None:
        return to_int16(samples)
    gain_db = float(np.clip(TARGET_DBFS - level, MIN_GAIN_DB, MAX_GAIN_DB))
    if abs(gain_db) < 0.5:
        return to_int16(samples)
    return gain(samples, gain_db)
