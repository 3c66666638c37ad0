"""One headset connection: hello, then prompts spoken out and answers heard in, each answer
handed to the pick dialog in order.

Speech is endpointed as it streams in. At each pause the utterance so far is read against
the grammar of the dialog state it answers; when that is a whole answer (a command, or as
many digits as the line expects) it ends there, and otherwise the picker has up to 700 ms
more to go on ("five ... seven" stays one answer). An utterance belongs to the prompt it
was spoken to: if the dialog has moved on by the time it is handled (a second half of an
answer that was already taken), it is dropped, never read against the next state's
grammar; one still being said when the dialog moves on ends at its first pause, so the
answer said again after the new prompt is heard on its own. One exception: an answer
that ended at a pause and was refused without the dialog moving on (four digits heard
in "zero zero nine" while the "seven" was still coming) is joined by speech that starts
within 400 ms of its end, and the two are heard as one answer. Typed `say` frames take
the same path from there. Prompt audio is paced at speaking speed so that the picker talking
over it (barge-in) stops the rest. Blocking work (recognition, synthesis, the dialog's
database calls) runs in worker threads; the queue of answers is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from anyio.to_thread import run_sync
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.headset.protocol import (
    PROTOCOL_ERROR,
    Bye,
    FrameError,
    Hello,
    Say,
    check_audio_frame,
    error,
    parse_text_frame,
)
from server.headset.speech import SpeechServices
from server.sockets import Ending
from voice.dialog import PickDialog, Prompt, Turn
from voice.dialog.pick import PickWork
from voice.endpoint import LIVE_ANSWERS, Endpointer, SpeechEnded, SpeechPaused, SpeechStarted
from voice.stt import Result

log = logging.getLogger(__name__)

AUDIO_CHUNK_MS = 100
AUDIO_LEAD_MS = 300  # sent at once so playback starts without a gap
IDLE_TIMEOUT_S = 15 * 60
MAX_PENDING_ANSWERS = 8
CONTINUATION_S = 0.4  # a pause this short inside an answer keeps it one answer


@dataclass(frozen=True)
class Utterance:
    """One spoken answer: its audio, the turn it answers (the dialog's turn when the picker
    started to speak), when speech started and ended (stream seconds), and its reading when
    it was read at a pause to see it was whole (`continued`: read after a refused answer)."""

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
    `CONTINUATION_S` of its end is the rest of it, and the two are heard as one answer."""

    turn: int  # the turn it answered
    audio: np.ndarray
    ended_at: float  # stream seconds


