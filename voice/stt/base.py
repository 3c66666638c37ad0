"""The recogniser interface every engine implements, and the `Result` it returns."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from voice.grammar import Grammar
from voice.level import normalize

A = TypeVar("A")
B = TypeVar("B")


@dataclass(frozen=True)
class Alternative:
    """Another reading of the same utterance, with its confidence (0..1)."""

    tokens: tuple[str, ...]
    text: str
    confidence: float


@dataclass(frozen=True)
class Result:
    """What a recogniser heard.

    `tokens` are canonical grammar tokens (["5", "7"], ["say_again"]); `text` is their
    spoken form in the grammar's locale. `accepted` is False when the utterance is not in
    the grammar, is non-speech, or the confidence is below the engine's threshold: the
    dialog then re-prompts and never changes inventory. `final` is False for partials.
    """

    text: str
    tokens: tuple[str, ...]
    confidence: float
    engine: str
    accepted: bool
    alternatives: tuple[Alternative, ...] = ()
    final: bool = True
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def rejected(cls, engine: str, reason: str, final: bool = True) -> Result:
        return cls("", (), 0.0, engine, False, final=final, details={"reason": reason})

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "confidence": round(self.confidence, 4),
            "accepted": self.accepted,
            "engine": self.engine,
            "alternatives": [
                {"text": a.text, "tokens": list(a.tokens), "confidence": round(a.confidence, 4)}
                for a in self.alternatives
            ],
        }


def expecting(result: Result, expected: tuple[str, ...], weight: float, text: str) -> Result:
    """`result` weighed knowing which answer the picker most likely gave: the answer the
    line expects (`text` is how it is said) counts `weight` times against everything else
    the engines heard in the same utterance. Its share of the reading (as the top reading
    or an alternative) becomes ``weight * p / (weight * p + 1 - p)``; when that is at least
    one half, the expected answer is the reading, taken at that confidence. Otherwise, or
    when the engines took it already, the reading is left as the engines made it.

    A picker says the check digits or the quantity asked for almost every time, so a
    reading the engines split about evenly, or leaned to without either engine taking it,
    is most likely that answer, and a re-prompt for it is a turn lost. Other answers are
    then sometimes taken as the expected one: `weight` is bounded by how often
    (bench/expected_answer.py chooses it leaving one speaker out)."""
    if result.tokens == expected:
        share = result.confidence
    else:
        share = next((a.confidence for a in result.alternatives if a.tokens == expected), 0.0)
    if share <= 0.0 or weight <= 1.0:
        return result
    weighed = weight * share / (weight * share + 1.0 - min(share, 1.0))
    if weighed < 0.5 or (result.tokens == expected and result.accepted):
        return result
    others = tuple(a for a in result.alternatives if a.tokens != expected)
    if result.tokens != expected and result.tokens:
        others = (Alternative(result.tokens, result.text, result.confidence), *others)
    return Result(
        text=text,
        tokens=expected,
        confidence=weighed,
        engine=result.engine,
        accepted=True,
        alternatives=others,
        details={**result.details, "expected": {"share": share, "weight": weight}},
    )


class NotWanted(Exception):
    """A reading was stopped because it was no longer wanted (see `reading_while`)."""


_reading = threading.local()
# The threads a reading side by side takes its second engine to. Two: a fused reading with
# an operator's profile is fused twice (their templates, the synthetic voices'), and every
# engine but the first of each goes here.
_ALONGSIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reading-alongside")


@contextmanager
def reading_while(
    wanted: Callable[[], bool] | None, *, side_by_side: bool = False
) -> Iterator[None]:
    """Readings in this thread raise `NotWanted` instead of decoding once `wanted` says no,
    checked before each engine decodes: a reading at a pause the picker has already spoken
    on from can end nothing, and a fused reading is several engines' work one after the
    other, so most of it is saved.

    With `side_by_side`, a fused reading runs its engines at once, on another core
    (`both`): for whoever schedules readings to say when a core is idle, as the engines
    side by side cost the same CPU and end sooner, but a reading stopped midway has then
    done both engines' work."""
    before = getattr(_reading, "wanted", None), getattr(_reading, "side_by_side", False)
    _reading.wanted, _reading.side_by_side = wanted, side_by_side
    try:
        yield
    finally:
        _reading.wanted, _reading.side_by_side = before


def check_wanted() -> None:
    """Raise `NotWanted` if the reading in this thread is no longer wanted."""
    wanted = getattr(_reading, "wanted", None)
    if wanted is not None and not wanted():
        raise NotWanted


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Two engines' parts of one reading: one after the other, or, when the reading may go
    `side_by_side`, `second` on another thread while `first` runs on this one (both under
    this reading's `wanted`). The engines' heavy work (CTranslate2, numpy) leaves the
    interpreter free, so the two take about as long as the longer one."""
    if not getattr(_reading, "side_by_side", False):
        done = first()
        return done, second()
    wanted = getattr(_reading, "wanted", None)

    def second_in_this_reading() -> B:
        with reading_while(wanted):
            return second()

    pending = _ALONGSIDE.submit(second_in_this_reading)
    try:
        done = first()
    finally:
        wait([pending])  # never leave it running into the next reading
    return done, pending.result()


class Recognizer(Protocol):
    """One audio stream's recogniser, constrained to one grammar.

    Feed mono PCM s16le (bytes) or int16 samples at `sample_rate` with `accept_audio`, in
    chunks of any size; it returns a partial `Result` when it has one. `final()` ends the
    utterance and returns the final `Result`; the recogniser is then ready for the next
    utterance. `recognize()` is the one-shot form for a whole utterance. Blocking calls:
    run them off the event loop.
    """

    name: str
    grammar: Grammar
    sample_rate: int

    def accept_audio(self, pcm: bytes | np.ndarray) -> Result | None: ...

    def final(self) -> Result: ...

    def reset(self) -> None: ...

    def recognize(self, pcm: bytes | np.ndarray) -> Result: ...


class BufferedRecognizer:
    """Base for engines that decode a whole utterance at once: buffers the stream, and
    hands `decode` the utterance at one level (`voice.level`), however loud it was said."""

    name = "buffered"

    def __init__(self, grammar: Grammar, sample_rate: int) -> None:
        self.grammar = grammar
        self.sample_rate = sample_rate
        self._chunks: list[np.ndarray] = []

    def accept_audio(self, pcm: bytes | np.ndarray) -> Result | None:
        samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
        self._chunks.append(np.asarray(samples, dtype=np.int16).copy())
        return None

    def final(self) -> Result:
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self.reset()
        check_wanted()
        return self.decode(normalize(audio, self.sample_rate))

    def reset(self) -> None:
        self._chunks = []

    def recognize(self, pcm: bytes | np.ndarray) -> Result:
        self.reset()
        self.accept_audio(pcm)
        return self.final()

    def decode(self, audio: np.ndarray) -> Result:
        raise NotImplementedError


def softmax_confidences(scores: Sequence[float], temperature: float) -> list[float]:
    """Turn costs (lower is better) into probabilities that sum to 1."""
    if not scores:
        return []
    best = min(scores)
    weights = [math.exp(-(s - best) / temperature) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]
