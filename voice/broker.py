"""Readings through a broker (Redis), for speech workers on any host.

An app process with brokered speech puts each reading on one Redis list; every speech
worker sharing that Redis, on this host or another (`wavepick speech-worker`), takes the
next one as soon as it is free, reads it with its own models and pushes the result to the
list of the app process that asked, where one thread of that process hands it over. Work
goes to whichever worker is free first, so workers and hosts are added without telling
the apps. A worker says which reading it took; if it dies before answering, the app puts
the reading back once, for another.

What a worker needs comes with the reading or through the same Redis: the audio and the
grammar in the message, an operator's enrolled voice profile once per version (named by
its digest, kept on the worker's disk). A reading the app no longer wants is marked so: a
worker skips it, or stops it before its next engine. A reading no worker has answered by
its deadline fails with `SpeechUnavailable`, so the picker is told instead of waiting.
Nothing here relies on the hosts' clocks agreeing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import socket
import tarfile
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np
import redis
from redis.exceptions import RedisError

from voice.enroll import MANIFEST, Profile
from voice.grammar import Grammar
from voice.stt import NotWanted
from voice.stt.base import Alternative, Result
from voice.tts import Synthesizer
from voice.workers import LocalSpeech, SpeechSetup, SpeechUnavailable, Wanted, end_with_parent

log = logging.getLogger(__name__)

WANTED_POLL_S = 0.02  # how often a waiting app asks whether the reading is still wanted
REPLY_TTL_S = 60  # replies nobody collects (their app died) are dropped after this
UNWANTED_TTL_S = 600  # longer than any reading waits on the list
PROFILE_TTL_S = 7 * 24 * 3600
PROFILE_RESHARE_S = 3600  # an app shares a profile again after this, in case it expired
HEARTBEAT_S = 1.0  # how often a worker says it is there
HEARTBEAT_LAPSE_S = 3 * HEARTBEAT_S  # a worker not heard from for this long is gone
TAKER_CHECK_S = 1.0  # how often an app waiting long checks that the reading's worker lives


@dataclass(frozen=True)
class Keys:
    """The Redis names of one deployment's brokered speech."""

    prefix: str

    @property
    def readings(self) -> str:
        return f"{self.prefix}:speech:readings"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:speech:workers"

    def replies(self, app: str) -> str:
        return f"{self.prefix}:speech:replies:{app}"

    def unwanted(self, reading: str) -> str:
        return f"{self.prefix}:speech:unwanted:{reading}"

    def profile(self, digest: str) -> str:
        return f"{self.prefix}:speech:profile:{digest}"


# -- messages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadingRequest:
    """One reading as it travels: who answers it, what to listen for, and the audio."""

    id: str
    reply_to: str  # the list of the app process waiting for it
    grammar: Grammar
    sample_rate: int
    profile: str | None  # the digest of the operator's shared profile
    audio: np.ndarray

    def encode(self) -> bytes:
        audio = np.ascontiguousarray(self.audio)
        header = json.dumps(
            {
                "id": self.id,
                "reply_to": self.reply_to,
                "grammar": [
                    self.grammar.name,
                    list(self.grammar.commands),
                    self.grammar.min_digits,
                    self.grammar.max_digits,
                    self.grammar.locale,
                ],
                "rate": self.sample_rate,
                "profile": self.profile,
                "dtype": audio.dtype.str,
            }
        ).encode()
        return len(header).to_bytes(4, "big") + header + audio.tobytes()

    @classmethod
    def decode(cls, message: bytes) -> ReadingRequest:
        length = int.from_bytes(message[:4], "big")
        header = json.loads(message[4 : 4 + length])
        name, commands, min_digits, max_digits, locale = header["grammar"]
        return cls(
            header["id"],
            header["reply_to"],
            Grammar(name, tuple(commands), min_digits, max_digits, locale),
            header["rate"],
            header["profile"],
            np.frombuffer(message[4 + length :], dtype=np.dtype(header["dtype"])).copy(),
        )


