"""Recognising a whole recording (a file, a test clip): endpoint it as if it were streamed,
reject it when it holds no speech, and decode just the spoken part."""

from __future__ import annotations

import numpy as np

from voice.endpoint import EndpointSettings, utterances
from voice.stt.base import Recognizer, Result

PAD_MS = 300  # room tone put around trimmed clips so the endpointer sees an onset


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
    """`length` samples of the recording's quietest 20 ms, repeated: padding that sounds like
    the place it was recorded in (silence for a clean clip, the hum for a noisy one)."""
    frame = sample_rate // 50
    count = len(samples) // frame
    if count == 0:
        return np.zeros(length, np.int16)
    frames = samples[: count * frame].astype(np.int16).reshape(count, frame)
    quietest = frames[int(np.argmin((frames.astype(np.float64) ** 2).sum(axis=1)))]
    return np.tile(quietest, length // frame + 1)[:length]


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