class HeadsetSession:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        operator: str,
        speech: SpeechServices,
        open_work: Callable[[str], PickWork],
        snapshots: dict[str, dict[str, Any]],
    ) -> None:
        self.websocket = websocket
        self.operator = operator
        self.speech = speech
        self.open_work = open_work
        self.snapshots = snapshots
        self.id = uuid.uuid4().hex
        self.locale = "en-US"
        self.sample_rate = 16000
        self.dialog: PickDialog | None = None
        self.answers: asyncio.Queue[Utterance | str] = asyncio.Queue(MAX_PENDING_ANSWERS)
        self._send_lock = asyncio.Lock()
        self._speaking: asyncio.Task[None] | None = None
        self._prompt_id = 0
        self._endpointer: Endpointer | None = None
        self._closing = False
        self._turn = 0  # answers handled so far: each one is answered by a new prompt
        self._speaking_to = 0  # the turn the utterance in progress answers
        self._started_at = 0.0  # when it started, in stream seconds
        self._refusal: Refusal | None = None  # the last answer, when it was refused
        # the utterance in progress, read at its pauses (and whether after a refused answer)
        self._readings: dict[int, tuple[Result, bool]] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Serve the connection until the headset says bye, signs off or goes away."""
        worker: asyncio.Task[None] | None = None
        try:
            while not self._closing:
                message = await asyncio.wait_for(self.websocket.receive(), IDLE_TIMEOUT_S)
                if message["type"] == "websocket.disconnect":
                    break
                try:
                    if message.get("bytes") is not None:
                        await self._on_audio(message["bytes"])
                    elif message.get("text") is not None:
                        frame = parse_text_frame(message["text"])
                        if isinstance(frame, Hello):
                            await self._on_hello(frame)
                            worker = worker or asyncio.create_task(self._answer_worker())
                        elif isinstance(frame, Say):
                            await self._on_say(frame)
                        elif isinstance(frame, Bye):
                            break
                except FrameError as exc:
                    await self.send_json(error(exc.code, exc.message))
                    if exc.fatal:
                        await self.websocket.close(PROTOCOL_ERROR, exc.code)
                        return
        except (WebSocketDisconnect, TimeoutError):
            pass
        finally:
            for task in (worker, self._speaking, *self._background):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            self._save()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close()

    async def end(self, ending: Ending) -> None:
        """End the session from outside (user revoked, taken over by another headset,
        server shutdown): an `error` frame says why, then the socket closes with the
        ending's code and `run` returns. The dialog is not saved after this."""
        self._closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send_json(error(ending.code, ending.message)), 2)
        with contextlib.suppress(Exception):
            await self.websocket.close(ending.close_code, ending.code)

    async def _on_hello(self, hello: Hello) -> None:
        if self.dialog is not None:
            raise FrameError("already_started", "hello was already received")
        if hello.locale not in self.speech.locales:
            raise FrameError(
                "unsupported_locale",
                f"locale must be one of {sorted(self.speech.locales)}",
                fatal=True,
            )
        self.locale = hello.locale
        self.sample_rate = hello.audio.sample_rate
        self._endpointer = Endpointer(self.sample_rate, LIVE_ANSWERS)
        await self.send_json(
            {
                "type": "welcome",
                "session": self.id,
                "operator": self.operator,
                "sample_rate": self.sample_rate,
            }
        )
        snapshot = self.snapshots.get(self.operator)
        work = self.open_work(self.operator)
        if snapshot and snapshot.get("locale") == self.locale:
            self.dialog, prompt = await run_sync(self._restore, work, snapshot)
        else:
            self.dialog = PickDialog(
                work, locale=self.locale, min_confidence=self.speech.min_confidence
            )
            prompt = await run_sync(self.dialog.start)
        self._save()
        await self.speak(prompt)

    def _restore(self, work: PickWork, snapshot: dict[str, Any]) -> tuple[PickDialog, Prompt]:
        dialog = PickDialog.restore(
            work, snapshot["dialog"], locale=self.locale, min_confidence=self.speech.min_confidence
        )
        return dialog, dialog.repeat()

    async def _on_audio(self, data: bytes) -> None:
        check_audio_frame(data)
        if self._endpointer is None:
            raise FrameError("audio_before_hello", "send hello before audio")
        for event in self._endpointer.feed(data):
            if isinstance(event, SpeechStarted):
                self._speaking_to, self._started_at, self._readings = self._turn, event.at, {}
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

    def _track(self, task: asyncio.Task[None]) -> None:
        """Keep a background task until it is done (and cancel it with the session)."""
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
        reading, whole = await run_sync(self._read, dialog, audio)
        self._readings[paused.pause] = (reading, refusal is not None)
        if whole:
            ended = endpointer.end_after_pause(paused.pause)
            if ended is not None:
                await self._end_utterance(ended)

    def _read(self, dialog: PickDialog, audio: np.ndarray) -> tuple[Result, bool]:
        """(what was said, whether it is a whole answer). It is first heard as what it is
        (`Grammar.listening`): a partial answer is never forced into a whole one, nor
        digits into a word. Digits as many as the line expects are then read as the answer
        they seem to be (`Dialog.answer_grammar`). Only a reading that is taken ends the
        answer: an unsure "help", or a digit too many read into a lone "two", cut answers
        in half; the dialog judges what was heard."""
        listening = dialog.grammar().listening()
        heard = self.speech.recognize(audio, listening, self.sample_rate, self.operator)
        if not dialog.answer_complete(heard.tokens):
            return heard, False
        answer = dialog.answer_grammar()
        narrower = answer.accepts_digits and answer.max_digits < listening.max_digits
        if heard.tokens[0].isdigit() and narrower:
            heard = self.speech.recognize(audio, answer, self.sample_rate, self.operator)
        return heard, heard.accepted

    async def _end_utterance(self, ended: SpeechEnded) -> None:
        if not len(ended.audio):
            return
        reading, continued = (
            self._readings.get(ended.pause, (None, False))
            if ended.pause is not None
            else (None, False)
        )
        self._readings = {}
        await self._queue(
            Utterance(
                ended.audio, self._speaking_to, self._started_at, ended.end, reading, continued
            )
        )

    async def _on_say(self, frame: Say) -> None:
        if self.dialog is None:
            raise FrameError("hello_required", "send hello before say")
        await self._queue(frame.text)

    async def _queue(self, answer: Utterance | str) -> None:
        """Answers wait in order, speech as audio with the turn it answers."""
        try:
            self.answers.put_nowait(answer)
        except asyncio.QueueFull:
            raise FrameError("busy", "too many answers waiting; slow down") from None

    async def _answer_worker(self) -> None:
        while True:
            answer = await self.answers.get()
            try:
                await self._answer(answer)
            except Exception:
                log.exception("headset %s: answer failed", self.operator)
                await self.send_json(error("internal_error", "that answer could not be handled"))

    async def _answer(self, answer: Utterance | str) -> None:
        """Hand one answer to the dialog, tell the headset what was heard, then prompt."""
        assert self.dialog is not None
        dialog = self.dialog
        refusal = (
            None if isinstance(answer, str) else self._continuing(answer.turn, answer.started_at)
        )
        self._refusal = None
        if isinstance(answer, str):
            turn: Turn = await run_sync(dialog.hear_text, answer)
            heard = {"text": answer, "confidence": 1.0, "source": "text"}
        elif answer.turn != self._turn and refusal is None:
            # said to a prompt the dialog has left (the rest of an answer already taken)
            log.info("headset %s: dropped speech said to an earlier prompt", self.operator)
            await self.send_json(
                {"type": "heard", "text": "", "confidence": 0.0, "accepted": False}
                | {"source": "speech", "dropped": "earlier_prompt"}
            )
            return
        else:
            audio = answer.audio
            if refusal is not None:
                audio = np.concatenate([refusal.audio, audio])
            result = answer.reading if answer.continued == (refusal is not None) else None
            result = result or (await run_sync(self._read, dialog, audio))[0]
            state = dialog.state.name
            turn = await run_sync(dialog.hear, result.tokens, result.confidence, result.accepted)
            if not turn.accepted and dialog.state.name == state:
                self._refusal = Refusal(self._turn, audio, answer.ended_at)
            heard = {
                "text": result.text,
                "confidence": round(result.confidence, 3),
                "source": "speech",
            }
        self._turn += 1
        await self.send_json({"type": "heard", **heard, "accepted": turn.accepted})
        self._save()
        if turn.prompt is not None:
            await self.speak(turn.prompt)
        if turn.ended:
            self.snapshots.pop(self.operator, None)
            self._closing = True
            await self.websocket.close(1000, "signed off")

    async def speak(self, prompt: Prompt) -> None:
        """Send a prompt and start its audio; a prompt still playing is cut short."""
        await self._barge_in()
        self._prompt_id += 1
        prompt_id = self._prompt_id
        await self.send_json(
            {
                "type": "prompt",
                "id": prompt_id,
                "text": prompt.text,
                "state": prompt.state,
                "display": prompt.display,
            }
        )
        pcm = await run_sync(self.speech.synthesize, prompt.text, self.locale, self.sample_rate)
        self._speaking = asyncio.create_task(self._play(prompt_id, pcm))

    async def _play(self, prompt_id: int, pcm: bytes) -> None:
        chunk = self.sample_rate * 2 * AUDIO_CHUNK_MS // 1000
        lead = AUDIO_LEAD_MS // AUDIO_CHUNK_MS
        interrupted = True
        try:
            for n, start in enumerate(range(0, len(pcm), chunk)):
                if n >= lead:
                    await asyncio.sleep(AUDIO_CHUNK_MS / 1000)
                await self.send_bytes(pcm[start : start + chunk])
            interrupted = False
        finally:
            end: dict[str, Any] = {"type": "prompt_end", "id": prompt_id}
            if interrupted:
                end["interrupted"] = True
            with contextlib.suppress(Exception):
                await asyncio.shield(self.send_json(end))

    async def _barge_in(self) -> None:
        speaking, self._speaking = self._speaking, None
        if speaking is not None and not speaking.done():
            speaking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await speaking

    def _save(self) -> None:
        if self.dialog is not None and not self._closing:
            self.snapshots[self.operator] = {
                "locale": self.locale,
                "dialog": self.dialog.snapshot(),
            }

    async def send_json(self, data: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_json(data)

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await self.websocket.send_bytes(data)
