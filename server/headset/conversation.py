"""The pick conversation of one headset, apart from how it travels: microphone audio (PCM at
the session rate) and typed answers in; prompts, what was heard and failures out as
`HeadsetMessage`s, and each prompt's audio played through a `PromptAudio` at speaking speed. The
headset socket (`session.py`) and its WebRTC audio (`peer.py`) carry it.

Speech is endpointed as it streams in. At each pause the utterance so far is read against
the grammar of the dialog state it answers; when that is a whole answer (a command, or as
many digits as the line expects) it ends there (after 160 ms of quiet; 480 ms when the
reading is unsure and not the answer the line expects), and otherwise the picker has up to
1000 ms more to go on ("five ... seven" stays one answer, even said quietly). An utterance
belongs to the prompt it was spoken to: if the dialog has moved on by the time it is
handled (a second half of an answer that was already taken), it is dropped, never read
against the next state's grammar; one still being said when the dialog moves on ends at its
first pause, so the answer said again after the new prompt is heard on its own. Speech that
starts within 400 ms of the last utterance's end (of when it was ended, for an answer ended
early at a pause as whole) is that answer going on (it ended too soon), said to its prompt,
not to the next, which it lets play. One exception: an answer that ended at a pause and was
refused without the dialog moving on (four digits heard in "zero zero nine" while the
"seven" was still coming) is joined by speech that starts within 400 ms of its end, and the
two are heard as one answer. A whole digit answer's reading
counts the line's own check digits or quantity a little more than the rest
(`EXPECTED_WEIGHT`). Typed answers take the same path from there. Prompt audio is paced at
speaking speed so that the picker talking over it (barge-in) stops the rest. Blocking work
(recognition, synthesis, the dialog's database calls) runs in worker threads; the queue of
answers is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from anyio.to_thread import run_sync

from rtc.tasks import stopped
from server.headset.snapshots import SnapshotStore
from server.headset.speech import SpeechServices
from voice.dialog import PickDialog, Prompt, Turn
from voice.dialog.pick import PickWork
from voice.endpoint import LIVE_ANSWERS, Endpointer, SpeechEnded, SpeechPaused, SpeechStarted
from voice.grammar import Grammar
from voice.stt import NotWanted, Result, expecting, refuse_word_read_as_digits
from voice.workers import SpeechUnavailable

log = logging.getLogger(__name__)

MAX_PENDING_ANSWERS = 8
CONTINUATION_S = 0.4  # a pause this short inside an answer keeps it one answer
# A whole reading at a pause ends the answer after the short silence only this sure: when
# the engines agree on it (fused, 1 - (1 - p1)(1 - p2)), or when it is exactly the answer
# the line expects (`Dialog.expects`). A single "four" read as "nine four" (0.52) cut
# "four ... six" in two; an unsure one ends after a quiet longer than any pause inside an
# answer (`CONTINUATION_S`), so the rest, if it is coming, still joins it.
SURE_TO_END_AT_PAUSE = 0.9
UNSURE_END_MS = 480
# How much more the answer the line expects (its check digits, its quantity) weighs than
# anything else the engines heard in a whole digit answer (`voice.stt.expecting`). Chosen
# leaving one speaker out (bench/expected_answer.py): the largest weight at which each
# other speaker's other answers are taken as the expected one at most 0.5 % of the time
# was 1.1, 1.1 and 1.5; the smallest is used.
EXPECTED_WEIGHT = 1.1


def sure_at_length(heard: Result, answer: Grammar) -> bool:
    """Whether a first reading of digits needs no second at the line's length (`answer`):
    taken, already an answer of that length and read alike by the engines. Such readings
    were never changed by the second (0 of 95 two- and four-digit answers of fsdd-dev's
    three speakers, bench/second_reading.py), which costs 50-75 ms of CPU."""
    return (
        heard.accepted and heard.confidence >= SURE_TO_END_AT_PAUSE and answer.accepts(heard.tokens)
    )


# -- what the conversation tells the headset ---------------------------------------------


@dataclass(frozen=True)
class PromptStarted:
    """A prompt is said; its audio follows through the `PromptAudio`."""

    id: int
    prompt: Prompt


@dataclass(frozen=True)
class PromptEnded:
    """All of the prompt's audio went out, or the picker talked over it (`interrupted`)."""

    id: int
    interrupted: bool = False


