"""Where a headset dialog waits between connections: the snapshot of each operator's
dialog (`PickDialog.snapshot`, a few hundred bytes of JSON), written after every answer
and when a session closes, read when the operator connects again, and forgotten when the
dialog ends (the picker signed off). A reconnect resumes at the exact prompt it left.

`MemorySnapshots` keeps them in this process: enough for one process, and what the
tests of a conversation use. `RedisSnapshots` keeps them in Redis, used whenever
`WAVEPICK_REDIS_URL` is set, so that a headset may reconnect to any process (no sticky
sessions behind a load balancer) and a process may die without taking dialogs with it.

Redis rather than the database: a snapshot is written after every answer of every picker,
the busiest path there is, and read back only on a reconnect. In Redis that is one `SET`
without a transaction, a row lock or a WAL record; in PostgreSQL it would be an `UPDATE`
per answer in the tables the ledger writes to. Losing a snapshot (Redis restarted without
persistence) costs little: the work itself is in the database, so the dialog starts again
at its first prompt and the picker is sent back to the line they were at, with nothing
picked twice. Redis is already required by several processes (events), and expires old
snapshots by itself.

Both stores keep a snapshot for `ttl` after it was last written (`WAVEPICK_HEADSET_
SNAPSHOT_HOURS`, a shift by default): until then a picker who comes back resumes where
they stopped, as they did when one process kept them for as long as it ran. When Redis
cannot be reached, saving is logged and skipped (the dialog goes on; a reconnect meanwhile
starts it from its first prompt) and loading finds nothing.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Snapshot = dict[str, Any]


class SnapshotStore(Protocol):
    """The snapshots of the operators' dialogs, by operator."""

    async def load(self, operator: str) -> Snapshot | None: ...

    async def save(self, operator: str, snapshot: Snapshot) -> None: ...

    async def forget(self, operator: str) -> None: ...


class MemorySnapshots:
    """The snapshots of one process, each kept `ttl` seconds after its last write."""

    def __init__(self, ttl: float = 12 * 3600) -> None:
        self.ttl = ttl
        self._kept: dict[str, tuple[float, Snapshot]] = {}

    async def load(self, operator: str) -> Snapshot | None:
        return self.peek(operator)

    async def save(self, operator: str, snapshot: Snapshot) -> None:
        self._kept[operator] = (time.monotonic() + self.ttl, snapshot)

    async def forget(self, operator: str) -> None:
        self._kept.pop(operator, None)

    def peek(self, operator: str) -> Snapshot | None:
        """The operator's snapshot, if one is kept (without awaiting: for tests)."""
        kept = self._kept.get(operator)
        if kept is None:
            return None
        if kept[0] <= time.monotonic():
            del self._kept[operator]
            return None
        return kept[1]


class RedisSnapshots:
    """The snapshots of every process, as JSON strings in Redis under
    `<prefix>:headset:snapshot:<operator>`, each expiring `ttl` seconds after its last
    write."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, ttl: float) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = int(ttl * 1000)

    def key(self, operator: str) -> str:
        return f"{self.prefix}:headset:snapshot:{operator}"

    async def load(self, operator: str) -> Snapshot | None:
        try:
            text = await self.client.get(self.key(operator))
        except (RedisError, OSError) as exc:
            log.warning("headset %s: no snapshot read from Redis (%s)", operator, exc)
            return None
        if text is None:
            return None
        try:
            snapshot: Snapshot = json.loads(text)
        except ValueError:
            log.warning("headset %s: the snapshot in Redis is not JSON; ignored", operator)
            return None
        return snapshot

    async def save(self, operator: str, snapshot: Snapshot) -> None:
        text = json.dumps(snapshot, separators=(",", ":"))
        try:
            await self.client.set(self.key(operator), text, px=self.ttl_ms)
        except (RedisError, OSError) as exc:
            log.warning("headset %s: snapshot not saved to Redis (%s)", operator, exc)

    async def forget(self, operator: str) -> None:
        try:
            await self.client.delete(self.key(operator))
        except (RedisError, OSError) as exc:
            log.warning("headset %s: snapshot not deleted from Redis (%s)", operator, exc)
