"""How a walk went, answer by answer: what the picker said, every `heard` frame the server
sent back for it, and the counts the walk benchmark reports.

A spoken answer owns every speech `heard` frame that arrives from the moment its first
sample left the microphone until the next spoken answer starts: a late piece of an answer
that the endpointer cut in two lands on the next prompt, and is still that answer's piece.
Per heard frame of an answer (a frame may count under several names):

- fragment: not the answer's first heard frame, or its digits a strict part of the digits
  said ("five" of "five seven");
- not_understood: `accepted` false;
- misheard: accepted digits other than the digits said, and not a fragment;
- false_command: accepted, and a command word ("short", "sign off") where digits were said.

`right_first_time`: the answer's first heard frame is accepted and reads the digits said.
`extra_heard`: the fragments that are not an answer's first heard frame (the endpointer
cut the answer; a lone strict part may also be a word the recogniser dropped).
`unheard`: no heard frame at all (the endpointer never found the answer).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voice.grammar import DIGITS, load_vocabulary


@dataclass(frozen=True)
class HeardFrame:
    """A `heard` frame, when it arrived, and the dialog state it was heard in (the state of
    the last prompt before it)."""

    at: float
    text: str
    accepted: bool
    confidence: float
    source: str
    state: str


@dataclass
class WalkedAnswer:
    """One spoken answer: the prompt state it answers, the digits, its takes, when its
    first and last samples left the microphone, and what came back."""

    state: str
    digits: str
    takes: tuple[int, ...]
    level_db: float
    started: float
    ended: float
    heard: list[HeardFrame] = field(default_factory=list)
    latency_s: float | None = None  # last speech sample -> first audio of the next prompt

    def fragments(self) -> list[HeardFrame]:
        return [h for n, h in enumerate(self.heard) if self._fragment(n)]

    @property
    def right_first_time(self) -> bool:
        return bool(self.heard) and self.heard[0].accepted and digits(self.heard[0]) == self.digits

    def misheard(self) -> list[HeardFrame]:
        return [
            h
            for n, h in enumerate(self.heard)
            if h.accepted and digits(h) not in (None, self.digits) and not self._fragment(n)
        ]

    def false_commands(self) -> list[HeardFrame]:
        return [h for h in self.heard if h.accepted and command(h) is not None]

    def not_understood(self) -> list[HeardFrame]:
        return [h for h in self.heard if not h.accepted]

    def _fragment(self, n: int) -> bool:
        """The n-th heard frame is a piece: not the first, or a strict part of the digits."""
        read = digits(self.heard[n])
        part = read is not None and 0 < len(read) < len(self.digits) and read in self.digits
        return n > 0 or part

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "said": self.digits,
            "takes": list(self.takes),
            "level_db": self.level_db,
            "heard": [
                {"text": h.text, "accepted": h.accepted, "confidence": h.confidence, "in": h.state}
                for h in self.heard
            ],
            "latency_ms": None if self.latency_s is None else round(self.latency_s * 1000),
        }


def digits(heard: HeardFrame) -> str | None:
    """The digit string a heard frame reads ("five seven" -> "57"), or None."""
    vocabulary = load_vocabulary("en-US")
    tokens = [vocabulary.token_for(word) for word in heard.text.split()]
    if not tokens or not all(t in DIGITS for t in tokens):
        return None
    return "".join(t for t in tokens if t is not None)


def command(heard: HeardFrame) -> str | None:
    """The command a heard frame reads ("sign off" -> "sign_off"), or None."""
    token = load_vocabulary("en-US").token_for(heard.text)
    return token if token is not None and token not in DIGITS else None


COUNTS = (
    "answers",
    "right_first_time",
    "fragments",
    "answers_fragmented",
    "extra_heard",
    "misheard",
    "false_commands",
    "not_understood",
    "unheard",
)


def count(answers: list[WalkedAnswer]) -> dict[str, int]:
    """The counts of COUNTS over some answers."""
    return {
        "answers": len(answers),
        "right_first_time": sum(a.right_first_time for a in answers),
        "fragments": sum(len(a.fragments()) for a in answers),
        "answers_fragmented": sum(bool(a.fragments()) for a in answers),
        "extra_heard": sum(max(0, len(a.heard) - 1) for a in answers),
        "misheard": sum(len(a.misheard()) for a in answers),
        "false_commands": sum(len(a.false_commands()) for a in answers),
        "not_understood": sum(len(a.not_understood()) for a in answers),
        "unheard": sum(not a.heard for a in answers),
    }


def landed_in(frames: list[HeardFrame]) -> dict[str, int]:
    """How many of `frames` were heard in each dialog state."""
    return dict(sorted(Counter(h.state for h in frames).items()))


def percentiles_ms(values: list[float]) -> dict[str, int | None]:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    return {
        "p50": round(float(np.percentile(values, 50)) * 1000),
        "p95": round(float(np.percentile(values, 95)) * 1000),
        "n": len(values),
    }


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None
