"""One picker walking one whole assignment over `/ws/headset`, as a person with a headset
does: the microphone streams from hello to goodbye over a quiet noise floor (as binary
socket frames, or with `transport="webrtc"` on a WebRTC audio track once the server says
the peer connection is up, prompts coming back on the track too), the picker
waits for each prompt to be played (plus a reaction time) before answering, says digits in
a human voice (fsdd-dev) and types the rest ("ready", and "cancel" or "no" to get back
from a command the server wrongly acted on), and says an answer again, with other takes,
while the dialog keeps asking for it.

The walk ends at "Deliver to staging" (finished: the picker then signs off), or unfinished
at the turn cap, after too many attempts in a row at one question, or when the socket
closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from bench._human_voice import HumanVoice
from bench._microphone import Microphone, NoiseFloor
from bench._walk_score import (
    HeardFrame,
    WalkedAnswer,
    count,
    landed_in,
    percentiles_ms,
)
from server.headset.client import HeadsetClient
from server.headset.client_peer import ClientPeer
from server.services.serials import digits_of
from server.simulate import Floor

FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "speech" / "fsdd-dev"
UNHEARD_S = 10.0  # no heard frame this long after an answer: the picker says it again
PROMPT_S = 60.0  # the longest a prompt may take to arrive and play
RTC_S = 10.0  # the longest WebRTC audio may take to come up before the walk goes on without
SILENT = 32  # track audio whose samples all stay below this is the silence between prompts


@dataclass
class PromptSeen:
    """A prompt and its audio as the headset received them (`time.perf_counter()`)."""

    id: int
    state: str
    text: str
    display: dict[str, Any]
    at: float
    first_audio_at: float | None = None
    audio_bytes: int = 0
    ended_at: float | None = None
    interrupted: bool = False

    def played_until(self, rate: int) -> float | None:
        """When the headset finished playing it: the server sends the first 300 ms at once,
        so the end of the audio, not `prompt_end`, is when the picker has heard it all."""
        if self.ended_at is None:
            return None
        if self.interrupted or self.first_audio_at is None:
            return self.ended_at
        return max(self.ended_at, self.first_audio_at + self.audio_bytes / (2 * rate))


class Earpiece:
    """Everything the server sends, timestamped on arrival; `until` waits for a condition
    on what has arrived."""

    def __init__(self) -> None:
        self.prompts: list[PromptSeen] = []
        self.heard: list[HeardFrame] = []
        self.errors: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}
        self.rtc_answer: str | None = None
        self.rtc_states: list[str] = []  # as the server told them
        self.socket_audio_bytes = 0  # prompt audio that came as binary frames
        self.track_audio_samples = 0  # ... and on the WebRTC track (silence left out)
        self.closed = False
        self.close_code: int | None = None
        self._changed = asyncio.Condition()
        self._notifying: set[asyncio.Task[None]] = set()

    @property
    def latest(self) -> PromptSeen | None:
        return self.prompts[-1] if self.prompts else None

    async def run(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                self._take(message, time.perf_counter())
                await self._notify()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed, self.close_code = True, ws.close_code
            async with self._changed:
                self._changed.notify_all()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, ready: Callable[[], bool], within: float) -> bool:
        """Wait until `ready()` (or the socket closes, or `within` s); returns `ready()`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(within, 0.0)), self._changed:
                await self._changed.wait_for(lambda: ready() or self.closed)
        return ready()

    def replaced(self, prompt: PromptSeen) -> bool:
        return self.latest is not prompt

    def ended_or_replaced(self, prompt: PromptSeen) -> bool:
        """All of the prompt's audio has been sent, or another prompt has cut it short."""
        return self.replaced(prompt) or prompt.ended_at is not None

    def answered_since(self, since: float, source: str) -> bool:
        """A `heard` frame from `source` arrived after `since`, and a prompt after it."""
        heard = next((h for h in self.heard if h.at >= since and h.source == source), None)
        latest = self.latest
        return heard is not None and latest is not None and latest.at >= heard.at

    def take_track_audio(self, samples: np.ndarray) -> None:
        """Prompt audio from the WebRTC track (int16 at the session rate)."""
        if len(samples) and int(np.max(np.abs(samples))) >= SILENT:
            self.track_audio_samples += len(samples)
            if self._take_audio(2 * len(samples), time.perf_counter()):
                task = asyncio.create_task(self._notify())  # a prompt began to play
                self._notifying.add(task)
                task.add_done_callback(self._notifying.discard)

    def _take_audio(self, size: int, at: float) -> bool:
        """Count prompt audio; whether it is the first of the latest prompt."""
        latest = self.latest
        if latest is None:
            return False
        first = latest.first_audio_at is None
        latest.first_audio_at = latest.first_audio_at or at
        latest.audio_bytes += size
        return first

    def _take(self, message: str | bytes, at: float) -> None:
        latest = self.latest
        if isinstance(message, bytes):
            self.socket_audio_bytes += len(message)
            self._take_audio(len(message), at)
            return
        frame: dict[str, Any] = json.loads(message)
        kind = frame.get("type")
        if kind == "prompt":
            self.prompts.append(
                PromptSeen(frame["id"], frame["state"], frame["text"], frame["display"], at)
            )
        elif kind == "prompt_end":
            for prompt in reversed(self.prompts):
                if prompt.id == frame["id"]:
                    prompt.ended_at, prompt.interrupted = at, bool(frame.get("interrupted"))
                    break
        elif kind == "heard":
            self.heard.append(
                HeardFrame(
                    at=at,
                    text=frame["text"],
                    accepted=bool(frame["accepted"]),
                    confidence=float(frame["confidence"]),
                    source=frame["source"],
                    state=latest.state if latest else "",
                )
            )
        elif kind == "error":
            self.errors.append(frame)
        elif kind == "welcome":
            self.welcome = frame
        elif kind == "rtc_answer":
            self.rtc_answer = frame["sdp"]
        elif kind == "rtc_state":
            self.rtc_states.append(frame["state"])