@dataclass(frozen=True)
class Heard:
    """An answer as the dialog took it (`accepted`) or not; `dropped` says why speech was
    not even read ("earlier_prompt": said to a prompt the dialog has left)."""

    text: str
    confidence: float
    accepted: bool
    source: Literal["speech", "text"]
    dropped: str | None = None


@dataclass(frozen=True)
class Answered:
    """An answer the dialog judged, for the floor: the recognition figures (`state`, the
    prompt it answered, and `reprompts`, how many answers to it were refused before) and
    the supervisor's board (where the dialog is now: `next_state`, `next_reprompts`;
    `ended` when it was the dialog's last)."""

    heard: Heard
    state: str
    reprompts: int
    next_state: str
    next_reprompts: int
    ended: bool = False


@dataclass(frozen=True)
class Failed:
    """Something the headset said could not be handled; the conversation goes on."""

    code: str
    message: str


@dataclass(frozen=True)
class SignedOff:
    """The dialog has ended (the picker signed off): nothing more will be said or heard."""


# What the conversation tells its headset (a transport turns each into a frame).
HeadsetMessage = PromptStarted | PromptEnded | Heard | Failed | SignedOff


class Headset(Protocol):
    """The conversation's other end, as a transport presents it."""

    async def tell(self, message: HeadsetMessage) -> None: ...


class PromptAudio(Protocol):
    """Where prompt audio goes: binary socket frames, or a WebRTC track."""

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        """Send `pcm` (s16le at `sample_rate`, the session's) at speaking speed and return
        once all of it has gone out; cancelled (barge-in), stop sending at once."""
        ...


class Busy(Exception):
    """Too many answers are waiting to be handled; this one was not taken."""


# -- what the conversation hears ---------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """One spoken answer: its audio, the turn it answers (the dialog's turn when the picker
    started to speak), when speech started and ended (stream seconds; for an answer ended
    early at a pause as whole, when it was ended: the end of its speech and the quiet
    waited after it), and its reading when it was read at a pause to see it was whole
    (`continued`: read after a refused answer)."""

    audio: np.ndarray
    turn: int
    started_at: float = 0.0
    ended_at: float = 0.0
    reading: Result | None = None
    continued: bool = False


@dataclass(frozen=True)
class Refusal:
    """A spoken answer the dialog refused without moving on: ended at a pause as whole, it
    may have been only the start of what the picker was saying ("zero zero nine" read as
    four digits while the "seven" was still to come). Speech that starts within
    `CONTINUATION_S` of its end (`Utterance.ended_at`) is the rest of it, and the two are
    heard as one answer."""

    turn: int  # the turn it answered
    audio: np.ndarray
    ended_at: float  # stream seconds


class CallAudio(Protocol):
    """A call that takes the headset over (`Conversation.enter_call`)."""

    def push(self, pcm: np.ndarray) -> None:
        """The microphone's audio, int16 at the session rate."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """What the others in the call say, s16le at the session rate, as it comes."""
        ...


