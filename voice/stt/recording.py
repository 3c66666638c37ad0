"""Recognising a whole recording (a file, a test clip): endpoint it as if it were streamed,
reject it when it holds no speech, and decode just the spoken part."""

from __future__ import annotations

import numpy as np

from voice.endpoint import EndpointSettings, utterances
from voice.level import normalize
from voice.stt.base import Recognizer, Result

PAD_MS = 300  # silence put around trimmed clips so the endpointer sees an onset


def speech_span(
    samples: np.ndarray, sample_rate: int, settings: EndpointSettings | None = None
) -> np.ndarray | None:
    """The part of a recording from the first utterance's start to the last one's end (with
    the endpointer's lead-in and a short tail), or None when it holds no speech.

    The recording is first brought to the level every utterance is heard at: a clip cut
    close to a quiet voice has no room tone to tell the endpointer how quiet the room is."""
    pad = np.zeros(sample_rate * PAD_MS // 1000, np.int16)
    samples = normalize(samples, sample_rate)
    padded = np.concatenate([pad, samples, pad])
    floor = quietest_frame_db(samples, sample_rate)
    found = utterances(padded, sample_rate, settings, noise_floor_db=floor)
    if not found:
        return None
    tail = sample_rate // 10
    start = int(found[0].start * sample_rate)
    end = min(len(padded), int(found[-1].end * sample_rate) + tail)
    return padded[start:end]


def quietest_frame_db(samples: np.ndarray, sample_rate: int) -> float | None:
    """Energy (dB) of the recording's quietest 20 ms that is not digital silence: the
    noise floor of the place it was recorded in."""
    frame = sample_rate // 50
    count = len(samples) // frame
    if count == 0:
        return None
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
    energies = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1.0)
    audible = energies[energies >= 20.0]
    return float(audible.min()) if len(audible) else None


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