@dataclass
class WalkReport:
    """One walk: its condition, the assignment, how it ended, and every spoken answer."""

    speaker: str
    rate: int
    gap_ms: int
    gain_db: float
    floor_dbfs: float
    seed: int
    transport: str = "socket"
    picker: str = ""
    assignment: int | None = None
    warehouse: str = ""
    lines: int = 0
    serial_lines: int = 0
    finished: bool = False
    end: str = ""
    turns: int = 0
    typed: int = 0
    answers: list[WalkedAnswer] = field(default_factory=list)
    spurious_heard: int = 0  # speech heard before the first spoken answer (the floor)
    line_status: dict[str, int] = field(default_factory=dict)
    stock_consistent: bool | None = None
    ledger_rows_checked: int | None = None
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    webrtc: dict[str, Any] | None = None  # how WebRTC audio went, on that transport

    def counts(self) -> dict[str, int]:
        return count(self.answers)

    def latencies(self) -> list[float]:
        return [a.latency_s for a in self.answers if a.latency_s is not None]

    def to_json(self, detail: bool = False) -> dict[str, Any]:
        levels = [a.level_db for a in self.answers]
        report: dict[str, Any] = {
            "speaker": self.speaker,
            "rate": self.rate,
            "gap_ms": self.gap_ms,
            "gain_db": self.gain_db,
            "floor_dbfs": self.floor_dbfs,
            "seed": self.seed,
            "transport": self.transport,
            "picker": self.picker,
            "assignment": self.assignment,
            "warehouse": self.warehouse,
            "lines": self.lines,
            "serial_lines": self.serial_lines,
            "finished": self.finished,
            "end": self.end,
            "turns": self.turns,
            "typed": self.typed,
            **self.counts(),
            "fragments_in": landed_in([h for a in self.answers for h in a.fragments()]),
            "misheard_in": landed_in([h for a in self.answers for h in a.misheard()]),
            "false_commands_heard": [h.text for a in self.answers for h in a.false_commands()],
            "spurious_heard": self.spurious_heard,
            "latency_ms": percentiles_ms(self.latencies()),
            "speech_level_db": round(float(np.mean(levels)), 1) if levels else None,
            "line_status": self.line_status,
            "stock_consistent": self.stock_consistent,
            "ledger_rows_checked": self.ledger_rows_checked,
            "errors": self.errors,
            "duration_s": self.duration_s,
        }
        if self.webrtc is not None:
            report["webrtc"] = self.webrtc
        if detail:
            report["answers"] = [a.to_json() for a in self.answers]
        return report


class _Stop(Exception):
    """The walk cannot go on; the message says why."""


@dataclass(frozen=True)
class _Typed:
    text: str


