"""The pick conversation with no transport at all: PCM in, events and prompt audio out, the
real pick dialog over an in-memory warehouse and a recogniser that is told what it hears.
What the socket and WebRTC carry of it is tested in test_headset*.py and test_walk.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from anyio import CapacityLimiter

from server.headset.conversation import (
    Conversation,
    HeadsetMessage,
    Heard,
    PromptEnded,
    PromptStarted,
)
from server.headset.snapshots import MemorySnapshots
from tests.conftest import FSDD, REPO, require_service
from tests.voice.test_dialog import warehouse
from voice.audio import load, microphone_floor
from voice.grammar import Grammar
from voice.stt import Alternative, Result

RATE = 8000


def test_the_conversation_needs_no_transport() -> None:
    """Neither Starlette nor aiortc (nor av) comes with the conversation."""
    check = (
        "import sys, server.headset.conversation; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'starlette', 'fastapi', 'aiortc', 'av', 'websockets'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


class Headset:
    """The events the conversation tells, kept."""

    def __init__(self) -> None:
        self.events: list[HeadsetMessage] = []
        self.changed = asyncio.Condition()

    async def tell(self, event: HeadsetMessage) -> None:
        async with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    async def prompted(self, times: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.of(PromptStarted)) >= times)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class Loudspeaker:
    """Prompt audio that plays until it is stopped (each prompt is long)."""

    def __init__(self) -> None:
        self.played: list[int] = []  # bytes of each prompt's audio
        self.changed = asyncio.Condition()

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        async with self.changed:
            self.played.append(len(pcm))
            self.changed.notify_all()
        await asyncio.Event().wait()

    async def playing(self, prompts: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.played) >= prompts)


class Speech:
    """Hears "ready" in whatever is said; speaks a second of silence."""

    min_confidence = 0.5

    def recognize(
        self, audio: Any, grammar: Grammar, rate: int, operator: str, wanted: Any = None
    ) -> Result:
        return Result("ready", ("ready",), 0.9, "fake", True)

    def readers(self) -> CapacityLimiter:
        return CapacityLimiter(4)

    def synthesize(self, text: str, locale: str, sample_rate: int) -> bytes:
        return bytes(2 * sample_rate)


@pytest.fixture
def speech_audio() -> np.ndarray:
    """Someone saying something, after a second of a quiet microphone, and the quiet after
    it: human audio, so that the endpointer hears speech."""
    if not FSDD.is_dir():
        require_service("the human recordings of fsdd-dev", f"not found at {FSDD}")
    quiet = np.zeros(RATE, np.int16)
    said = np.concatenate([quiet, load(Path(FSDD) / "5_jackson_7.wav", RATE), quiet])
    return microphone_floor(said, RATE, dbfs=-60.0)


def test_talking_over_a_prompt_stops_it_and_is_heard(speech_audio: np.ndarray) -> None:
    headset, loudspeaker = Headset(), Loudspeaker()
    snapshots = MemorySnapshots()

    async def scene() -> None:
        conversation = Conversation(
            headset,
            loudspeaker,
            operator="picker",
            speech=Speech(),  # type: ignore[arg-type]
            open_work=lambda operator: warehouse(),
            snapshots=snapshots,
        )
        async with asyncio.timeout(60):  # a hang fails here, not a slow machine
            await conversation.start("en-US", RATE)
            await loudspeaker.playing(1)
            for start in range(0, len(speech_audio), RATE // 50):
                await conversation.hear_audio(speech_audio[start : start + RATE // 50])
            await headset.prompted(2)
            await loudspeaker.playing(2)
            await conversation.close()

    asyncio.run(scene())
    first, second = headset.of(PromptStarted)
    assert (first.prompt.state, second.prompt.state) == ("assignment", "location")
    assert headset.of(PromptEnded)[0] == PromptEnded(first.id, interrupted=True)
    assert headset.of(Heard) == [Heard("ready", 0.9, True, "speech")]
    assert loudspeaker.played == [2 * RATE, 2 * RATE]
    kept = snapshots.peek("picker")
    assert kept is not None and kept["locale"] == "en-US"  # kept for a reconnect


class Unsure(Speech):
    """Reads every digit answer as `reading` (neither engine taking it), with `other`
    as the runner-up; typed answers need no recogniser."""

    def __init__(self, reading: str, other: str) -> None:
        self.reading, self.other = reading, other

    def recognize(
        self, audio: Any, grammar: Grammar, rate: int, operator: str, wanted: Any = None
    ) -> Result:
        said, runner_up = (grammar.vocabulary.token_for(w) for w in (self.reading, self.other))
        assert said is not None and runner_up is not None
        other = Alternative((runner_up,), self.other, 0.3)
        return Result(self.reading, (said,), 0.49, "fake", False, alternatives=(other,))


@pytest.mark.parametrize(("reading", "taken"), [("three", True), ("eight", False)])
def test_an_unsure_reading_of_the_quantity_asked_for_is_taken(
    speech_audio: np.ndarray, reading: str, taken: bool
) -> None:
    """At "Pick 3", "three" read 0.49 (and "eight" 0.3) is the picker's 3; "eight" read
    0.49 with "three" 0.3 is not."""
    headset = Headset()
    other = "eight" if reading == "three" else "three"

    async def scene() -> None:
        conversation = Conversation(
            headset,
            Loudspeaker(),
            operator="picker",
            speech=Unsure(reading, other),  # type: ignore[arg-type]
            open_work=lambda operator: warehouse(),
            snapshots=MemorySnapshots(),
        )
        async with asyncio.timeout(60):
            await conversation.start("en-US", RATE)
            await conversation.hear_text("ready")
            await conversation.hear_text("five seven")
            await headset.prompted(3)
            for start in range(0, len(speech_audio), RATE // 50):
                await conversation.hear_audio(speech_audio[start : start + RATE // 50])
            async with headset.changed:
                await headset.changed.wait_for(lambda: len(headset.of(Heard)) >= 3)
            # closed while it stops the prompt the answer talked over: closing never waits
            # on it (it used to, until cancelled from outside)
            async with asyncio.timeout(10) as closing:
                await conversation.close()
            assert not closing.expired()

    asyncio.run(scene())
    assert headset.of(PromptStarted)[2].prompt.state == "quantity"
    heard = headset.of(Heard)[2]
    assert (heard.text, heard.accepted) == (reading, taken)
    assert heard.confidence == (0.514 if taken else 0.49)  # 1.1 * 0.49 / (1.1 * 0.49 + 0.51)