def encode_result(reading: str, result: Result) -> bytes:
    return json.dumps(
        {
            "id": reading,
            "result": {
                "text": result.text,
                "tokens": list(result.tokens),
                "confidence": result.confidence,
                "engine": result.engine,
                "accepted": result.accepted,
                "alternatives": [
                    [list(a.tokens), a.text, a.confidence] for a in result.alternatives
                ],
                "final": result.final,
                "details": result.details,
            },
        },
        default=_plain,
    ).encode()


def decode_reply(reply: dict[str, Any]) -> Result:
    if "error" in reply:
        raise RuntimeError(f"speech worker {reply['worker']}: {reply['error']}")
    if reply.get("unwanted"):
        raise NotWanted
    fields = reply["result"]
    return Result(
        fields["text"],
        tuple(fields["tokens"]),
        fields["confidence"],
        fields["engine"],
        fields["accepted"],
        tuple(Alternative(tuple(t), text, c) for t, text, c in fields["alternatives"]),
        fields["final"],
        fields["details"],
    )


def _reply_in(popped: Any) -> dict[str, Any] | None:
    """The reply a BLPOP gave, if any (one that cannot be read is logged and dropped)."""
    if popped is None:
        return None
    try:
        reply: dict[str, Any] = json.loads(popped[1])
        str(reply["id"])
    except (ValueError, KeyError, TypeError) as exc:
        log.error("dropped a message that is not a speech reply: %r", exc)
        return None
    return reply


def _plain(value: Any) -> Any:
    """JSON for what engines put in a result's details (numpy numbers and arrays)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# -- profiles ---------------------------------------------------------------------------


def pack_profile(path: Path) -> bytes:
    """An enrolled profile as one archive: the manifest and its takes, the same bytes for
    the same profile (names sorted, times and owners left out)."""
    profile = Profile.open(path)
    files = sorted({MANIFEST, *(take.file for take in profile.takes)})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in files:
            data = (path / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_profile(archive: bytes, into: Path) -> None:
    """Put a shared profile where it will be read from; a half-written one is never seen."""
    into.parent.mkdir(parents=True, exist_ok=True)
    partial = into.with_name(f"{into.name}.{os.getpid()}.partial")
    with tarfile.open(fileobj=io.BytesIO(archive)) as unpacked:
        unpacked.extractall(partial, filter="data")
    try:
        partial.rename(into)
    except OSError:  # another worker of this host put it there first
        shutil.rmtree(partial, ignore_errors=True)
        if not (into / MANIFEST).is_file():
            raise


class SharedProfiles:
    """An app's profiles, put where workers find them: under their digest, once per
    version (a new enrollment rewrites the manifest, so it is a new version)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._lock = threading.Lock()
        self._shared: dict[Path, tuple[tuple[int, int], str, float]] = {}

    def digest(self, path: Path) -> str:
        """The digest workers know `path` by, shared now unless it was lately."""
        manifest = (path / MANIFEST).stat()
        version = (manifest.st_mtime_ns, manifest.st_size)
        with self._lock:
            known = self._shared.get(path)
        if known and known[0] == version and time.monotonic() - known[2] < PROFILE_RESHARE_S:
            return known[1]
        archive = pack_profile(path)
        digest = hashlib.sha256(archive).hexdigest()
        self.client.set(self.keys.profile(digest), archive, ex=PROFILE_TTL_S)
        with self._lock:
            self._shared[path] = (version, digest, time.monotonic())
        return digest


# -- the app's side -----------------------------------------------------------------------


@dataclass
class _Pending:
    """A reading an app process waits for: its reply, once there, and who is reading it."""

    reply: Future[dict[str, Any]] = field(default_factory=Future)
    taken_by: str | None = None