async def walk(
    base_url: str,
    token: str,
    floor: Floor,
    *,
    speaker: str,
    rate: int,
    gap_ms: int,
    gain_db: float = -25.0,
    floor_dbfs: float = -60.0,
    floor_colour: str = "pink",
    seed: int = 0,
    fsdd: Path = FSDD,
    reaction_s: float = 0.25,
    max_turns: int = 80,
    max_attempts: int = 6,
    transport: str = "socket",
) -> WalkReport:
    """Walk the picker of `token` through the assignment they get at sign-on (it should be
    a fresh one) and report it; stock and ledger are reconciled afterwards. `transport`:
    "socket" (binary frames) or "webrtc" (audio on a WebRTC track once it is up)."""
    if transport not in ("socket", "webrtc"):
        raise ValueError(f"transport must be socket or webrtc, not {transport!r}")
    report = WalkReport(speaker, rate, gap_ms, gain_db, floor_dbfs, seed, transport)
    voice = HumanVoice(fsdd, speaker, rate, gap_ms=gap_ms, gain_db=gain_db)
    url = base_url.replace("http", "ws", 1) + "/ws/headset"
    client = HeadsetClient(url, token, sample_rate=rate, device=f"walk-{speaker}")
    ear = Earpiece()
    peer = ClientPeer(rate, on_audio=ear.take_track_audio) if transport == "webrtc" else None
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        await client.open()
        ws = client.ws
        assert ws is not None

        async def microphone(pcm: bytes) -> None:
            if peer is not None and ear.rtc_states[-1:] == ["connected"]:
                await peer.microphone.send(pcm)
            else:
                await ws.send(pcm)

        mic = Microphone(microphone, rate, NoiseFloor(floor_dbfs, floor_colour, seed))
        tasks = [asyncio.create_task(ear.run(ws)), asyncio.create_task(mic.run())]
        walker = _Walker(http, token, floor, voice, random.Random(seed), (client, ear, mic), report)
        try:
            if peer is not None:
                await connect_webrtc(ws, peer, ear)
            report.end = await walker.work(reaction_s, max_turns, max_attempts)
        except (_Stop, ConnectionError, websockets.ConnectionClosed) as exc:
            report.end = f"{type(exc).__name__}: {exc}"
        finally:
            mic.stop()
            await client.close()
            if peer is not None:
                await peer.close()
                report.webrtc = {
                    "states": ear.rtc_states,
                    "microphone_s": round(peer.microphone.samples_sent / rate, 1),
                    "prompt_audio_s": round(ear.track_audio_samples / rate, 1),
                    "socket_prompt_audio_s": round(ear.socket_audio_bytes / (2 * rate), 1),
                }
            await asyncio.gather(*tasks, return_exceptions=True)
        report.duration_s = round(time.perf_counter() - started, 1)
        report.finished = report.end == "delivered"
        report.picker = str(ear.welcome.get("operator", ""))
        report.errors = [f"{e.get('code')}: {e.get('message')}" for e in ear.errors]
        time_the_answers(ear, report)
        await _check_the_books(http, floor, report)
    return report


async def connect_webrtc(ws: ClientConnection, peer: ClientPeer, ear: Earpiece) -> None:
    """Offer WebRTC audio after the welcome and wait (a while) for the server to say it is
    up; if it does not come up, the walk goes on over the socket."""
    if not await ear.until(lambda: bool(ear.welcome), PROMPT_S):
        raise _Stop("no welcome")
    await ws.send(json.dumps({"type": "rtc_offer", "sdp": await peer.offer()}))
    await ear.until(lambda: ear.rtc_answer is not None or bool(ear.errors), RTC_S)
    if ear.rtc_answer is not None:
        await peer.accept(ear.rtc_answer)
        await ear.until(lambda: bool(ear.rtc_states), RTC_S)


