"""Speech for a server: recognition and synthesis in this process (`LocalSpeech`), or
recognition in worker processes (`SpeechWorkers`), behind the same calls.

Recognition is CPU work (Whisper's encoder, matching against some 450 word templates):
tens of milliseconds a reading, several readings an answer. In the app's own threads it
shares one interpreter with every socket, endpointer and request; in worker processes it
runs beside the app on every core, and a crash of a native library takes down one worker,
not the floor. Prompts are rendered in the app (see `SpeechWorkers.synthesize`).

Each worker builds its own models from a `SpeechSetup` (small and picklable) and warms
them up before it takes work; the words in synthetic voices come from the shared disk
cache, so that costs seconds, not the minute it took the first time. Workers are started
with `spawn`: the app has threads (the event loop, CTranslate2's pool) that `fork` would
copy in whatever state they were in.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from voice.dialog.pick import PICK_WORKFLOW
from voice.grammar import Grammar
from voice.stt import EngineCache, NotWanted, open_recognizer, reading_while
from voice.stt.base import Result
from voice.stt.factory import EngineUnavailable
from voice.tts import Synthesizer

log = logging.getLogger(__name__)

T = TypeVar("T")

WANTED_POLL_S = 0.02  # how often a reading in a worker is checked for still being wanted
# A reading runs its engines side by side only while the workers were busy less than this
# share of the last second: it then takes two cores for a moment, which fits when at least
# half of them are idle. Busier, the second core would be taken from another reading, and
# a reading stopped midway (the picker spoke on) would have done both engines' work.
SIDE_BY_SIDE_BELOW = 0.5


@dataclass(frozen=True)
class SpeechSetup:
    """What a process needs to build its speech; sent to each worker as it starts."""

    engine: str = "auto"
    min_confidence: float = 0.5
    vosk_models: tuple[tuple[str, str], ...] = ()  # (locale, model directory)
    synthetic_dir: Path | None = None  # the words in synthetic voices, kept across runs
    prompt_cache_dir: Path | None = None  # rendered prompts, kept across runs
    locales: tuple[str, ...] = ("en-US", "zh-CN")


Wanted = Callable[[], bool]


class SpeechUnavailable(RuntimeError):
    """Nothing can read speech now (no speech worker answered in time, or the broker they
    are found through cannot be reached): the answer is lost and should be said again."""


class Speech(Protocol):
    def recognize(
        self,
        audio: np.ndarray,
        grammar: Grammar,
        sample_rate: int,
        profile: Path | None,
        wanted: Wanted | None = None,
    ) -> Result:
        """What was said. `wanted` is asked when the reading is about to run (after any
        wait for a free worker) and before each engine's part of it: once it says no,
        `NotWanted` is raised instead of reading on."""
        ...

    def synthesize(self, text: str, locale: str, sample_rate: int) -> bytes: ...

    def warm_up(self) -> None: ...

    def close(self) -> None: ...


class LocalSpeech:
    """Recognition and synthesis in the calling thread, with models loaded once."""

    def __init__(self, setup: SpeechSetup) -> None:
        self.setup = setup
        self.engines = EngineCache(
            vosk_models=dict(setup.vosk_models), synthetic_dir=setup.synthetic_dir
        )
        self.synthesizer = Synthesizer(cache_dir=setup.prompt_cache_dir)

    def recognize(
        self,
        audio: np.ndarray,
        grammar: Grammar,
        sample_rate: int,
        profile: Path | None,
        wanted: Wanted | None = None,
        *,
        side_by_side: bool = False,
    ) -> Result:
        """What was said. `side_by_side`: the engines of a fused reading may run at once,
        on a core no other reading uses now (`voice.stt.base.both`)."""
        if wanted is not None and not wanted():
            raise NotWanted
        recognizer = open_recognizer(
            self.setup.engine,
            grammar,
            sample_rate,
            profile=profile,
            cache=self.engines,
            min_confidence=self.setup.min_confidence,
        )
        recognizer.accept_audio(audio)
        with reading_while(wanted, side_by_side=side_by_side):
            return recognizer.final()

    def synthesize(self, text: str, locale: str, sample_rate: int) -> bytes:
        return self.synthesizer.synthesize(text, locale=locale, sample_rate=sample_rate)

    def warm_up(self) -> None:
        """Load what recognition needs (the models, every word in synthetic voices, each
        grammar of the pick dialog at both headset rates) before the first picker answers:
        built on first use, they would keep answers waiting for seconds. A failure is
        logged and left for the first answer to report."""
        for locale in sorted(self.setup.locales):
            try:
                for grammar in PICK_WORKFLOW.grammars(locale):
                    for rate in (8000, 16000):
                        self.recognize(_hiss(rate), grammar, rate, None)
            except EngineUnavailable as exc:
                log.info("nothing to warm up for %s: %s", locale, exc)
            except Exception:
                log.exception("speech warm-up failed for %s", locale)

    def close(self) -> None:
        pass


class Occupancy:
    """How busy `capacity` workers were over the last `window_s` seconds: the share of
    that time they spent holding work (`held`), 0 (idle) to 1 (every one, all along)."""

    def __init__(
        self, capacity: int, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[int, float] = {}  # worker -> when its work going on started
        self._done: deque[tuple[float, float]] = deque()  # (started, ended), oldest first

    @contextmanager
    def held(self, worker: int) -> Iterator[None]:
        """`worker` busy for as long as the block runs."""
        with self._lock:
            self._held[worker] = self._clock()
        try:
            yield
        finally:
            with self._lock:
                ended = self._clock()
                self._done.append((self._held.pop(worker), ended))
                self._forget_before(ended - self.window_s)

    def share(self) -> float:
        now = self._clock()
        since = now - self.window_s
        with self._lock:
            self._forget_before(since)
            busy = sum(ended - max(started, since) for started, ended in self._done)
            busy += sum(now - max(started, since) for started in self._held.values())
        return busy / (self.window_s * self.capacity)

    def _forget_before(self, since: float) -> None:
        """Drop work that ended before `since`, as it ends too: `share` is not asked
        while every worker is busy, and the spans would pile up all that time."""
        while self._done and self._done[0][1] <= since:
            self._done.popleft()


class SpeechWorkers:
    """Recognition of `LocalSpeech` in `processes` worker processes (prompts are rendered
    in this one). Thread-safe: each call blocks its thread (not the interpreter) until a
    worker answers. Workers start on the first call or on `warm_up`; a pool broken by a
    dead worker is replaced and the call tried once more."""

    def __init__(self, setup: SpeechSetup, processes: int) -> None:
        if processes < 1:
            raise ValueError("at least one speech worker")
        self.setup = setup
        self.processes = processes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        # one slot per worker: a reading holds one while it runs, and its flag in shared
        # memory tells the worker to stop the reading when it is no longer wanted
        self._slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(processes):
            self._slots.put(slot)
        self._unwanted = multiprocessing.get_context("spawn").Array("b", processes, lock=False)
        self.busy = Occupancy(processes)
        self.synthesizer = Synthesizer(cache_dir=setup.prompt_cache_dir)

    def recognize(
        self,
        audio: np.ndarray,
        grammar: Grammar,
        sample_rate: int,
        profile: Path | None,
        wanted: Wanted | None = None,
    ) -> Result:
        """Readings wait here, in the caller's thread, for a free worker, not in the pool's
        queue: `wanted` is asked once one is free, so a reading that became useless while
        it waited (the picker spoke on) is never sent, and then while the worker reads, so
        one that becomes useless meanwhile is stopped there. While the workers are mostly
        idle (`_cores_to_spare`), the reading's engines run side by side, a core each: a
        four-digit serial was read in 125 ms instead of 180 on this machine's two cores."""
        spec = (grammar.name, grammar.commands, grammar.min_digits, grammar.max_digits)
        with self._slot() as slot:
            if wanted is not None and not wanted():
                raise NotWanted
            self._unwanted[slot] = 0
            side_by_side = self._cores_to_spare()
            args = (audio, (*spec, grammar.locale), sample_rate, profile, slot, side_by_side)
            return self._call(
                _recognize, *args, wait=lambda future: self._result(future, slot, wanted)
            )

    def _result(self, future: Future[Result], slot: int, wanted: Wanted | None) -> Result:
        """The worker's reading. While it runs, `wanted` is asked every `WANTED_POLL_S`;
        once it says no, the worker is told, and stops at its next engine."""
        while wanted is not None:
            try:
                return future.result(timeout=WANTED_POLL_S)
            except FutureTimeout:
                if not wanted():
                    self._unwanted[slot] = 1
                    break
        return future.result()

    def _cores_to_spare(self) -> bool:
        """Whether a reading may take a second core: another worker is free now, and the
        workers were mostly idle over the last second."""
        return not self._slots.empty() and self.busy.share() < SIDE_BY_SIDE_BELOW

    @contextmanager
    def _slot(self) -> Iterator[int]:
        slot = self._slots.get()
        try:
            with self.busy.held(slot):
                yield slot
        finally:
            self._slots.put(slot)

    def synthesize(self, text: str, locale: str, sample_rate: int) -> bytes:
        """A prompt's audio, rendered here: libespeak-ng renders a prompt in a few
        milliseconds without holding the interpreter, prompts repeat all shift long and are
        cached, and a worker busy reading an answer would hold the next prompt back."""
        return self.synthesizer.synthesize(text, locale=locale, sample_rate=sample_rate)

    def warm_up(self) -> None:
        """Start every worker and wait until each has warmed up (a worker warms up as it
        starts, before its first call): calls are made until each worker has answered one."""
        answered: set[int] = set()
        while len(answered) < self.processes:
            pool = self._running_pool()
            futures = [pool.submit(_pid) for _ in range(self.processes)]
            answered.update(future.result() for future in futures)
            answered &= set(self.pids())

    def close(self) -> None:
        """Stop the workers now: they hold nothing to save, and one still warming up
        would hold the app's shutdown for as long as its warm-up lasts."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            workers = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in workers:
                process.terminate()

    def pids(self) -> list[int]:
        """The workers' process ids (for tests and operations)."""
        pool = self._pool
        return sorted(getattr(pool, "_processes", None) or {}) if pool else []

    def _call(
        self, fn: Callable[..., T], *args: object, wait: Callable[[Future[T]], T] | None = None
    ) -> T:
        for attempt in (1, 2):
            pool = self._running_pool()
            try:
                future = pool.submit(fn, *args)
                return future.result() if wait is None else wait(future)
            except BrokenProcessPool:
                log.error("a speech worker died; starting new ones (attempt %d)", attempt)
                self._replace(pool)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _running_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self.setup, self._unwanted),
                )
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)