class Conversation:
    """``await conversation.start(locale, rate)``, then `hear_audio` / `hear_text` as the
    headset sends them, and `close` when it goes away. `prompt_audio` may be swapped while
    the conversation runs (a prompt already playing finishes where it started)."""

    def __init__(
        self,
        headset: Headset,
        prompt_audio: PromptAudio,
        *,
        operator: str,
        speech: SpeechServices,
        open_work: Callable[[str], PickWork],
        snapshots: SnapshotStore,
        on_answer: Callable[[Answered], None] | None = None,
    ) -> None:
        """`snapshots` keeps the dialog for the operator's next session, on this process or
        another. `on_answer` hears of every answer judged (it must not block: the picker
        waits for the next prompt)."""
        self.headset = headset
        self.prompt_audio = prompt_audio
        self.operator = operator
        self.speech = speech
        self.open_work = open_work
        self.snapshots = snapshots
        self.on_answer = on_answer
        self.signed_off = False
        self._reprompts = 0  # answers refused at the current prompt
        self.locale = "en-US"
        self.sample_rate = 16000
        self.dialog: PickDialog | None = None
        self.answers: asyncio.Queue[Utterance | str] = asyncio.Queue(MAX_PENDING_ANSWERS)
        self._worker: asyncio.Task[None] | None = None
        self._speaking: asyncio.Task[None] | None = None
        self._prompt_id = 0
        self._endpointer: Endpointer | None = None
        self._closing = False
        self._turn = 0  # answers handled so far: each one is answered by a new prompt
        self._speaking_to = 0  # the turn the utterance in progress answers
        self._started_at = 0.0  # when it started, in stream seconds
        self._last_said: tuple[int, float] | None = None  # the last utterance's turn and end
        self._refusal: Refusal | None = None  # the last answer, when it was refused
        # the utterance in progress, read at its pauses (and whether after a refused answer)
        self._readings: dict[int, tuple[Result, bool]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._call: CallAudio | None = None
        self._call_audio: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self.dialog is not None

    async def start(self, locale: str, sample_rate: int) -> None:
        """Resume the operator's dialog where it stopped (in the same locale), or start one,
        and say its prompt."""
        self.locale, self.sample_rate = locale, sample_rate
        self._endpointer = Endpointer(sample_rate, LIVE_ANSWERS)
        snapshot = await self.snapshots.load(self.operator)
        work = self.open_work(self.operator)
        if snapshot and snapshot.get("locale") == self.locale:
            self.dialog, prompt = await run_sync(self._restore, work, snapshot)
        else:
            self.dialog = PickDialog(
                work, locale=self.locale, min_confidence=self.speech.min_confidence
            )
            prompt = await run_sync(self.dialog.start)
        await self._save()
        self._worker = asyncio.create_task(self._answer_worker())
        await self.speak(prompt)

    def _restore(self, work: PickWork, snapshot: dict[str, Any]) -> tuple[PickDialog, Prompt]:
        dialog = PickDialog.restore(
            work, snapshot["dialog"], locale=self.locale, min_confidence=self.speech.min_confidence
        )
        return dialog, dialog.repeat()

    async def close(self) -> None:
        """Stop listening and speaking; the dialog is kept for the operator's next session
        (unless it ended, or `abandon` was called)."""
        for task in (self._worker, self._speaking, self._call_audio, *self._background):
            if task is not None:
                await stopped(task)
        await self._save()

    def abandon(self) -> None:
        """Save nothing more of this dialog (the session was ended from outside: the user
        was revoked, or another headset took over and holds the dialog now)."""
        self._closing = True

    # -- hearing ------------------------------------------------------------------------

    async def hear_audio(self, pcm: bytes | np.ndarray) -> None:
        """Microphone audio, int16 (or s16le bytes) at the session rate, any chunk size;
        in a call, the call's."""
        assert self._endpointer is not None, "start the conversation first"
        if self._call is not None:
            self._call.push(np.frombuffer(pcm, "<i2") if isinstance(pcm, bytes) else pcm)
            return
        for event in self._endpointer.feed(pcm):
            if isinstance(event, SpeechStarted):
                self._speaking_to, self._started_at = self._answering(event.at), event.at
                self._readings = {}
                if self._speaking_to == self._turn:
                    await self._barge_in()
            elif isinstance(event, SpeechPaused):
                if self._speaking_to != self._turn and not self._continuing(
                    self._speaking_to, self._started_at
                ):
                    await self._end_stale(event)
                else:
                    read = self._read_at_pause(event, self._speaking_to, self._started_at)
                    self._track(asyncio.create_task(read))
            elif isinstance(event, SpeechEnded):
                await self._end_utterance(event)

    async def hear_text(self, text: str) -> None:
        """A typed answer (keypad, scanner, button), handled exactly like speech."""
        assert self.dialog is not None, "start the conversation first"
        await self._queue(text)

    def _track(self, task: asyncio.Task[None]) -> None:
        """Keep a background task until it is done (and cancel it with the conversation)."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _end_stale(self, paused: SpeechPaused) -> None:
        """The dialog has moved on since this utterance began (its first half was taken or
        refused): end it at its first pause, to be dropped, so the picker's next answer,
        said after the new prompt, starts an utterance of its own instead of joining it."""
        assert self._endpointer is not None
        ended = self._endpointer.end_after_pause(paused.pause)
        if ended is not None:
            await self._end_utterance(ended)

    def _answering(self, started_at: float) -> int:
        """The turn speech starting at `started_at` answers: the current one, unless it
        starts within a pause inside an answer (`CONTINUATION_S`) of the last utterance's
        end; of when it was ended, for an answer ended early at a pause as whole (an unsure
        one waits 480 ms of quiet, and a 300 ms pause of a quiet voice is heard as longer,
        so the rest of an answer cut there starts after more than `CONTINUATION_S` of
        quiet). An answer ended by the full silence was not cut short: a push-to-talk
        client's next answer, sent after the protocol's 1.2 s of quiet, is its own. Then it
        is that answer going on, ended too soon ("zero zero one nine" ended at a pause,
        "six" still to come), said before the picker could hear the next prompt: it is
        dropped, or joins the answer if that was refused, and never begins the next answer
        (nor cuts its prompt short); the answer said to the next prompt is heard on its
        own."""
        last = self._last_said
        if last is not None and started_at - last[1] <= CONTINUATION_S:
            return last[0]
        return self._turn

    def _continuing(self, turn: int, started_at: float) -> Refusal | None:
        """The refused answer that speech said to `turn` from `started_at` goes on with, if
        it started right after it and nothing else has been answered since."""
        refusal = self._refusal
        if refusal is None or self._turn != refusal.turn + 1 or turn < refusal.turn:
            return None
        return refusal if started_at - refusal.ended_at <= CONTINUATION_S else None

    async def _read_at_pause(self, paused: SpeechPaused, turn: int, started_at: float) -> None:
        """Read the utterance so far; if it is a whole answer and the picker stays quiet,
        end it after the short pause instead of waiting out the long silence."""
        dialog, endpointer = self.dialog, self._endpointer
        refusal = self._continuing(turn, started_at)
        if dialog is None or endpointer is None or (turn != self._turn and refusal is None):
            return
        audio = paused.audio if refusal is None else np.concatenate([refusal.audio, paused.audio])

        def paused_still() -> bool:
            return endpointer.pause == paused.pause

        def read_and_weigh() -> tuple[Result, bool, bool] | None:
            read = self._read(dialog, audio, paused_still)
            if read is None:
                return None
            reading, whole = read
            sure = reading.confidence >= SURE_TO_END_AT_PAUSE or dialog.expects(reading.tokens)
            return reading, whole, sure

        try:
            read = await run_sync(read_and_weigh, limiter=self.speech.readers())
        except SpeechUnavailable as exc:  # the whole answer, read at its end, will say so
            log.warning("headset %s: no reading at a pause: %s", self.operator, exc)
            return
        if read is None:
            return
        reading, whole, sure = read
        self._readings[paused.pause] = (reading, refusal is not None)
        if whole:
            ended = endpointer.end_after_pause(paused.pause, None if sure else UNSURE_END_MS)
            if ended is not None:
                try:
                    await self._end_utterance(ended)
                except Busy as exc:
                    await self.headset.tell(Failed("busy", str(exc)))

    def _read(
        self, dialog: PickDialog, audio: np.ndarray, wanted: Callable[[], bool] = lambda: True
    ) -> tuple[Result, bool] | None:
        """(what was said, whether it is a whole answer). It is first heard as what it is
        (`Grammar.listening`): a partial answer is never forced into a whole one, nor
        digits into a word; a word that an engine read as the line's digits is refused
        (`refuse_word_read_as_digits`). Digits as many as the line expects are then read as
        the answer they seem to be (`Dialog.answer_grammar`), unless the first reading is
        already sure of them (`sure_at_length`). Only a reading that is taken ends the
        answer (and an unsure one later: `SURE_TO_END_AT_PAUSE`): an unsure "help", or a
        digit too many read into a lone "two", cut answers in half; the dialog judges what
        was heard.

        None when the reading is no longer `wanted` as it is about to run or while it runs
        (either pass; it is stopped before its next engine): a read at a pause the picker
        has already spoken on from could end nothing, and under load such reads queued
        ahead of the rest and kept every answer waiting."""
        try:
            listening = dialog.grammar().listening()
            answer = dialog.answer_grammar()
            heard = self.speech.recognize(audio, listening, self.sample_rate, self.operator, wanted)
            heard = refuse_word_read_as_digits(heard, answer)
            if not dialog.answer_complete(heard.tokens):
                return heard, False
            narrower = answer.accepts_digits and answer.max_digits < listening.max_digits
            if heard.tokens[0].isdigit() and narrower and not sure_at_length(heard, answer):
                heard = self.speech.recognize(
                    audio, answer, self.sample_rate, self.operator, wanted
                )
            expected = dialog.expected_answer()
            if expected is not None and heard.tokens[:1] and heard.tokens[0].isdigit():
                heard = expecting(heard, expected, EXPECTED_WEIGHT, answer.text(expected))
            return heard, heard.accepted
        except NotWanted:
            return None

    async def _end_utterance(self, ended: SpeechEnded) -> None:
        if not len(ended.audio):
            return
        ended_at = ended.end if ended.cut is None else ended.cut
        self._last_said = (self._speaking_to, ended_at)
        reading, continued = (
            self._readings.get(ended.pause, (None, False))
            if ended.pause is not None
            else (None, False)
        )
        self._readings = {}
        await self._queue(
            Utterance(
                ended.audio, self._speaking_to, self._started_at, ended_at, reading, continued
            )
        )

    async def _queue(self, answer: Utterance | str) -> None:
        """Answers wait in order, speech as audio with the turn it answers."""
        try:
            self.answers.put_nowait(answer)
        except asyncio.QueueFull:
            raise Busy("too many answers waiting; slow down") from None

    # -- answering ----------------------------------------------------------------------

    async def _answer_worker(self) -> None:
        while True:
            answer = await self.answers.get()
            try:
                await self._answer(answer)
            except SpeechUnavailable as exc:
                log.error("headset %s: %s", self.operator, exc)
                await self.headset.tell(
                    Failed("speech_unavailable", "speech cannot be read now; say it again")
                )
            except Exception:
                log.exception("headset %s: answer failed", self.operator)
                await self.headset.tell(
                    Failed("internal_error", "that answer could not be handled")
                )

    async def _answer(self, answer: Utterance | str) -> None:
        """Hand one answer to the dialog, tell the headset what was heard, then prompt."""
        assert self.dialog is not None
        dialog = self.dialog
        refusal = (
            None if isinstance(answer, str) else self._continuing(answer.turn, answer.started_at)
        )
        self._refusal = None
        state = dialog.state.name
        if isinstance(answer, str):
            turn: Turn = await run_sync(dialog.hear_text, answer)
            heard = Heard(answer, 1.0, turn.accepted, "text")
        elif answer.turn != self._turn and refusal is None:
            # said to a prompt the dialog has left (the rest of an answer already taken)
            log.info("headset %s: dropped speech said to an earlier prompt", self.operator)
            await self.headset.tell(Heard("", 0.0, False, "speech", dropped="earlier_prompt"))
            return
        else:
            audio = answer.audio
            if refusal is not None:
                audio = np.concatenate([refusal.audio, audio])
            result = answer.reading if answer.continued == (refusal is not None) else None
            if result is None:
                read = await run_sync(self._read, dialog, audio, limiter=self.speech.readers())
                assert read is not None  # a final reading is always wanted
                result = read[0]
            turn = await run_sync(dialog.hear, result.tokens, result.confidence, result.accepted)
            if not turn.accepted and dialog.state.name == state:
                self._refusal = Refusal(self._turn, audio, answer.ended_at)
            heard = Heard(result.text, round(result.confidence, 3), turn.accepted, "speech")
        self._turn += 1
        await self.headset.tell(heard)
        before, now = self._reprompts, dialog.state.name
        self._reprompts = 0 if turn.accepted or now != state else before + 1
        if self.on_answer is not None:
            self.on_answer(Answered(heard, state, before, now, self._reprompts, turn.ended))
        await self._save()
        if turn.prompt is not None:
            await self.speak(turn.prompt)
        if turn.ended:
            await self.snapshots.forget(self.operator)
            self._closing = True
            self.signed_off = True
            await self.headset.tell(SignedOff())

    # -- a call -------------------------------------------------------------------------

    async def enter_call(self, call: CallAudio) -> None:
        """A call takes the headset over: the microphone goes to it and what the others
        say is played instead of prompts. The dialog waits where it is (typed answers
        still reach it, their prompts shown but not spoken)."""
        await self._barge_in()
        self._call = call
        self._call_audio = asyncio.create_task(self._relay(call))

    async def leave_call(self) -> None:
        """The call is over: listen again from silence and repeat the dialog's prompt."""
        relay, self._call, self._call_audio = self._call_audio, None, None
        if relay is not None:
            await stopped(relay)
        self._endpointer = Endpointer(self.sample_rate, LIVE_ANSWERS)
        self._readings = {}
        if self.dialog is not None and not self._closing:
            await self.speak(await run_sync(self.dialog.repeat))

    async def _relay(self, call: CallAudio) -> None:
        async for chunk in call.chunks():
            await self.prompt_audio.play(chunk, self.sample_rate)

    # -- speaking -----------------------------------------------------------------------

    async def speak(self, prompt: Prompt) -> None:
        """Say a prompt and start its audio; a prompt still playing is cut short."""
        await self._barge_in()
        self._prompt_id += 1
        prompt_id = self._prompt_id
        await self.headset.tell(PromptStarted(prompt_id, prompt))
        if self._call is not None:  # the call has the speaker
            await self.headset.tell(PromptEnded(prompt_id, interrupted=True))
            return
        pcm = await run_sync(self.speech.synthesize, prompt.text, self.locale, self.sample_rate)
        self._speaking = asyncio.create_task(self._play(prompt_id, pcm, self.prompt_audio))

    async def _play(self, prompt_id: int, pcm: bytes, audio: PromptAudio) -> None:
        interrupted = True
        try:
            await audio.play(pcm, self.sample_rate)
            interrupted = False
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.headset.tell(PromptEnded(prompt_id, interrupted)))

    async def _barge_in(self) -> None:
        speaking, self._speaking = self._speaking, None
        if speaking is not None and not speaking.done():
            await stopped(speaking)

    async def _save(self) -> None:
        """Keep where the dialog is for the operator's next session (not once it ended or
        was abandoned: another session holds the dialog then)."""
        if self.dialog is not None and not self._closing:
            snapshot = {"locale": self.locale, "dialog": self.dialog.snapshot()}
            await self.snapshots.save(self.operator, snapshot)
