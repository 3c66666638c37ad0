"""Recognising a whole recording (a file, a test clip): endpoint it as if it were streamed,
reject it when it holds no speech, and decode just the spoken part."""

from __future__ import annotations

import numpy as np

from voice.endpoint import EndpointSettings, utterances
from voice.stt.base import Recognizer, Result

PAD_MS = 300  # room tone put around trimmed clips so the endpointer sees an onset
ROOM_TONE_GAIN = 1.0  # as loud as the quietest frame: quieter padding makes noise look like speech


def speech_span(
    samples: np.ndarray, sample_rate: int, settings: EndpointSettings | None = None
) -> np.ndarray | None:
    """The part of a recording from the first utterance's start to the last one's end (with
    the endpointer's lead-in and a short tail), or None when it holds no speech."""
    pad = room_tone(samples, sample_rate, sample_rate * PAD_MS // 1000)
    padded = np.concatenate([pad, samples.astype(np.int16), pad])
    found = utterances(padded, sample_rate, settings)
    if not found:
        return None
    tail = sample_rate // 10
    start = int(found[0].start * sample_rate)
    end = min(len(padded), int(found[-1].end * sample_rate) + tail)
    return padded[start:end]


def room_tone(samples: np.ndarray, sample_rate: int, length: int) -> np.ndarray:
    """`length` samples of noise as loud as the recording's quietest 20 ms: padding that is
    as loud as the place it was recorded in (silence for a clean clip, the hum level for a
    noisy one). Random, not a repeated frame, which would add a buzz."""
    frame = sample_rate // 50
    count = len(samples) // frame
    if count == 0:
        return np.zeros(length, np.int16)
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
    level = float(np.sqrt(np.min(np.mean(frames**2, axis=1))))
    noise = np.random.default_rng(count).standard_normal(length) * level * ROOM_TONE_GAIN
    return np.clip(np.round(noise), -32768, 32767).astype(np.int16)


def recognize_recording(
    recognizer: Recognizer,
    samples: np.ndarray,
    sample_rate: int,
    settings: EndpointSettings | None = None,
) -> Result:
    """Recognise one recording at `sample_rate` (the recogniser's rate)."""
    span = speech_span(samples, sample_rate, settings)
    if span is None:
        return Result.rejected(recognizer.name, "no speech")
    return recognizer.recognize(span)
