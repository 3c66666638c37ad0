"""One live headset session per operator, across every process of a deployment.

The rule is the one a single process has always kept (`SocketRegistry`, exclusive): the
operator's newest connection takes over, the older one is ended with 4409
`session_replaced`, and the dialog goes on in the newer one where it stopped. Across
processes the dialog must never be live in two at once (both would answer the picker and
write snapshots over each other), so a session holds a lease on its operator in Redis for
as long as it runs:

- The lease is a key `<prefix>:headset:lease:<operator>` set with `SET NX PX` to a token
  of its own: the number the connection drew (`INCR`, so newer connections draw higher
  numbers) and a random part. The session renews it every third of `ttl` while it runs
  (only while the key still holds its token: a Lua compare-and-expire; a lease that
  lapsed because its process was too busy to renew in time is taken again, unless another
  connection of the operator came meanwhile) and deletes it when it closes
  (compare-and-delete). A process that dies stops renewing, and its leases
  expire within `ttl` seconds (`WAVEPICK_HEADSET_LEASE_SECONDS`): the picker reconnects
  to another process and goes on.
- A new connection that finds the lease held publishes a take-over request on
  `<prefix>:headset:takeover`; the process holding a lease of a lower number ends that
  session (4409), which releases the lease once it has stopped and saved nothing more;
  the new connection polls for the lease meanwhile, and then loads the dialog's snapshot.
  A request never ends a session newer than the connection that asked.
- A connection that gets no lease within `wait` seconds (longer than `ttl`: the holder
  answered no request and did not die either) is refused with 4409 `session_busy`.
- A session whose lease was lost (taken by another connection, or expired while Redis
  could not be reached) is ended: 4409 `session_replaced` in the first case, 1013
  `store_unavailable` in the second. A connection that cannot reach Redis at all is
  refused with 1013 `store_unavailable`: the picker's headset tries again.

`LocalLeases` is the one-process version: nothing to hold, the socket registry's take-over
is the whole rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rtc.tasks import spawn, stopped
from server.sockets import REPLACED, SESSION_REPLACED, Ending

log = logging.getLogger(__name__)

TRY_AGAIN_LATER = 1013
BUSY = Ending(
    SESSION_REPLACED,
    "session_busy",
    "this operator's session on another server could not be taken over; try again later",
)
UNAVAILABLE = Ending(
    TRY_AGAIN_LATER,
    "store_unavailable",
    "the server cannot reach the store that holds sessions; reconnect in a few seconds",
)
POLL_S = 0.05  # how often a waiting connection tries the lease again
ASK_AGAIN_S = 1.0  # how often it repeats its take-over request
RETRY_S = (0.1, 5.0)  # first and longest wait before the listener reconnects

End = Callable[[Ending], Coroutine[Any, Any, None]]

# renewed while it is ours; taken again if it lapsed while no connection of the operator
# came since (a process too busy to renew in time for a few seconds is not another
# session, but one that came and went may have moved the dialog on)
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not holder and redis.call('get', KEYS[2]) == ARGV[3] then
  redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaseRefused(Exception):
    """No lease was got; `ending` says how to close the connection that asked."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.message)
        self.ending = ending


