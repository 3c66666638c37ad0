"""How the headset session reads an utterance to decide it is a whole answer, with the
recogniser isolated (what it returns is given per grammar) and the real pick dialog over
an in-memory warehouse. The same reading over real audio is walked in tests/test_walk.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.headset.session import HeadsetSession
from tests.voice.test_dialog import mug, said, warehouse
from voice.dialog import PickDialog
from voice.grammar import Grammar
from voice.stt import Result


class Recogniser:
    """Answers each grammar with the reading given for its name's last part ("listening",
    or the digit count it was narrowed to), and remembers the grammars it was asked."""

    def __init__(self, readings: dict[str, tuple[tuple[str, ...], float, bool]]) -> None:
        self.readings = readings
        self.asked: list[Grammar] = []

    def recognize(self, audio: Any, grammar: Grammar, rate: int, operator: str) -> Result:
        self.asked.append(grammar)
        tokens, confidence, accepted = self.readings[grammar.name.rsplit(".", 1)[-1]]
        return Result(" ".join(tokens), tokens, confidence, "fake", accepted)


def session(recogniser: Recogniser) -> HeadsetSession:
    heard = HeadsetSession.__new__(HeadsetSession)  # no socket: only reading is under test
    heard.speech = recogniser  # type: ignore[assignment]
    heard.sample_rate, heard.operator = 8000, "picker"
    return heard


AUDIO = np.zeros(800, np.int16)


def test_digits_where_a_word_is_wanted_are_never_read_again_as_a_word() -> None:
    dialog = PickDialog(warehouse())
    dialog.start()  # "Say ready."
    recogniser = Recogniser({"listening": (("9", "2"), 0.9, True)})
    reading, whole = session(recogniser)._read(dialog, AUDIO)
    assert reading.tokens == ("9", "2") and whole  # whole, and refused by the dialog
    assert [g.name for g in recogniser.asked] == ["pick.assignment.listening"]
    assert not dialog.hear(reading.tokens, reading.confidence, reading.accepted).accepted


def test_check_digits_are_read_again_as_digits_of_the_lines_length() -> None:
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    assert len(mug().check_digits) == 2
    recogniser = Recogniser(
        {"listening": (("5", "7", "1"), 0.4, False), "2": (("5", "7"), 0.9, True)}
    )
    reading, whole = session(recogniser)._read(dialog, AUDIO)
    assert (reading.tokens, whole) == (("5", "7"), True)
    narrowed = recogniser.asked[-1]
    assert (narrowed.commands, narrowed.min_digits, narrowed.max_digits) == ((), 2, 2)


def test_only_a_reading_that_is_taken_ends_an_answer() -> None:
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    unsure_word = Recogniser({"listening": (("help",), 0.3, False)})
    assert session(unsure_word)._read(dialog, AUDIO)[1] is False
    unsure_digits = Recogniser(
        {"listening": (("2", "0"), 0.4, False), "2": (("2", "0"), 0.4, False)}
    )
    assert session(unsure_digits)._read(dialog, AUDIO)[1] is False
    part = Recogniser({"listening": (("5",), 0.9, True)})
    assert session(part)._read(dialog, AUDIO)[1] is False  # one of two check digits
    assert len(part.asked) == 1