class _Walker:
    """The picker's side of the conversation: when to answer each prompt, and what."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        floor: Floor,
        voice: HumanVoice,
        rng: random.Random,
        headset: tuple[HeadsetClient, Earpiece, Microphone],
        report: WalkReport,
    ) -> None:
        self.http = http
        self.token = token
        self.floor = floor
        self.voice = voice
        self.rng = rng
        self.client, self.ear, self.mic = headset
        self.report = report
        self.question: tuple[Any, ...] = ()  # what the dialog asks, and how often in a row
        self.attempts = 0
        self.units: dict[int, str] = {}  # the line's serials in hand, by the prompt's number
        self.refused: set[str] = set()  # the line's serials the dialog said were given
        self.serial_line = False  # the line in hand asks for serials

    async def work(self, reaction_s: float, max_turns: int, max_attempts: int) -> str:
        if not await self.ear.until(lambda: self.ear.latest is not None, PROMPT_S):
            raise _Stop("no first prompt")
        while True:
            prompt = await self._settle(reaction_s)
            if prompt.state in ("assignment", "location"):  # a new line: nothing in hand
                self.units, self.refused, self.serial_line = {}, set(), False
            if prompt.state == "deliver":
                await self._sign_off()
                return "delivered"
            if self.report.turns >= max_turns:
                return "turn_cap"
            display = prompt.display
            question = (prompt.state, *(display.get(k) for k in ("location", "sku", "serial")))
            self.attempts = self.attempts + 1 if question == self.question else 1
            self.question = question
            if self.attempts > max_attempts:
                return f"gave_up_in_{prompt.state}"
            reply = await self._reply(prompt)
            if isinstance(reply, _Typed):
                await self._type(reply.text)
            else:
                await self._speak(prompt.state, reply)

    async def _settle(self, reaction_s: float) -> PromptSeen:
        """The latest prompt once it has been played and `reaction_s` has passed without
        another one arriving (a late piece of an answer re-prompts)."""
        ear = self.ear
        while not ear.closed:
            prompt = ear.latest
            assert prompt is not None
            if not await ear.until(partial(ear.ended_or_replaced, prompt), PROMPT_S):
                break
            if ear.replaced(prompt):
                continue
            played = prompt.played_until(self.voice.rate)
            assert played is not None
            wait = played + reaction_s - time.perf_counter()
            if wait > 0 and await ear.until(partial(ear.replaced, prompt), wait):
                continue
            if not ear.closed:
                return prompt
        raise _Stop(f"socket closed ({ear.close_code})" if ear.closed else "a prompt never ended")

    async def _reply(self, prompt: PromptSeen) -> _Typed | str:
        """What the picker answers: typed words, or the digits to say."""
        display = prompt.display
        if prompt.state == "assignment":
            return _Typed("ready")
        if prompt.state == "location":
            await self._know_the_assignment()
            digits = self.floor.check_digits.get((self.report.warehouse, display["location"]))
            if digits is None:
                raise _Stop(f"no check digits for {display['location']}")
            return digits
        if prompt.state == "quantity":
            return str(display["quantity"])
        if prompt.state == "serial":
            return await self._serial(prompt)
        if prompt.state == "short":  # "short" was heard: back to the line
            return _Typed("cancel")
        if prompt.state == "sign_off":  # "sign off" was heard: stay
            return _Typed("no")
        raise _Stop(f"no answer in state {prompt.state}")

    async def _type(self, text: str) -> None:
        sent = time.perf_counter()
        await self.client.send_json({"type": "say", "text": text})
        self.report.turns += 1
        self.report.typed += 1
        await self.ear.until(lambda: self.ear.answered_since(sent, "text"), PROMPT_S)

    async def _speak(self, state: str, digits: str) -> None:
        spoken = await asyncio.to_thread(self.voice.say, digits, self.rng)
        timing = await self.mic.say(spoken.samples)
        self.report.answers.append(
            WalkedAnswer(state, digits, spoken.takes, spoken.level_db, timing.started, timing.ended)
        )
        self.report.turns += 1
        await self.ear.until(lambda: self.ear.answered_since(timing.started, "speech"), UNHEARD_S)

    async def _sign_off(self) -> None:
        """The assignment is delivered: the picker signs off (typed), ending the session."""
        await self._type("sign off")
        if self.ear.latest is not None and self.ear.latest.state == "sign_off":
            await self._type("yes")
            await self.ear.until(lambda: self.ear.closed, 10)

    async def _know_the_assignment(self) -> None:
        """The picker's assignment in progress: its number and warehouse (as the picker's
        own list shows it), once."""
        if self.report.assignment is not None:
            return
        response = await self.http.get(
            "/api/v1/assignments",
            params={"status": "in_progress"},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        items = response.raise_for_status().json()["items"]
        if not items:
            raise _Stop("no assignment in progress")
        self.report.assignment = int(items[0]["number"])
        self.report.warehouse = str(items[0]["warehouse"])
        self.report.lines = len(items[0]["lines"])

    async def _serial(self, prompt: PromptSeen) -> _Typed | str:
        """The last digits of a unit of the line at the slot: the same unit while the
        dialog asks for the same serial again, another one when it says that one was
        already given, or that no serial here ends so (another picker walking the same
        slot closed a line with it after the list was read). Units of closed lines have
        left the slot (the list shows them no more); the units in hand for this line are
        not taken twice. When every unit left was refused (a misheard serial took one in
        hand), "cancel" drops the serials given and the line's serials start over."""
        display = prompt.display
        if not self.serial_line:
            self.report.serial_lines += 1
            self.serial_line = True
        index = int(display["serial"])
        gone = any(says in prompt.text for says in ("already given", "No serial here"))
        if gone and index in self.units:
            self.refused.add(self.units.pop(index))
        if index not in self.units:
            await self._know_the_assignment()
            location, sku = str(display["location"]), str(display["sku"])
            response = await self.http.get(
                "/api/v1/serials",
                params={"warehouse": self.report.warehouse, "location": location, "sku": sku},
                headers=self.floor.admin_headers,
            )
            here = {item["serial"] for item in response.raise_for_status().json()["items"]}
            free = sorted(here - set(self.units.values()) - self.refused)
            if not free:
                if not self.refused:
                    raise _Stop(f"no serial of {sku} at {location} left to read")
                self.units, self.refused = {}, set()
                return _Typed("cancel")
            self.units[index] = self.rng.choice(free)
        return digits_of(self.units[index])[-int(display["serial_digits"]) :]


