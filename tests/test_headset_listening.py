"""How the headset conversation reads an utterance to decide it is a whole answer, with the
recogniser isolated (what it returns is given per grammar) and the real pick dialog over
an in-memory warehouse. The same reading over real audio is walked in tests/test_walk.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from anyio import CapacityLimiter

from server.headset.conversation import Conversation, HeadsetMessage, Utterance
from server.headset.protocol import message_frame
from server.headset.snapshots import MemorySnapshots
from tests.conftest import FSDD, require_service
from tests.voice.test_dialog import mug, said, warehouse
from voice.audio import load
from voice.dialog import PickDialog
from voice.endpoint import LIVE_ANSWERS, Endpointer
from voice.grammar import Grammar
from voice.stt import NotWanted, Result
from voice.stt.combined import fuse


class Recogniser:
    """Answers each grammar with the reading given for its name's last part ("listening",
    or the digit count it was narrowed to), and remembers the grammars it was asked."""

    def __init__(self, readings: dict[str, tuple[tuple[str, ...], float, bool]]) -> None:
        self.readings = readings
        self.asked: list[Grammar] = []

    def recognize(
        self, audio: Any, grammar: Grammar, rate: int, operator: str, wanted: Any = None
    ) -> Result:
        if wanted is not None and not wanted():
            raise NotWanted
        self.asked.append(grammar)
        tokens, confidence, accepted = self.readings[grammar.name.rsplit(".", 1)[-1]]
        return Result(" ".join(tokens), tokens, confidence, "fake", accepted)

    def readers(self) -> CapacityLimiter:
        return CapacityLimiter(4)


class Headset:
    """What the conversation tells the headset, kept as the socket's frames."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def tell(self, event: HeadsetMessage) -> None:
        frame = message_frame(event)
        if frame is not None:
            self.frames.append(frame)


class Speaker:
    """Prompt audio, played nowhere."""

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        pass