class BrokeredSpeech:
    """Recognition by the speech workers sharing a Redis (prompts are rendered here, as
    with `SpeechWorkers`). This process starts `local_workers` of them itself; with none,
    the others (`wavepick speech-worker` on any host) do all the reading. Thread-safe:
    each call blocks its thread until a worker answers or `deadline_s` has passed."""

    def __init__(
        self,
        setup: SpeechSetup,
        redis_url: str,
        prefix: str,
        *,
        local_workers: int = 0,
        received_profiles: Path | None = None,
        deadline_s: float = 10.0,
    ) -> None:
        self.setup = setup
        self.redis_url = redis_url
        self.keys = Keys(prefix)
        self.local_workers = local_workers
        self.received_profiles = received_profiles or Path("speech-profiles")
        self.deadline_s = deadline_s
        self.client = redis.Redis.from_url(redis_url)
        self.profiles = SharedProfiles(self.client, self.keys)
        self.synthesizer = Synthesizer(cache_dir=setup.prompt_cache_dir)
        self._lock = threading.Lock()
        self._processes: list[BaseProcess] = []
        # replies to this process's readings come on one list, taken by one thread
        self._replies = self.keys.replies(uuid.uuid4().hex)
        self._waiting: dict[str, _Pending] = {}
        self._live: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._collector: threading.Thread | None = None
        self._closed = threading.Event()

    def recognize(
        self,
        audio: np.ndarray,
        grammar: Grammar,
        sample_rate: int,
        profile: Path | None,
        wanted: Wanted | None = None,
    ) -> Result:
        if wanted is not None and not wanted():
            raise NotWanted
        if self.local_workers:
            self._start_local()
        self._collect_replies()
        reading = uuid.uuid4().hex
        pending = _Pending()
        with self._lock:
            self._waiting[reading] = pending
        try:
            digest = self.profiles.digest(profile) if profile is not None else None
            message = ReadingRequest(
                reading, self._replies, grammar, sample_rate, digest, audio
            ).encode()
            self.client.lpush(self.keys.readings, message)
            return decode_reply(self._reply(reading, pending, message, wanted))
        except RedisError as exc:  # the client's socket errors included
            raise SpeechUnavailable(f"the speech broker cannot be reached: {exc}") from exc
        finally:
            with self._lock:
                self._waiting.pop(reading, None)

    def _reply(
        self, reading: str, pending: _Pending, message: bytes, wanted: Wanted | None
    ) -> dict[str, Any]:
        """The worker's reply. While it is waited for, `wanted` is asked every
        `WANTED_POLL_S` (here, without a round trip); once it says no, or the deadline has
        passed, the reading is marked unwanted so that a worker skips it or stops it. A
        reading whose worker has gone (`HEARTBEAT_LAPSE_S` unheard) is put back once."""
        deadline = time.monotonic() + self.deadline_s
        check_taker_at = time.monotonic() + TAKER_CHECK_S
        put_back = False
        while (left := deadline - time.monotonic()) > 0:
            try:
                return pending.reply.result(timeout=min(WANTED_POLL_S, left))
            except FutureTimeout:
                if wanted is not None and not wanted():
                    self._unwant(reading)
                    raise NotWanted from None
            if not put_back and time.monotonic() >= check_taker_at:
                check_taker_at += TAKER_CHECK_S
                taker = pending.taken_by
                if taker is not None and taker not in self._live_workers():
                    log.warning("speech worker %s went with a reading; it is put back", taker)
                    self.client.lpush(self.keys.readings, message)
                    put_back = True
        self._unwant(reading)
        workers = len(self.workers())
        raise SpeechUnavailable(
            f"no speech worker read the answer within {self.deadline_s:g} s "
            f"({workers} worker{'' if workers == 1 else 's'} running)"
        )

    def _unwant(self, reading: str) -> None:
        self.client.set(self.keys.unwanted(reading), 1, ex=UNWANTED_TTL_S)

    def _live_workers(self) -> frozenset[str]:
        """The workers heard from lately, asked of Redis at most once a heartbeat."""
        checked_at, live = self._live
        if time.monotonic() - checked_at > HEARTBEAT_S:
            live = frozenset(self.workers())
            self._live = (time.monotonic(), live)
        return live

    def _collect_replies(self) -> None:
        """Start the thread that hands replies to the readings waiting for them, once."""
        with self._lock:
            if self._collector is None or not self._collector.is_alive():
                self._collector = threading.Thread(
                    target=self._collect, name="speech-replies", daemon=True
                )
                self._collector.start()

    def _collect(self) -> None:
        client = redis.Redis.from_url(self.redis_url)  # a connection of its own, blocking
        failing = False
        while not self._closed.is_set():
            try:
                popped = client.blpop([self._replies], timeout=1)
            except RedisError as exc:
                if not failing:  # once an outage, not every second of it
                    log.warning("speech replies cannot be collected: %s", exc)
                failing = True
                self._closed.wait(1.0)
                continue
            if failing:
                log.warning("speech replies are collected again")
                failing = False
            reply = _reply_in(popped)
            if reply is None:
                continue
            with self._lock:
                pending = self._waiting.get(reply["id"])
            if pending is None:
                continue  # given up on
            if "taken_by" in reply:
                pending.taken_by = str(reply["taken_by"])
            elif not pending.reply.done():
                pending.reply.set_result(reply)
        client.close()

    def workers(self) -> list[str]:
        """The workers heard from lately, as host:pid."""
        return running_workers(self.client, self.keys)

    def synthesize(self, text: str, locale: str, sample_rate: int) -> bytes:
        return self.synthesizer.synthesize(text, locale=locale, sample_rate=sample_rate)

    def warm_up(self) -> None:
        """Start this process's own workers and wait until each has warmed up and is
        taking readings; with none, log the workers there are."""
        if not self.local_workers:
            log.info("speech is read by the workers sharing Redis: %s", self.workers() or "none")
            return
        processes = self._start_local()
        await_workers(self.client, self.keys, processes)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            processes, self._processes = self._processes, []
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)
        self.client.close()

    def pids(self) -> list[int]:
        """This process's own workers (for tests and operations)."""
        with self._lock:
            return sorted(p.pid for p in self._processes if p.pid is not None and p.is_alive())

    def _start_local(self) -> list[BaseProcess]:
        """Start the local workers once, and again any that died."""
        with self._lock:
            alive = [p for p in self._processes if p.is_alive()]
            while len(alive) < self.local_workers:
                alive.append(
                    start_worker(
                        self.setup, self.redis_url, self.keys.prefix, self.received_profiles
                    )
                )
            self._processes = alive
            return list(alive)