class OperatorLeases(Protocol):
    def hold(self, operator: str, end: End) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the operator's lease while the body runs the session; `end` ends the
        session from outside (taken over, lease lost). Raises `LeaseRefused`."""
        ...


class LocalLeases:
    """One process: the socket registry already keeps one session per operator."""

    @contextlib.asynccontextmanager
    async def hold(self, operator: str, end: End) -> AsyncIterator[None]:
        yield

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@dataclass(eq=False)
class _Held:
    number: int
    token: str
    end: End
    renewed_at: float = field(default_factory=time.monotonic)
    taken_over: bool = False  # asked to end for a newer connection (renewed until it has)


class RedisLeases:
    """Leases on operators in Redis, shared by every process of the deployment. `start`
    listens for take-over requests on `listener` (a client of its own: its connection
    waits for messages without a read timeout); `stop` stops listening."""

    def __init__(
        self,
        client: aioredis.Redis,
        listener: aioredis.Redis,
        *,
        prefix: str,
        ttl: float,
        wait: float | None = None,
    ) -> None:
        self.client = client
        self.listener = listener
        self.prefix = prefix
        self.ttl = ttl
        self.wait = wait if wait is not None else 2 * ttl + 1
        self.channel = f"{prefix}:headset:takeover"
        self._held: dict[str, _Held] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._renewing = asyncio.Lock()  # a lease is never released while being renewed
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    def key(self, operator: str) -> str:
        return f"{self.prefix}:headset:lease:{operator}"

    def number_key(self, operator: str) -> str:
        """The counter each connection of `operator` draws its number from."""
        return f"{self.key(operator)}:number"

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="headset-lease-takeovers")
        with contextlib.suppress(TimeoutError):  # Redis away: the listener keeps trying
            async with asyncio.timeout(5):
                await self._listening.wait()

    async def stop(self) -> None:
        if self._renewer is not None:
            await stopped(self._renewer)
        if self._listener is not None:
            await stopped(self._listener)
        await self.listener.aclose()

    @contextlib.asynccontextmanager
    async def hold(self, operator: str, end: End) -> AsyncIterator[None]:
        held = await self._acquire(operator, end)
        self._held[operator] = held
        if self._renewer is None or self._renewer.done():
            self._renewer = spawn(self._renew(), "headset lease renewals")
        try:
            yield
        finally:
            await self._release(operator, held)

    async def _release(self, operator: str, held: _Held) -> None:
        async with self._renewing:  # not renewed after this, which would take it again
            if self._held.get(operator) is held:
                del self._held[operator]
            try:
                await self.client.eval(_RELEASE, 1, self.key(operator), held.token)
            except (RedisError, OSError) as exc:
                log.warning("headset %s: lease not released (%s); it expires", operator, exc)

    async def _acquire(self, operator: str, end: End) -> _Held:
        key = self.key(operator)
        try:
            number = int(await self.client.incr(self.number_key(operator)))
            token = f"{number}:{uuid.uuid4().hex}"
            deadline = time.monotonic() + self.wait
            asked_at = None
            while True:
                if await self.client.set(key, token, nx=True, px=int(self.ttl * 1000)):
                    return _Held(number, token, end)
                now = time.monotonic()
                if now >= deadline:
                    log.warning("headset %s: the session elsewhere was not taken over", operator)
                    raise LeaseRefused(BUSY)
                if asked_at is None or now - asked_at >= ASK_AGAIN_S:
                    await self.client.publish(self.channel, f"{number}:{operator}")
                    asked_at = now
                await asyncio.sleep(POLL_S)
        except (RedisError, OSError) as exc:
            log.warning("headset %s: no lease, Redis is not answering (%s)", operator, exc)
            raise LeaseRefused(UNAVAILABLE) from exc

    async def _renew(self) -> None:
        """Renew every lease held every third of its life, while any is: a session whose
        lease is someone else's (or lapsed once another connection of the operator came)
        is ended, and so is one whose lease Redis did not renew for as long as it lives."""
        while self._held:
            await asyncio.sleep(self.ttl / 3)
            async with self._renewing:
                held = list(self._held.items())
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for operator, lease in held:
                            keys = (self.key(operator), self.number_key(operator))
                            pipe.eval(
                                _RENEW, 2, *keys, lease.token, int(self.ttl * 1000), lease.number
                            )
                        kept = await pipe.execute(raise_on_error=False)
                except (RedisError, OSError) as exc:
                    log.warning("headset leases not renewed (%s); retrying", exc)
                    kept = [exc] * len(held)
            now = time.monotonic()
            for (operator, lease), renewed in zip(held, kept, strict=True):
                if isinstance(renewed, Exception):
                    if now - lease.renewed_at >= self.ttl:
                        log.warning("headset %s: lease expired while Redis was away", operator)
                        self._lost(operator, lease, UNAVAILABLE)
                elif not renewed:
                    log.warning("headset %s: lease lost to another session", operator)
                    self._lost(operator, lease, REPLACED)
                else:
                    lease.renewed_at = now

    def _lost(self, operator: str, held: _Held, ending: Ending) -> None:
        """End the session of a lease no longer ours, and renew it no more."""
        if self._held.get(operator) is held:
            del self._held[operator]
        spawn(held.end(ending), f"end headset {operator}")

    async def _listen(self) -> None:
        wait = RETRY_S[0]
        while True:
            try:
                async with self.listener.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._listening.set()
                    wait = RETRY_S[0]
                    async for message in pubsub.listen():
                        self._on_request(message)
            except (RedisError, OSError) as exc:
                log.warning("take-over requests not heard (%s); listening again", exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_S[1])

    def _on_request(self, message: dict[str, Any]) -> None:
        """A connection numbered `number` wants `operator`: end this process's session of
        that operator if it is older."""
        data = message.get("data")
        text = data.decode() if isinstance(data, bytes) else str(data)
        number, _, operator = text.partition(":")
        held = self._held.get(operator)
        if held is None or held.taken_over or not number.isdigit() or int(number) <= held.number:
            return
        log.info("headset of %s taken over by a connection to another process", operator)
        held.taken_over = True  # asked once: later requests find nothing more to end
        spawn(held.end(REPLACED), f"end headset {operator}")
