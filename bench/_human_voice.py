"""Spoken digit answers in a human voice: takes of one fsdd-dev speaker, one recording per
digit, joined as a picker says a digit string on a cheap headset.

Each take is trimmed to its speech (the endpointer's span, then the edges quieter than
`EDGE_DB` below the take's loudest 10 ms, and what lies past a quiet longer than a word
holds), so `gap_ms` is the pause actually left between
two words; the joined answer is scaled by `gain_db`, because fsdd-dev's close-miked voices
are 14-22 dB louder than people on the floor. Takes 0-2 of every digit are kept for
enrollment and never spoken here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from voice.audio import load
from voice.stt.recording import speech_span

ANSWER_TAKES = range(3, 50)
FLOOR_DBFS = -60.0  # a quiet headset microphone's own noise
EDGE_DB = 40.0
EDGE_FRAME_MS = 10
MAX_QUIET_IN_WORD_MS = 200


@dataclass(frozen=True)
class SpokenAnswer:
    """One answer as it goes into the microphone, and what it is made of."""

    digits: str
    samples: np.ndarray  # int16 at the voice's rate, gain applied
    takes: tuple[int, ...]

    @property
    def level_db(self) -> float:
        """RMS of the spoken parts in dB re 1 LSB (gaps left out), to compare with how
        loud people are on the floor."""
        voiced = self.samples[np.abs(self.samples) > 0].astype(np.float64)
        return round(10 * float(np.log10(np.mean(voiced**2) + 1.0)), 1) if len(voiced) else 0.0


class HumanVoice:
    """``HumanVoice(fsdd, "lucas", 8000, gap_ms=150, gain_db=-25).say("57", rng)``."""

    def __init__(
        self, folder: Path, speaker: str, rate: int, *, gap_ms: int, gain_db: float
    ) -> None:
        if not any(folder.glob(f"*_{speaker}_*.wav")):
            raise FileNotFoundError(f"no recordings of {speaker!r} in {folder}")
        self.folder = folder
        self.speaker = speaker
        self.rate = rate
        self.gap = np.zeros(rate * gap_ms // 1000, np.int16)
        self.gain = 10 ** (gain_db / 20)

    def say(self, digits: str, rng: random.Random) -> SpokenAnswer:
        """The digits one by one, each from a take chosen by `rng` (takes without speech
        are passed over)."""
        parts: list[np.ndarray] = []
        takes: list[int] = []
        for n, digit in enumerate(digits):
            take, samples = self._take(digit, rng)
            parts += [self.gap, samples] if n else [samples]
            takes.append(take)
        joined = np.concatenate(parts).astype(np.float64) * self.gain
        audio = np.clip(np.round(joined), -32768, 32767).astype(np.int16)
        return SpokenAnswer(digits, audio, tuple(takes))

    def _take(self, digit: str, rng: random.Random) -> tuple[int, np.ndarray]:
        for take in rng.sample(ANSWER_TAKES, len(ANSWER_TAKES)):
            samples = _trimmed(self.folder / f"{digit}_{self.speaker}_{take}.wav", self.rate)
            if samples is not None:
                return take, samples
        raise ValueError(f"no take of {digit} by {self.speaker} holds speech")


def over_the_floor(spoken: np.ndarray, rate: int, noise: np.random.Generator) -> np.ndarray:
    """An answer as the headset's microphone gives it: 200 ms of quiet either side, and a
    white floor at `FLOOR_DBFS` under all of it."""
    quiet = np.zeros(rate // 5, np.int16)
    padded = np.concatenate([quiet, spoken, quiet])
    heard = padded + noise.normal(0, 32768 * 10 ** (FLOOR_DBFS / 20), len(padded))
    return np.clip(np.round(heard), -32768, 32767).astype(np.int16)


@cache
def _trimmed(path: Path, rate: int) -> np.ndarray | None:
    """The take at `rate`, from where its speech starts to where it ends; None without
    speech (shared read-only by every voice: treat as immutable)."""
    span = speech_span(load(path, rate), rate)
    if span is None:
        return None
    frame = rate * EDGE_FRAME_MS // 1000
    count = len(span) // frame
    energy = span[: count * frame].astype(np.float64).reshape(count, frame)
    level = 10 * np.log10(np.mean(energy**2, axis=1) + 1.0)
    loud = np.flatnonzero(level >= level.max() - EDGE_DB)
    # a word holds no long quiet: past one, what is left is a click or a breath
    # (take 9 of lucas's "zero" ends in 0.6 s of digital silence and a click)
    parts = np.split(
        loud, np.flatnonzero(np.diff(loud) > MAX_QUIET_IN_WORD_MS // EDGE_FRAME_MS) + 1
    )
    word = next(part for part in parts if np.argmax(level) in part)
    trimmed = span[word[0] * frame : (word[-1] + 1) * frame]
    trimmed.flags.writeable = False
    return trimmed