# -- the worker's side --------------------------------------------------------------------


def start_worker(
    setup: SpeechSetup, redis_url: str, prefix: str, received_profiles: Path
) -> BaseProcess:
    """One speech worker process that ends with this one (started with `spawn`, for the
    reasons `voice.workers` gives)."""
    process = multiprocessing.get_context("spawn").Process(
        target=_worker_main,
        args=(setup, redis_url, prefix, received_profiles),
        name="wavepick-speech-worker",
        daemon=True,
    )
    process.start()
    return process


def await_workers(
    client: redis.Redis,
    keys: Keys,
    processes: list[BaseProcess],
    timeout_s: float = 600.0,
    stop: threading.Event | None = None,
) -> None:
    """Wait until `processes` have warmed up and are taking readings (each says so once it
    has), or `stop` is set; `RuntimeError` when one has ended first or it takes longer
    than `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while stop is None or not stop.is_set():
        ready = set(running_workers(client, keys))
        if all(worker_name(p.pid) in ready for p in processes if p.pid is not None):
            return
        ended = [p for p in processes if not p.is_alive()]
        if ended:
            raise RuntimeError(f"speech worker {ended[0].pid} ended (exit {ended[0].exitcode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"speech workers not ready after {timeout_s:g} s")
        time.sleep(0.2)


def running_workers(client: redis.Redis, keys: Keys) -> list[str]:
    since = redis_time(client) - HEARTBEAT_LAPSE_S
    names = client.zrangebyscore(keys.workers, since, "+inf")
    return sorted(_bytes(name).decode() for name in names)


def redis_time(client: redis.Redis) -> float:
    """Now, by the Redis server's clock: the one clock every host of a deployment shares."""
    seconds, microseconds = client.time()
    return seconds + microseconds / 1e6