def time_the_answers(ear: Earpiece, report: WalkReport) -> None:
    """Give every speech `heard` frame to the answer being said or last said when it
    arrived, and time each answer from its last sample to the prompt its last answered
    reading brought (a reading's prompt follows its `heard` frame before the next one; a
    reading dropped as said to an earlier prompt brings none). An answer with no such
    reading is timed to the first prompt after its last sample.

    The endpointer may end an answer before its last sample leaves the microphone: the
    takes are trimmed at -`EDGE_DB` of their loudest part, and a quiet word's tail sinks
    under the floor. Its prompt then starts while the answer is still being sent: that is
    0 ms, not whatever prompt comes next (the typed "sign off", seconds later)."""
    answers = report.answers
    for heard in ear.heard:
        if heard.source != "speech":
            continue
        owner = next((a for a in reversed(answers) if a.started <= heard.at), None)
        if owner is None:
            report.spurious_heard += 1
        else:
            owner.heard.append(heard)
    brought = _prompts_brought(ear)
    for n, answer in enumerate(answers):
        until = answers[n + 1].started if n + 1 < len(answers) else float("inf")
        prompts = [brought[id(h)] for h in answer.heard if id(h) in brought]
        after = (p for p in ear.prompts if answer.ended < p.at < until)
        nxt = prompts[-1] if prompts else next(after, None)
        if nxt is not None:
            answer.latency_s = max(0.0, (nxt.first_audio_at or nxt.at) - answer.ended)


def _prompts_brought(ear: Earpiece) -> dict[int, PromptSeen]:
    """The prompt each `heard` frame brought (by the frame's id): the first prompt after
    it, if it came before the next `heard` frame."""
    brought: dict[int, PromptSeen] = {}
    heard = sorted(ear.heard, key=lambda h: h.at)
    for n, frame in enumerate(heard):
        until = heard[n + 1].at if n + 1 < len(heard) else float("inf")
        prompt = next((p for p in ear.prompts if frame.at <= p.at < until), None)
        if prompt is not None:
            brought[id(frame)] = prompt
    return brought


async def _check_the_books(http: httpx.AsyncClient, floor: Floor, report: WalkReport) -> None:
    """Stock against the ledger, and how the assignment's lines ended."""
    reconcile = (await http.get("/api/v1/reconcile", headers=floor.admin_headers)).json()
    report.stock_consistent = reconcile.get("consistent")
    report.ledger_rows_checked = reconcile.get("rows_checked")
    if report.assignment is not None:
        response = await http.get(
            f"/api/v1/assignments/{report.assignment}", headers=floor.admin_headers
        )
        lines = response.raise_for_status().json()["lines"]
        report.line_status = dict(sorted(Counter(str(x["status"]) for x in lines).items()))
