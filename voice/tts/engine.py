"""Speech engines: the `SpeechEngine` shape, and the rules for sharing libespeak-ng.

libespeak-ng keeps one synthesizer per process: voice, rate, output mode and the audio
callback are all global to the library. So every call into it goes through `ESPEAK_LOCK`, and
only one way of driving it (the direct `EspeakEngine`, or pyttsx3's espeak driver) may
initialise it in a process; `claim_espeak` enforces that with a clear error.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from voice.tts.voices import Voice

ESPEAK_LOCK = threading.Lock()
"""Serialises all calls into libespeak-ng in this process (it is a process-wide singleton)."""

_espeak_owner: str | None = None


class SynthesisFailed(RuntimeError):
    """The engine could not render a prompt; the message names the voice and the cause."""


@dataclass(frozen=True)
class Rendering:
    """Audio as an engine produced it: PCM s16le mono at the engine's own sample rate."""

    pcm: bytes
    sample_rate: int


class SpeechEngine(Protocol):
    """What the synthesizer needs from an engine. `name` goes into cache keys."""

    name: str

    def render(self, text: str, voice: Voice) -> Rendering:
        """Synthesize `text` with `voice`; blocking; may be called from any thread."""
        ...


def claim_espeak(driver: str) -> None:
    """Record that `driver` initialises libespeak-ng here; refuse a second, different driver.

    Call with `ESPEAK_LOCK` held. The two drivers initialise the library in incompatible
    output modes, and the second initialisation would silently break the first.
    """
    global _espeak_owner
    if _espeak_owner not in (None, driver):
        raise SynthesisFailed(
            f"libespeak-ng in this process is already driven by {_espeak_owner}; "
            f"use one engine kind per process, not {_espeak_owner} and {driver}"
        )
    _espeak_owner = driver