def worker_name(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def _worker_main(setup: SpeechSetup, redis_url: str, prefix: str, received: Path) -> None:
    logging.basicConfig(level=logging.WARNING, format="speech worker %(process)d: %(message)s")
    end_with_parent()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve_readings(setup, redis_url, prefix, received, stop)


def serve_readings(
    setup: SpeechSetup, redis_url: str, prefix: str, received: Path, stop: threading.Event
) -> None:
    """Warm up, then read what the apps sharing this Redis ask, one reading at a time,
    until `stop` is set (within a second; a reading under way is finished)."""
    speech = LocalSpeech(setup)
    speech.warm_up()
    client = redis.Redis.from_url(redis_url)
    keys = Keys(prefix)
    name = worker_name()
    heartbeat = threading.Thread(
        target=_beat, args=(client, keys, name, stop), name="heartbeat", daemon=True
    )
    heartbeat.start()
    try:
        while not stop.is_set():
            try:
                reading = _next_reading(client, keys)
                if reading is not None:
                    _answer(speech, client, keys, received, name, reading)
            except RedisError as exc:
                log.warning("the speech broker cannot be reached: %s", exc)
                stop.wait(1.0)
    finally:
        stop.set()
        heartbeat.join(timeout=2 * HEARTBEAT_S)
        with contextlib.suppress(RedisError, OSError):
            client.zrem(keys.workers, name)


def _next_reading(client: redis.Redis, keys: Keys) -> ReadingRequest | None:
    """The oldest reading waiting; None after a second without one, or for a message that
    is not a reading (dropped, so that it cannot stop every worker in turn)."""
    popped = client.brpop([keys.readings], timeout=1)
    if popped is None:
        return None
    try:
        return ReadingRequest.decode(_bytes(popped[1]))
    except (ValueError, KeyError, TypeError) as exc:
        log.error("dropped a message that is not a reading: %r", exc)
        return None


def _beat(client: redis.Redis, keys: Keys, name: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            now = redis_time(client)
            client.zadd(keys.workers, {name: now})
            client.zremrangebyscore(keys.workers, "-inf", now - 100 * HEARTBEAT_LAPSE_S)
        except (RedisError, OSError) as exc:
            log.warning("cannot say this worker is there: %s", exc)
        stop.wait(HEARTBEAT_S)


def _answer(
    speech: LocalSpeech,
    client: redis.Redis,
    keys: Keys,
    received: Path,
    name: str,
    reading: ReadingRequest,
) -> None:
    unwanted = keys.unwanted(reading.id)

    def wanted() -> bool:
        return not client.exists(unwanted)

    _reply_to(client, reading, json.dumps({"id": reading.id, "taken_by": name}).encode())
    try:
        profile = _profile(client, keys, received, reading.profile)
        result = speech.recognize(
            reading.audio, reading.grammar, reading.sample_rate, profile, wanted
        )
        reply = encode_result(reading.id, result)
    except NotWanted:
        reply = json.dumps({"id": reading.id, "unwanted": True}).encode()
    except RedisError:
        raise
    except Exception as exc:
        log.exception("reading %s failed", reading.id)
        failed = {"id": reading.id, "error": f"{type(exc).__name__}: {exc}", "worker": name}
        reply = json.dumps(failed).encode()
    _reply_to(client, reading, reply)


def _reply_to(client: redis.Redis, reading: ReadingRequest, message: bytes) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.lpush(reading.reply_to, message)
    pipe.expire(reading.reply_to, REPLY_TTL_S)
    pipe.execute()


def _profile(client: redis.Redis, keys: Keys, received: Path, digest: str | None) -> Path | None:
    """The shared profile `digest` on this worker's disk, fetched the first time."""
    if digest is None:
        return None
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"not a profile digest: {digest[:80]!r}")
    path = received / digest
    if not (path / MANIFEST).is_file():
        archive = client.get(keys.profile(digest))
        if archive is None:
            log.warning("profile %s is no longer shared; reading without it", digest[:12])
            return None
        unpack_profile(_bytes(archive), path)
    return path


def _bytes(value: object) -> bytes:
    """A value from Redis, which gives bytes (the client does not decode responses)."""
    if not isinstance(value, bytes):
        raise TypeError(f"expected bytes from Redis, got {type(value).__name__}")
    return value
