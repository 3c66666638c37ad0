"""Events v1: facts of the floor, pushed to whoever watches a warehouse, on any process.

**Published once, and only when committed.** A service `record`s an event on the session
of its unit of work; `EventBus.attach` publishes what a session recorded after its
transaction commits, and forgets it when the transaction (or the savepoint it was recorded
in) rolls back. A unit of work retried after a deadlock runs in a fresh session, so only
the attempt that commits publishes. What is not a database fact (a headset connected, an
answer heard) is published at once with `EventBus.publish`. Both may be called from any
thread and never block: the bus hands the event to its event loop.

**Subscribers never slow publishers.** Each `Subscription` holds at most `limit` frames
of the warehouses it watches. Delivery appends without waiting; a subscriber that falls
`limit` frames behind is marked overflowed and gets nothing more, and its owner (the
WebSocket of `server.eventsocket`) drops it. Memory is bounded per subscriber, and one
stuck client costs the others nothing.

**Between processes** (`WAVEPICK_REDIS_URL`), every event is appended to one Redis stream
(`WAVEPICK_EVENTS_STREAM`, trimmed to about `STREAM_LENGTH` entries); each process reads
the stream on from where it started and delivers to its own subscribers, its own events
included, so every subscriber on every process sees the events in one order. A stream
rather than pub/sub: a process whose Redis connection breaks reads on from the last entry
it saw once it is back, where pub/sub would silently lose what was published meanwhile,
and a publisher whose write failed retries it (each event carries an id, so a write that
was applied before the failure is delivered once). The cost is an XADD instead of a
PUBLISH and the trimmed stream's memory in Redis (a few MB). Without Redis, events fan
out in this process only.

Delivery is live, not durable: a client that was not connected misses what happened
meanwhile, so a console loads the current state over HTTP when it (re)connects and
applies events from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from rtc.tasks import stopped

log = logging.getLogger(__name__)

PENDING = "wavepick.events"  # the `Session.info` key of the events a session recorded
STREAM_LENGTH = 10_000  # entries the Redis stream keeps (approximately)
OUTBOX_LIMIT = 10_000  # events waiting for Redis; more are dropped (and logged)
BATCH = 500  # entries written or read in one round trip
READ_BLOCK_MS = 5_000
SOCKET_SLACK_S = 5.0
RETRY_S = (0.1, 5.0)  # first and longest wait before retrying Redis
SEEN_IDS = 4096  # event ids remembered to deliver a retried write once


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timestamp(at: dt.datetime) -> str:
    """UTC ISO 8601 with a `Z`, as the HTTP API writes times."""
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class Event:
    """One fact about a warehouse. Each type (`server.services.floor_events`) names its
    `type` and adds fields; every field is a key of the JSON frame, after `type`,
    `warehouse` (the code) and `at` (when it happened, UTC)."""

    type: ClassVar[str]
    warehouse: str
    at: dt.datetime = field(default_factory=utcnow)

    def frame(self) -> dict[str, Any]:
        return {"type": self.type, **dataclasses.asdict(self)}

    def encode(self) -> str:
        return json.dumps(self.frame(), default=_json_value, separators=(",", ":"))


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return timestamp(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class _Envelope:
    """An event as it travels: its warehouse (what subscribers filter on), its frame
    encoded once for every subscriber, and an id that tells a retried Redis write."""

    warehouse: str
    text: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


def record(session: Session, event: Event) -> None:
    """Publish `event` once the session's transaction commits; never if it rolls back
    (nor if the savepoint it is recorded in does). Sessions of a factory the bus is not
    attached to (a script, a test of a service) keep it to themselves."""
    place = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(PENDING, []).append((place, event))


class Overflowed(Exception):
    """The subscriber fell too far behind: it gets no more frames."""


class Subscription:
    """The frames of some warehouses (`warehouses` None: all) waiting for one consumer,
    at most `limit` of them. Used on the bus's event loop only."""

    def __init__(self, warehouses: frozenset[str] | None, limit: int) -> None:
        self.warehouses = warehouses
        self.limit = limit
        self.overflowed = asyncio.Event()
        self._frames: deque[str] = deque()
        self._arrived = asyncio.Event()

    def watches(self, warehouse: str) -> bool:
        return self.warehouses is None or warehouse in self.warehouses

    def put(self, text: str) -> None:
        """Queue a frame; past the limit, drop them all and mark the subscriber overflowed
        (its frames are stale by now: the client reloads when it reconnects)."""
        if self.overflowed.is_set():
            return
        if len(self._frames) >= self.limit:
            self._frames.clear()
            self.overflowed.set()
        else:
            self._frames.append(text)
        self._arrived.set()

    async def next(self) -> str:
        """The next frame, in the order published; `Overflowed` once the consumer fell
        behind."""
        while not self._frames:
            if self.overflowed.is_set():
                raise Overflowed
            self._arrived.clear()
            await self._arrived.wait()
        if self.overflowed.is_set():
            raise Overflowed
        return self._frames.popleft()