class Speech(Recogniser):
    """A recogniser as above that also speaks (silence: only the frames are looked at)."""

    def synthesize(self, text: str, locale: str, sample_rate: int) -> bytes:
        return bytes(sample_rate // 50)


def conversation(recogniser: Recogniser, dialog: PickDialog | None = None) -> Conversation:
    heard = Conversation(
        Headset(),
        Speaker(),
        operator="picker",
        speech=recogniser,  # type: ignore[arg-type]
        open_work=lambda operator: warehouse(),
        snapshots=MemorySnapshots(),
    )
    heard.sample_rate, heard.dialog = 8000, dialog
    return heard


AUDIO = np.zeros(800, np.int16)


async def stream(heard: Conversation, samples: np.ndarray) -> None:
    """The microphone, in 20 ms frames; each reading at a pause is done before the next."""
    frame = heard.sample_rate // 50
    for start in range(0, len(samples), frame):
        await heard.hear_audio(samples[start : start + frame].tobytes())
        await asyncio.gather(*heard._background)


def quiet(seconds: float, rate: int = 8000) -> np.ndarray:
    return np.zeros(int(rate * seconds), np.int16)


def test_digits_where_a_word_is_wanted_are_never_read_again_as_a_word() -> None:
    dialog = PickDialog(warehouse())
    dialog.start()  # "Say ready."
    recogniser = Recogniser({"listening": (("9", "2"), 0.9, True)})
    reading, whole = conversation(recogniser)._read(dialog, AUDIO)
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
    reading, whole = conversation(recogniser)._read(dialog, AUDIO)
    assert (reading.tokens, whole) == (("5", "7"), True)
    narrowed = recogniser.asked[-1]
    assert (narrowed.commands, narrowed.min_digits, narrowed.max_digits) == ((), 2, 2)


def test_a_sure_reading_of_the_lines_length_is_not_read_again() -> None:
    """Check digits read alike by the engines (0.95) at the line's length are the answer;
    read unsure (0.6), or as three digits, they are read again at two."""
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    for confidence, again in ((0.95, False), (0.6, True)):
        recogniser = Recogniser(
            {"listening": (("5", "7"), confidence, True), "2": (("5", "7"), 0.9, True)}
        )
        reading, whole = conversation(recogniser)._read(dialog, AUDIO)
        assert (reading.tokens, whole) == (("5", "7"), True)
        assert len(recogniser.asked) == (2 if again else 1), (confidence, recogniser.asked)
    three = Recogniser({"listening": (("5", "7", "1"), 0.95, True), "2": (("5", "7"), 0.9, True)})
    conversation(three)._read(dialog, AUDIO)
    assert [g.name for g in three.asked] == ["pick.location.listening", "pick.location.2"]


class Fused(Recogniser):
    """The templates read `word`, the general engine `digits`: fused as `auto` fuses them."""

    def __init__(self, word: str, digits: tuple[str, ...]) -> None:
        super().__init__({})
        self.fused = fuse(
            Result(word, (word,), 0.8, "templates", True),
            Result(" ".join(digits), digits, 0.2, "whisper", False),
            1.0,
            0.5,
            "fusion",
        )

    def recognize(self, *args: Any, **kwargs: Any) -> Result:
        return self.fused


def test_a_word_an_engine_read_as_the_lines_check_digits_is_refused() -> None:
    """Check digits said close together, matched by the templates against "skip slot"
    while Whisper read two digits: not skipped, not a whole answer, said again."""
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    reading, whole = conversation(Fused("skip_slot", ("5", "7")))._read(dialog, AUDIO)
    assert reading.tokens == ("skip_slot",) and not reading.accepted and not whole
    assert not dialog.hear(reading.tokens, reading.confidence, reading.accepted).accepted
    assert dialog.state.name == "location"
    other_shape = conversation(Fused("skip_slot", ("5", "7", "1", "2")))._read(dialog, AUDIO)
    assert other_shape[0].accepted and other_shape[1]  # four digits are no check digits


def test_only_a_reading_that_is_taken_ends_an_answer() -> None:
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    unsure_word = Recogniser({"listening": (("help",), 0.3, False)})
    assert conversation(unsure_word)._read(dialog, AUDIO)[1] is False
    unsure_digits = Recogniser(
        {"listening": (("2", "0"), 0.4, False), "2": (("2", "0"), 0.4, False)}
    )
    assert conversation(unsure_digits)._read(dialog, AUDIO)[1] is False
    part = Recogniser({"listening": (("5",), 0.9, True)})
    assert conversation(part)._read(dialog, AUDIO)[1] is False  # one of two check digits
    assert len(part.asked) == 1


def test_a_reading_no_longer_wanted_is_not_made() -> None:
    """A read queued at a pause the picker has since spoken on from could end nothing:
    it is not made, nor its second pass once the picker speaks on between the two."""
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    recogniser = Recogniser({"listening": (("5", "7"), 0.6, True), "2": (("5", "7"), 0.9, True)})
    heard = conversation(recogniser)
    assert heard._read(dialog, AUDIO, lambda: False) is None
    assert recogniser.asked == []
    answers = iter([True, False])  # still paused for the first pass, not for the second
    assert heard._read(dialog, AUDIO, lambda: next(answers)) is None
    assert [g.name for g in recogniser.asked] == ["pick.location.listening"]


@pytest.fixture
def fsdd() -> Path:
    if not FSDD.is_dir():
        require_service("the human recordings of fsdd-dev", f"not found at {FSDD}")
    return FSDD


@pytest.mark.parametrize(("gap_s", "answers_turn"), [(0.75, 0), (1.4, 1)])
def test_speech_right_after_an_unsure_answer_ended_is_that_answer_going_on(
    fsdd: Path, gap_s: float, answers_turn: int
) -> None:
    """ "five seven" read unsure at a pause (not the line's "5 7") ends after 480 ms of
    quiet, longer than a pause inside an answer. "two", starting 750 ms after "seven"
    (a 300 ms pause of a quiet voice is heard as that long), began 270 ms after the answer
    was ended: the picker could not have heard the next prompt yet, so it is that answer
    going on, not the next one (it used to begin the next answer, and every serial after
    it was heard a digit late). Said 1.4 s after "seven", it answers the new prompt."""
    rate = 8000
    five, seven, two = (load(fsdd / f"{d}_jackson_9.wav", rate) for d in "572")
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    heard = conversation(
        Recogniser({"listening": (("9", "7"), 0.52, True), "2": (("9", "7"), 0.52, True)}),
        dialog,
    )
    heard._endpointer = Endpointer(rate, LIVE_ANSWERS)

    async def scene() -> list[int]:
        await stream(heard, np.concatenate([quiet(0.2), five, quiet(0.04), seven, quiet(0.6)]))
        assert heard.answers.qsize() == 1  # ended after the unsure reading's longer quiet
        heard._turn = 1  # handled; the next prompt plays
        await stream(heard, np.concatenate([quiet(gap_s - 0.6), two, quiet(1.2)]))
        utterances = [heard.answers.get_nowait() for _ in range(heard.answers.qsize())]
        return [u.turn for u in utterances if isinstance(u, Utterance)]

    assert asyncio.run(scene()) == [0, answers_turn]


def test_the_rest_of_an_answer_said_to_a_prompt_left_behind_ends_at_its_pause(
    fsdd: Path,
) -> None:
    """The first half of a serial was taken and refused while the picker was still saying
    the rest; the picker then repeats the answer 500 ms after the rest (longer than a pause
    inside an answer, shorter than the silence that ends one). The rest ends at its first
    pause (and is dropped), so the repeat is an utterance of its own, answering the prompt
    it was said to, instead of joining the rest in one that is dropped whole."""
    rate = 8000
    rest, repeat = (load(fsdd / f"{d}_jackson_9.wav", rate) for d in "76")
    quiet, pause = np.zeros(rate * 3 // 10, np.int16), np.zeros(rate // 2, np.int16)
    heard = conversation(Recogniser({"listening": (("6",), 0.9, True)}), PickDialog(warehouse()))
    heard._endpointer = Endpointer(rate, LIVE_ANSWERS)

    async def say(samples: np.ndarray) -> None:
        for start in range(0, len(samples), rate // 50):
            await heard.hear_audio(samples[start : start + rate // 50].tobytes())

    async def scene() -> list[Utterance]:
        await say(np.concatenate([quiet, rest[: len(rest) // 2]]))  # said to turn 0 ...
        heard._turn = 1  # ... which its first half has meanwhile closed
        await say(np.concatenate([rest[len(rest) // 2 :], pause, repeat, quiet, quiet, quiet]))
        await asyncio.gather(*heard._background)
        return [heard.answers.get_nowait() for _ in range(heard.answers.qsize())]

    utterances = asyncio.run(scene())
    assert [u.turn for u in utterances if isinstance(u, Utterance)] == [0, 1]
    first, second = utterances
    assert isinstance(first, Utterance) and isinstance(second, Utterance)
    assert len(first.audio) < len(rest) + len(quiet) < len(second.audio) < 2 * len(repeat)


@pytest.mark.parametrize(
    ("reading", "confidence", "ends_within_300_ms"),
    [(("5", "7"), 0.52, True), (("9", "7"), 0.52, False), (("9", "7"), 0.95, True)],
)
def test_an_unsure_reading_ends_soon_only_when_it_is_the_answer_expected(
    fsdd: Path, reading: tuple[str, ...], confidence: float, ends_within_300_ms: bool
) -> None:
    """Check digits "5 7" at a pause the engines are unsure of: the line's own check digits
    end the answer after the short quiet, as a sure reading does; wrong ones wait longer,
    in case they are the start of a longer answer misread."""
    rate = 8000
    digit = load(fsdd / "5_jackson_9.wav", rate)
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    heard = conversation(
        Recogniser({"listening": (reading, confidence, True), "2": (reading, confidence, True)}),
        dialog,
    )
    heard._endpointer = Endpointer(rate, LIVE_ANSWERS)

    async def ended_after(quiet_s: float) -> int:
        await stream(heard, np.concatenate([np.zeros(rate // 5, np.int16), digit]))
        await stream(heard, np.zeros(int(rate * quiet_s), np.int16))
        return heard.answers.qsize()

    assert asyncio.run(ended_after(0.3)) == int(ends_within_300_ms)


class Blocks(Speech):
    """Hears one digit per block of 800 samples: the digit the block's samples hold."""

    def __init__(self) -> None:
        super().__init__({})

    def recognize(
        self, audio: Any, grammar: Grammar, rate: int, operator: str, wanted: Any = None
    ) -> Result:
        tokens = tuple(str(int(audio[i])) for i in range(0, len(audio), 800))
        return Result(" ".join(tokens), tokens, 0.9, "fake", grammar.accepts(tokens))


@pytest.mark.parametrize(
    ("gap_s", "said_to", "heard_then"),
    [(0.3, 0, ("5 7", True)), (0.3, 1, ("5 7", True)), (1.0, 1, ("7", False))],
)
def test_the_rest_of_a_refused_answer_said_right_after_it_is_heard_with_it(
    gap_s: float, said_to: int, heard_then: tuple[str, bool]
) -> None:
    """ "five" ended as an answer at a pause and was refused (one of two check digits);
    "seven", said 300 ms after it, is the rest of it: the two are heard as "five seven",
    whether the picker started it before the refusal (said to turn 0) or after (turn 1).
    Said a second later, "seven" is an answer of its own (and one digit too few)."""
    dialog = PickDialog(warehouse())
    dialog.start()
    said(dialog, "ready")
    headset = conversation(Blocks(), dialog)
    five = Utterance(np.full(800, 5, np.int16), turn=0, started_at=1.0, ended_at=1.1)
    seven = Utterance(np.full(800, 7, np.int16), turn=said_to, started_at=1.1 + gap_s, ended_at=2.5)

    async def answer() -> None:
        await headset._answer(five)
        await headset._answer(seven)

    asyncio.run(answer())
    told: Headset = headset.headset  # type: ignore[assignment]
    heard = [(f["text"], f["accepted"]) for f in told.frames if f["type"] == "heard"]
    assert heard == [("5", False), heard_then]


@pytest.mark.parametrize(
    ("gap_s", "answers_turn", "cuts_the_prompt"), [(0.25, 0, False), (1.0, 1, True)]
)
def test_speech_right_after_an_answer_is_that_answer_going_on_not_the_next(
    fsdd: Path, gap_s: float, answers_turn: int, cuts_the_prompt: bool
) -> None:
    """ "five seven" ended as a whole answer at a pause and was taken (turn 0 answered, the
    next prompt playing); "two", said 250 ms after it, was still part of what the picker
    was saying before they could hear that prompt: it answers turn 0 (and is dropped) and
    lets the prompt play. Said a second later, it answers the new prompt and talks over
    it."""
    rate = 8000
    five, seven, two = (load(fsdd / f"{d}_jackson_9.wav", rate) for d in "572")
    heard = conversation(
        Recogniser({"listening": (("5", "7"), 0.95, True), "2": (("5", "7"), 0.95, True)}),
        PickDialog(warehouse()),
    )
    heard._endpointer = Endpointer(rate, LIVE_ANSWERS)

    async def scene() -> tuple[list[int], bool]:
        await stream(heard, np.concatenate([quiet(0.2), five, quiet(0.04), seven, quiet(0.2)]))
        assert heard.answers.qsize() == 1  # ended at the short pause
        heard._turn = 1  # taken; the next prompt plays
        heard._speaking = prompt = asyncio.create_task(asyncio.sleep(10))
        await stream(heard, np.concatenate([quiet(gap_s - 0.2), two, quiet(0.8)]))
        utterances = [heard.answers.get_nowait() for _ in range(2)]
        cut = prompt.cancelled()
        prompt.cancel()
        return [u.turn for u in utterances if isinstance(u, Utterance)], cut

    turns, cut = asyncio.run(scene())
    assert turns == [0, answers_turn]
    assert cut == cuts_the_prompt
