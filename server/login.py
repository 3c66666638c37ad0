"""Signing in: password checks throttled per user and per client, with a bound on how many
passwords are hashed at once, and the same hashing work whether the user exists or not.

Failed attempts are counted in a moving window (the `limits` library) per user name and
per client address; past either limit an attempt is refused with 429 and `Retry-After`
without looking at the password, so a right password after a guessing run waits too. The
counts live in memory (one server process) or in Redis when `WAVEPICK_REDIS_URL` is set
(several processes share them).

argon2 takes 64 MiB and about half a second of one core per check: at most
`WAVEPICK_PASSWORD_HASH_CONCURRENCY` run at once, and when more than
`WAVEPICK_LOGIN_QUEUE` wait, an attempt is answered 503 at once instead of queueing. An
unknown or disabled user is checked against a hash of a random password, so the answer
takes as long as for a real user.
"""

from __future__ import annotations

import math
import secrets
import threading
import time

import anyio
import anyio.to_thread
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from server import security
from server.config import Settings
from server.db import Database
from server.problems import Problem, TooManyRequests, Unauthorized
from server.services import users
from server.tables import User


class LoginBusy(Problem):
    status, code = 503, "login_busy"


class LoginGuard:
    def __init__(self, settings: Settings) -> None:
        self.per_user = parse(settings.login_user_limit)
        self.per_client = parse(settings.login_client_limit)
        self.queue = settings.login_queue
        self.hashing = anyio.CapacityLimiter(settings.password_hash_concurrency)
        storage = (
            storage_from_string(
                f"async+{settings.redis_url}",
                implementation="redispy",
                key_prefix="wavepick-login",
            )
            if settings.redis_url
            else storage_from_string("async+memory://")
        )
        assert isinstance(storage, Storage)  # the async+ schemes give async storage
        self.failures = MovingWindowRateLimiter(storage)
        self._decoy: str | None = None
        self._decoy_lock = threading.Lock()

    async def sign_in(self, db: Database, username: str, password: str, client: str) -> User:
        """The user for a right password; 401, 429 or 503 otherwise."""
        await self._refuse_when_over(self.per_client, "client", client)
        await self._refuse_when_over(self.per_user, "user", username)
        user = await db.read(users.get_by_username, username)
        known = user is not None and user.active
        password_hash = user.password_hash if user is not None and known else None
        if await self._check(password, password_hash) and user is not None and known:
            return user
        await self.failures.hit(self.per_client, "client", client)
        await self.failures.hit(self.per_user, "user", username)
        raise Unauthorized("wrong username or password", code="invalid_credentials")

    async def _refuse_when_over(self, limit: RateLimitItem, kind: str, who: str) -> None:
        if await self.failures.test(limit, kind, who):
            return
        stats = await self.failures.get_window_stats(limit, kind, who)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(
            f"too many failed sign-ins for this {kind}; try again in {retry_after} s",
            retry_after=retry_after,
            code="login_throttled",
        )

    async def _check(self, password: str, password_hash: str | None) -> bool:
        """Hash the password, one of at most N at once; against a decoy when there is no
        real hash, so that unknown users cost (and take) the same."""
        if self.hashing.statistics().tasks_waiting >= self.queue:
            raise LoginBusy("too many sign-ins at once; try again", headers={"Retry-After": "1"})
        return await anyio.to_thread.run_sync(
            self._verify, password, password_hash, limiter=self.hashing
        )

    def _verify(self, password: str, password_hash: str | None) -> bool:
        if password_hash is None:
            security.verify_password(password, self._decoy_hash())
            return False
        return security.verify_password(password, password_hash)

    def _decoy_hash(self) -> str:
        with self._decoy_lock:
            if self._decoy is None:
                self._decoy = security.hash_password(secrets.token_urlsafe(24))
            return self._decoy