class EventBus:
    """Fans events out to this process's subscribers, through Redis when `redis_url` is
    given (see the module's docstring). `start` and `stop` run in the app's lifespan."""

    def __init__(self, *, redis_url: str | None = None, stream: str = "wavepick:events") -> None:
        self.redis_url = redis_url
        self.stream = stream
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: set[Subscription] = set()
        self._redis: _RedisStream | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.redis_url:
            self._redis = _RedisStream(self.redis_url, self.stream, self._deliver)
            self._redis.start()

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.stop()
            self._redis = None
        self._loop = None

    @property
    def subscribers(self) -> int:
        """How many subscriptions this process holds now."""
        return len(self._subscriptions)

    def attach(self, sessions: sessionmaker[Session]) -> None:
        """Publish what the sessions of `sessions` record, once committed."""

        @orm_event.listens_for(sessions, "after_commit")
        def committed(session: Session) -> None:
            for _place, event in session.info.pop(PENDING, ()):
                self.publish(event)

        @orm_event.listens_for(sessions, "after_soft_rollback")
        def rolled_back(session: Session, previous: SessionTransaction) -> None:
            pending = session.info.get(PENDING)
            if pending and not previous.nested:
                pending.clear()
            elif pending:
                pending[:] = [(p, e) for p, e in pending if not _within(p, previous)]

    def publish(self, event: Event) -> None:
        """Send `event` to its warehouse's subscribers on every process. Any thread may
        call it; it never blocks and never raises (a committed fact must not turn into a
        failed request): an event that cannot be sent is logged and dropped."""
        loop = self._loop
        if loop is None:
            log.debug("no event bus running: %s dropped", event.type)
            return
        try:
            envelope = _Envelope(event.warehouse, event.encode())
            loop.call_soon_threadsafe(self._route, envelope)
        except Exception:  # a closed loop at shutdown, or a field that is not JSON
            log.exception("could not publish a %s event", event.type)

    @contextlib.contextmanager
    def subscribe(self, warehouses: frozenset[str] | None, *, limit: int) -> Iterator[Subscription]:
        """A subscription to the events of `warehouses` (None: all) while the block runs.
        Call on the bus's event loop."""
        subscription = Subscription(warehouses, limit)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def _route(self, envelope: _Envelope) -> None:
        if self._redis is not None:
            self._redis.send(envelope)
        else:
            self._deliver(envelope)

    def _deliver(self, envelope: _Envelope) -> None:
        for subscription in self._subscriptions:
            if subscription.watches(envelope.warehouse):
                subscription.put(envelope.text)


def _within(place: SessionTransaction | None, ended: SessionTransaction) -> bool:
    """Whether `place` is the transaction `ended` or one begun inside it."""
    while place is not None:
        if place is ended:
            return True
        place = place.parent
    return False


class _RedisStream:
    """The events of every process, through one Redis stream: a writer task appends this
    process's events, a reader task delivers everyone's. Both retry while Redis is away;
    neither ever stops the server."""

    def __init__(self, url: str, stream: str, deliver: Callable[[_Envelope], None]) -> None:
        self.stream = stream
        self.deliver = deliver
        # a blocking read holds its connection READ_BLOCK_MS: the socket waits longer
        self.client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=READ_BLOCK_MS / 1000 + SOCKET_SLACK_S,
            socket_connect_timeout=SOCKET_SLACK_S,
        )
        self.outbox: asyncio.Queue[_Envelope] = asyncio.Queue(OUTBOX_LIMIT)
        self.dropped = 0
        self._seen: deque[str] = deque(maxlen=SEEN_IDS)
        self._seen_set: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._read(), name="events-redis-read"),
            asyncio.create_task(self._write(), name="events-redis-write"),
        ]

    async def stop(self) -> None:
        await stopped(*self._tasks)
        await self.client.aclose()

    def send(self, envelope: _Envelope) -> None:
        try:
            self.outbox.put_nowait(envelope)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("Redis is not taking events: %d dropped so far", self.dropped)

    async def _write(self) -> None:
        while True:
            batch = [await self.outbox.get()]
            while len(batch) < BATCH and not self.outbox.empty():
                batch.append(self.outbox.get_nowait())
            await self._append(batch)

    async def _append(self, batch: list[_Envelope]) -> None:
        """Append `batch` to the stream, retrying until Redis takes it: a retry of a write
        that went through is delivered once all the same (`_deliver_once`)."""
        wait = RETRY_S[0]
        while True:
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for envelope in batch:
                        fields: dict[FieldT, EncodableT] = {
                            "i": envelope.id,
                            "w": envelope.warehouse,
                            "e": envelope.text,
                        }
                        pipe.xadd(self.stream, fields, maxlen=STREAM_LENGTH, approximate=True)
                    await pipe.execute()
                return
            except (RedisError, OSError) as exc:
                log.warning("could not append events to Redis (%s); retrying", exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_S[1])

    async def _read(self) -> None:
        last: str | None = None
        wait = RETRY_S[0]
        while True:
            try:
                if last is None:
                    last = await self._tail()
                answer: Any = await self.client.xread(
                    {self.stream: last}, count=BATCH, block=READ_BLOCK_MS
                )
                wait = RETRY_S[0]
            except (RedisError, OSError) as exc:
                log.warning("could not read events from Redis (%s); retrying", exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_S[1])
                continue
            streams = answer.items() if isinstance(answer, dict) else answer or ()
            for _stream, entries in streams:
                for entry_id, fields in entries:
                    last = str(entry_id)
                    self._deliver_once(fields or {})

    async def _tail(self) -> str:
        """The id of the stream's last entry: this process delivers what comes after."""
        newest = await self.client.xrevrange(self.stream, count=1)
        return str(newest[0][0]) if newest else "0-0"

    def _deliver_once(self, fields: dict[str, str]) -> None:
        try:
            envelope = _Envelope(fields["w"], fields["e"], fields["i"])
        except KeyError:
            log.warning("an entry of %s is not an event: %s", self.stream, sorted(fields))
            return
        if envelope.id in self._seen_set:
            return
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(envelope.id)
        self._seen_set.add(envelope.id)
        self.deliver(envelope)