def default_processes() -> int:
    """One speech worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# In a worker process: its own speech, built once as it starts, and the app's flags of
# readings no longer wanted (indexed by the slot a reading holds).
_worker: LocalSpeech | None = None
_unwanted: Any = None


def _start_worker(setup: SpeechSetup, unwanted: Any) -> None:
    global _worker, _unwanted
    logging.basicConfig(level=logging.WARNING, format="speech worker %(process)d: %(message)s")
    end_with_parent()
    _unwanted = unwanted
    _worker = LocalSpeech(setup)
    _worker.warm_up()


def end_with_parent() -> None:
    """End this process within a second of the one that started it, even when that one is
    killed outright (nothing then tells a child to stop: speech workers kept their half
    gigabyte, app processes kept serving, forever)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def _here() -> LocalSpeech:
    if _worker is None:
        raise RuntimeError("not in a speech worker")
    return _worker


def _recognize(
    audio: np.ndarray,
    grammar: tuple[str, tuple[str, ...], int, int, str],
    sample_rate: int,
    profile: Path | None,
    slot: int,
    side_by_side: bool,
) -> Result:
    def wanted() -> bool:
        return not _unwanted[slot]

    return _here().recognize(
        audio, Grammar(*grammar), sample_rate, profile, wanted, side_by_side=side_by_side
    )


def _pid() -> int:
    _here()
    time.sleep(0.05)  # held a moment, so the next call goes to another worker
    return os.getpid()


def _hiss(rate: int) -> np.ndarray:
    """Half a second of faint noise: enough for every engine to decode something."""
    return (np.random.default_rng(0).standard_normal(rate // 2) * 300).astype(np.int16)
