"""Several app processes on one PostgreSQL and one Redis: a headset that reconnects to any
process resumes its dialog at the exact prompt; a process killed with `kill -9` while
pickers work loses no acknowledged pick and applies none twice, and its pickers go on
elsewhere; one operator is live on one process at a time (the newer connection takes
over, as on one process); the Redis lease itself (taken over, refused, expired); and
`wavepick serve --workers N` (refused without PostgreSQL and Redis, and serving with
them).

Real server processes (uvicorn, as production runs them), a real PostgreSQL and a real
Redis: required with CI=true, skipped without them otherwise. The first three tests share
one cluster of three processes (each with pickers of its own); the kill comes last.
Nothing here is timed: every wait is for an event (a frame, a close, a process exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis
import websockets
from sqlalchemy import select

from rtc.client import RoomClient
from server.db import make_engine, make_session_factory, transaction
from server.headset.client import HeadsetClient
from server.headset.leases import BUSY, LeaseRefused, RedisLeases
from server.migrate import upgrade
from server.processes import _loopback_socket
from server.sockets import REPLACED, Ending
from server.tables import Role, User, Warehouse, WarehouseMember
from tests.conftest import (
    REDIS_URL,
    REPO,
    TEST_SECRET,
    ServerProcess,
    all_ended,
    create_pg_database,
    drop_pg_database,
    forget_keys,
    free_port,
    warm_speech_cache,
)
from tests.factories import FloorLine, auth, pick_floor, release_next_order, stock_at, token
from tests.test_sessions import until_closed
from voice.broker import Keys, running_workers

LEASE_S = 2  # WAVEPICK_HEADSET_LEASE_SECONDS of the test servers: a dead process's hold
PICKERS = tuple(f"picker{n}" for n in range(2, 9))  # besides the seeded `picker`
WORKERS = PICKERS[1:]  # the six pickers at work when a process is killed
LINES = 3  # per assignment
ASSIGNMENTS = 10  # ready in LAX: one per picker, and some for those who deliver and go on


def plan(assignments: int) -> tuple[tuple[str, str, str, int], ...]:
    """`LINES` lines per assignment, each its own slot (distinct check digits) and SKU."""
    return tuple(
        (f"A-01-{n:02d}", f"{20 + n}", f"SKU{n:02d}", 1 + n % 4)
        for n in range(1, assignments * LINES + 1)
    )


@dataclass
class Cluster:
    servers: list[ServerProcess]
    database_url: str
    prefix: str  # of the Redis keys
    digits: dict[str, str]  # location -> check digits

    def ws(self, n: int) -> str:
        return self.servers[n].url.replace("http://", "ws://") + "/ws/headset"


@pytest.fixture(scope="module")
def cluster(
    pg_server: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Three app processes on one PostgreSQL database and one Redis, and LAX with
    `ASSIGNMENTS` assignments ready. The tests share them (starting three processes takes a
    while): each has pickers of its own, and the one that kills a process comes last."""
    name, pg_url = create_pg_database(pg_server)
    upgrade(pg_url)
    prefix = f"wavepick-test-{uuid.uuid4().hex[:12]}"
    tmp_path = tmp_path_factory.mktemp("cluster")
    lines = plan(ASSIGNMENTS)
    pick_floor(pg_url, lines, orders=ASSIGNMENTS)
    for _ in range(ASSIGNMENTS - 1):
        release_next_order(pg_url)
    add_pickers(pg_url, PICKERS)
    env = {
        "WAVEPICK_REDIS_URL": redis_url,
        "WAVEPICK_REDIS_PREFIX": prefix,
        "WAVEPICK_EVENTS_STREAM": f"{prefix}:events",
        "WAVEPICK_HEADSET_LEASE_SECONDS": str(LEASE_S),
    }
    warm_speech_cache()  # once, before the three start together
    with ExitStack() as running, ThreadPoolExecutor(3) as starting:
        running.callback(drop_pg_database, pg_server, name)
        running.callback(forget_keys, redis_url, prefix)
        servers = list(starting.map(lambda _: ServerProcess(pg_url, tmp_path, env), range(3)))
        for server in servers:
            running.callback(server.stop)
        digits = {location: digits for location, digits, *_ in lines}
        yield Cluster(servers, pg_url, prefix, digits)


def add_pickers(database_url: str, names: tuple[str, ...]) -> None:
    """Pickers of LAX with the seeded picker's password (its hash is copied: hashing is
    slow on purpose)."""
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as session:
        picker = session.scalars(select(User).where(User.username == "picker")).one()
        lax = session.scalars(select(Warehouse.id).where(Warehouse.code == "LAX")).one()
        for name in names:
            added = User(
                username=name, password_hash=picker.password_hash, role=Role.picker, active=True
            )
            session.add(added)
            session.flush()
            session.add(WarehouseMember(user_id=added.id, warehouse_id=lax))
    engine.dispose()


@dataclass
class Walk:
    """What one picker's headset saw: the picks it saw acknowledged, its reconnections."""

    picker: str
    acknowledged: list[tuple[str, int]] = field(default_factory=list)  # (location, quantity)
    reconnects: int = 0


def answer(prompt: dict[str, Any], digits: dict[str, str]) -> str:
    """What a picker who does the work right says to `prompt`."""
    state, display = prompt["state"], prompt.get("display") or {}
    if state == "location":
        return digits[display["location"]]
    if state == "quantity":
        return str(display["quantity"])
    return "ready"  # assignment, deliver


async def walk(
    client: HeadsetClient, digits: dict[str, str], log: Walk, *, lines: int | None = None
) -> None:
    """Answer every prompt until the assignment is delivered (or `lines` more picks were
    acknowledged); a pick is acknowledged when its quantity was heard and taken."""
    picked = 0
    while client.prompt is not None and client.prompt["state"] != "no_work":
        if lines is not None and picked == lines:
            return
        prompt = client.prompt
        turn = await client.say(answer(prompt, digits))
        assert not turn.errors and not turn.closed, turn
        assert turn.heard is not None and turn.heard["accepted"], turn
        if prompt["state"] == "deliver":
            return
        if prompt["state"] == "quantity":
            log.acknowledged.append((prompt["display"]["location"], prompt["display"]["quantity"]))
            picked += 1


def headset(url: str, picker: str, http: httpx.Client) -> HeadsetClient:
    return HeadsetClient(url, token(http, picker), turn_timeout=30)


def check_the_books(http: httpx.Client, walks: list[Walk], pickers: set[str]) -> None:
    """Every acknowledged pick is in the ledger, no line was picked twice, every line of
    the pickers' assignments was picked (one assignment each), and stock equals the
    ledger."""
    supervisor = auth(http, "supervisor")
    moves = http.get(
        "/api/v1/movements", params={"warehouse": "LAX", "limit": 500}, headers=supervisor
    ).json()["items"]
    picks = Counter(
        (m["from_location"], m["quantity"])
        for m in moves
        if m["kind"] == "pick" and m["actor"] in pickers
    )
    acknowledged = [pick for walked in walks for pick in walked.acknowledged]
    assert set(acknowledged) <= set(picks), "an acknowledged pick is not in the ledger"
    assert max(picks.values()) == 1, f"a line was picked twice: {picks}"
    assert len(picks) == LINES * len(pickers), picks
    assert len(set(acknowledged)) == len(acknowledged), "a pick was acknowledged twice"
    reconciled = http.get("/api/v1/reconcile", headers=supervisor).json()
    assert reconciled["consistent"] is True, reconciled


# ---- (a) a reconnect to another process resumes the dialog exactly ----


def test_a_dropped_headset_resumes_on_another_process_at_the_same_prompt(
    cluster: Cluster,
) -> None:
    async def main(http: httpx.Client) -> Walk:
        log = Walk("picker")
        first = headset(cluster.ws(0), "picker", http)
        await first.connect()
        await walk(first, cluster.digits, log, lines=1)  # one line picked on process 1
        at_line = await first.say(answer(first.prompt or {}, cluster.digits))  # check digits
        assert at_line.prompt is not None and at_line.prompt["state"] == "quantity"
        await first.drop()  # mid-line, at the quantity prompt

        second = headset(cluster.ws(1), "picker", http)
        resumed = await second.connect()
        assert resumed.prompt is not None
        for key in ("state", "text", "display"):
            assert resumed.prompt[key] == at_line.prompt[key], (resumed.prompt, at_line.prompt)
        await walk(second, cluster.digits, log)
        await second.close()
        return log

    kept = redis.Redis.from_url(REDIS_URL).pttl(f"{cluster.prefix}:headset:snapshot:picker")
    assert kept == -2, "no snapshot before the picker connects"

    with httpx.Client(base_url=cluster.servers[2].url, timeout=30) as http:
        log = asyncio.run(main(http))
        assert len(log.acknowledged) == LINES
        check_the_books(http, [log], {"picker"})
    # the dialog is kept in Redis for the picker's next session, for a shift
    kept = redis.Redis.from_url(REDIS_URL).pttl(f"{cluster.prefix}:headset:snapshot:picker")
    assert 0 < kept <= 12 * 3600 * 1000


# ---- (c) one live session per operator across processes ----


def test_a_second_session_on_another_process_takes_over_and_the_first_is_ended(
    cluster: Cluster,
) -> None:
    async def main(http: httpx.Client) -> None:
        first = headset(cluster.ws(0), "picker2", http)
        await first.connect()
        await first.say("ready")
        at_line = await first.say(answer(first.prompt or {}, cluster.digits))
        assert at_line.prompt is not None and at_line.prompt["state"] == "quantity"

        second = headset(cluster.ws(1), "picker2", http)
        taking_over = asyncio.create_task(second.connect())
        assert first.ws is not None
        frames, code = await until_closed(first.ws)  # ended and told why
        assert code == 4409 and frames[-1]["code"] == "session_replaced", frames
        resumed = await taking_over  # then the newer one starts where the first stood
        assert resumed.prompt is not None and resumed.prompt["text"] == at_line.prompt["text"]
        assert resumed.prompt["state"] == "quantity"

        third = headset(cluster.ws(2), "picker2", http)  # once more, from a third process
        taking_over = asyncio.create_task(third.connect())
        assert second.ws is not None
        frames, code = await until_closed(second.ws)
        assert code == 4409 and frames[-1]["code"] == "session_replaced", frames
        await taking_over
        fourth = headset(cluster.ws(2), "picker2", http)  # and on the same process
        taking_over = asyncio.create_task(fourth.connect())
        assert third.ws is not None
        frames, code = await until_closed(third.ws)
        assert code == 4409 and frames[-1]["code"] == "session_replaced", frames
        resumed = await taking_over
        assert resumed.prompt is not None and resumed.prompt["state"] == "quantity"
        await walk(fourth, cluster.digits, Walk("picker2"))
        await fourth.close()

    with httpx.Client(base_url=cluster.servers[0].url, timeout=30) as http:
        asyncio.run(main(http))
        check_the_books(http, [], {"picker2"})


# ---- (b) kill -9 of a process while pickers work (last: it leaves two processes) ----


def test_a_process_killed_mid_run_loses_no_acknowledged_pick_and_its_pickers_go_on(
    cluster: Cluster,
) -> None:
    doomed = 2  # the process killed; its pickers are WORKERS[4:]

    async def picker(
        n: int, http: httpx.Client, half_way: asyncio.Event, killed: asyncio.Event
    ) -> Walk:
        name, server = WORKERS[n], n // 2
        log = Walk(name)
        client = headset(cluster.ws(server), name, http)
        await client.connect()
        if server == doomed:
            await walk(client, cluster.digits, log, lines=1)
            await client.say(answer(client.prompt or {}, cluster.digits))  # at the next slot
            # a confirmation in flight when the process dies: taken or not, never twice
            await client.send_json({"type": "say", "text": answer(client.prompt or {}, {})})
            half_way.set()
            await killed.wait()
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await client.say(answer(client.prompt or {}, cluster.digits))
            client = headset(cluster.ws(n % 2), name, http)  # a process still up
            log.reconnects += 1
            await client.connect()
        await walk(client, cluster.digits, log)
        await client.close()
        return log

    async def main(http: httpx.Client) -> list[Walk]:
        doomed_half_way = [asyncio.Event(), asyncio.Event()]
        killed = asyncio.Event()
        never = asyncio.Event()
        pickers = [
            asyncio.create_task(
                picker(n, http, doomed_half_way[n - 4] if n >= 4 else never, killed)
            )
            for n in range(len(WORKERS))
        ]
        for event in doomed_half_way:
            await event.wait()
        cluster.servers[doomed].process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(cluster.servers[doomed].process.wait)
        killed.set()
        return list(await asyncio.gather(*pickers))

    with httpx.Client(base_url=cluster.servers[0].url, timeout=30) as http:
        for name in WORKERS:
            token(http, name)
        walks = asyncio.run(main(http))
        assert [w.reconnects for w in walks] == [0, 0, 0, 0, 1, 1]
        check_the_books(http, walks, set(WORKERS))


# ---- the lease itself ----


def test_the_lease_is_taken_over_refused_when_its_holder_stays_and_freed_by_expiry(
    redis_url: str, prefix: str
) -> None:
    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        one, two = (
            RedisLeases(client, aioredis.Redis.from_url(redis_url), prefix=prefix, ttl=1, wait=2)
            for _ in range(2)
        )
        await one.start()
        await two.start()
        try:
            asked: list[Ending] = []

            async def stays(ending: Ending) -> None:  # a session that does not go
                asked.append(ending)

            async with one.hold("op", stays):
                with pytest.raises(LeaseRefused) as refused:
                    async with two.hold("op", stays):
                        pytest.fail("two live sessions of one operator")
                assert refused.value.ending == BUSY and asked == [REPLACED]

            holding, told = asyncio.Event(), asyncio.Event()

            async def ends(ending: Ending) -> None:  # a session that goes when told
                told.set()

            async def session() -> None:
                async with one.hold("op", ends):
                    holding.set()
                    await told.wait()

            first = asyncio.create_task(session())
            await holding.wait()
            async with two.hold("op", ends):  # once the first let go
                assert first.done() and told.is_set()
            # a dead process's lease, never renewed nor released, expires
            await client.set(one.key("op"), "999:dead", px=1000)
            async with two.hold("op", ends):
                assert (await client.get(two.key("op"))) not in (None, b"999:dead")
        finally:
            await one.stop()
            await two.stop()
            await client.aclose()

    asyncio.run(main())


@contextlib.asynccontextmanager
async def one_process_leases(
    redis_url: str, prefix: str
) -> AsyncIterator[tuple[aioredis.Redis, RedisLeases]]:
    """The leases of one process (a lease lives 1 s), and a client to look at Redis with."""
    client = aioredis.Redis.from_url(redis_url)
    leases = RedisLeases(client, aioredis.Redis.from_url(redis_url), prefix=prefix, ttl=1)
    await leases.start()
    try:
        yield client, leases
    finally:
        await leases.stop()
        await client.aclose()


def test_a_lapsed_lease_is_taken_again_unless_another_connection_came_meanwhile(
    redis_url: str, prefix: str
) -> None:
    async def main() -> None:
        ended: list[Ending] = []

        async def end(ending: Ending) -> None:
            ended.append(ending)

        async with one_process_leases(redis_url, prefix) as (client, leases):
            key = leases.key("op")
            async with leases.hold("op", end):
                token = await client.get(key)
                await client.delete(key)  # expired: its process was too busy to renew it
                await asyncio.sleep(0.6)  # more than a renewal's period (a third of ttl)
                assert (await client.get(key), ended) == (token, [])
                await client.delete(key)
                await client.incr(leases.number_key("op"))  # a newer connection drew one
                await asyncio.sleep(0.6)
                assert ended == [REPLACED] and await client.get(key) is None

    asyncio.run(main())


def test_the_leases_of_a_process_are_renewed_together_and_a_lost_one_ends_its_session_alone(
    redis_url: str, prefix: str
) -> None:
    async def main() -> None:
        ended: dict[str, list[Ending]] = {"ana": [], "bo": [], "cy": []}
        async with (
            one_process_leases(redis_url, prefix) as (client, leases),
            contextlib.AsyncExitStack() as stack,
        ):
            for operator, endings in ended.items():

                async def end(ending: Ending, endings: list[Ending] = endings) -> None:
                    endings.append(ending)

                await stack.enter_async_context(leases.hold(operator, end))
            tokens = {op: await client.get(leases.key(op)) for op in ended}
            await client.delete(leases.key("bo"))
            await client.incr(leases.number_key("bo"))  # a newer connection drew one
            await asyncio.sleep(1.5)  # past the lifetime of a lease not renewed
            assert ended == {"ana": [], "bo": [REPLACED], "cy": []}
            for operator in ("ana", "cy"):
                assert await client.get(leases.key(operator)) == tokens[operator]
            assert await client.get(leases.key("bo")) is None

    asyncio.run(main())


# ---- wavepick serve --workers ----


def wavepick(*args: str) -> list[str]:
    return [sys.executable, "-c", "from server.cli import main; main()", *args]


def cli_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAVEPICK_")}
    keep = ("WAVEPICK_SPEECH_CACHE_DIR",)
    env.update({k: os.environ[k] for k in keep if k in os.environ})
    return {
        **env,
        "WAVEPICK_DATABASE_URL": database_url,
        "WAVEPICK_SECRET_KEY": TEST_SECRET,
        "WAVEPICK_DATA_DIR": str(data_dir),
        "WAVEPICK_SPEECH_WARM_UP": "false",
        **extra,
    }


def test_several_workers_are_refused_without_postgresql_or_redis(tmp_path: Path) -> None:
    sqlite = cli_env(f"sqlite:///{tmp_path / 'w.db'}", tmp_path, WAVEPICK_REDIS_URL=REDIS_URL)
    no_redis = cli_env("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", tmp_path)
    for env, needed in ((sqlite, "PostgreSQL"), (no_redis, "Redis")):
        ran = subprocess.run(
            wavepick("serve", "--workers", "2"),
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 2, ran
        assert "--workers 2 refused" in ran.stderr and needed in ran.stderr, ran.stderr
        assert "snapshots" in ran.stderr or "one writer" in ran.stderr, ran.stderr


def serving(base: str, process: subprocess.Popen[bytes], tries: int = 600) -> bool:
    """Whether `base` answers before `process` exits (a bounded number of tries)."""
    for _ in range(tries):
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.1)
    return False


def serve_two_workers(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`wavepick serve --workers 2` started (not yet serving), and its base URL."""
    port = free_port()
    with log.open("w") as out:
        served = subprocess.Popen(
            wavepick("serve", "--port", str(port), "--workers", "2"),
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return served, f"http://127.0.0.1:{port}"


def test_workers_serve_headsets_and_stop_cleanly(
    pg_url: str, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    pick_floor(pg_url)
    engine_env = cli_env(
        pg_url,
        tmp_path,
        WAVEPICK_REDIS_URL=redis_url,
        WAVEPICK_REDIS_PREFIX=prefix,
        WAVEPICK_EVENTS_STREAM=f"{prefix}:events",
    )
    served, base = serve_two_workers(engine_env, tmp_path / "workers.log")
    try:
        assert serving(base, served), (tmp_path / "workers.log").read_text()[-3000:]

        async def pick() -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                client = headset(base.replace("http", "ws") + "/ws/headset", "picker", http)
                await client.connect()
                log = Walk("picker")
                await walk(client, {"A-01-01": "57", "A-01-02": "31", "A-01-03": "84"}, log)
                await client.close()
                assert len(log.acknowledged) == 3

        async def call(socket: str, tickets: list[str]) -> None:
            """Whichever process each socket reaches, all are in the one call."""
            joined = [RoomClient(f"{socket}?ticket={ticket}") for ticket in tickets]
            try:
                for n, client in enumerate(joined):
                    assert len((await client.join())["participants"]) == n
            finally:
                for client in joined:
                    await client.close()

        asyncio.run(pick())
        with httpx.Client(base_url=base, timeout=30) as http:
            room = http.post(
                "/api/v1/rooms", json={"warehouse": "LAX"}, headers=auth(http, "manager")
            )
            assert room.status_code == 201, room.text
            tickets = [
                http.post("/api/v1/auth/ticket", headers=auth(http, who)).json()["ticket"]
                for who in ("manager", "supervisor", "admin", "supervisor")
            ]
        asyncio.run(call(f"{base.replace('http', 'ws')}/ws/rooms/{room.json()['id']}", tickets))
    finally:
        served.send_signal(signal.SIGTERM)
        code = served.wait(timeout=30)
    assert code == 0, (tmp_path / "workers.log").read_text()[-3000:]


def test_app_processes_end_when_serve_is_killed_outright(
    pg_url: str, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """`kill -9` of `serve --workers 2` leaves no app process serving on behind it."""
    env = cli_env(pg_url, tmp_path, WAVEPICK_REDIS_URL=redis_url, WAVEPICK_REDIS_PREFIX=prefix)
    served, base = serve_two_workers(env, tmp_path / "workers.log")
    try:
        assert serving(base, served)
        children = [
            int(pid)
            for task in Path(f"/proc/{served.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        assert len(children) >= 2
    finally:
        served.kill()
        served.wait()
    assert all_ended(children)


class SpeechWorkerHost:
    """`wavepick speech-worker` as another host runs it: a disk of its own, no database,
    only the Redis it shares with the apps."""

    def __init__(self, redis_url: str, prefix: str, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAVEPICK_")}
        self.env = {
            **env,
            "WAVEPICK_REDIS_URL": redis_url,
            "WAVEPICK_REDIS_PREFIX": prefix,
            "WAVEPICK_DATA_DIR": str(data_dir),
            "WAVEPICK_SPEECH_CACHE_DIR": os.environ["WAVEPICK_SPEECH_CACHE_DIR"],
        }
        self.redis = redis.Redis.from_url(redis_url)
        self.keys = Keys(prefix)
        self.commands: list[subprocess.Popen[bytes]] = []

    def start(self) -> tuple[subprocess.Popen[bytes], int]:
        """One worker process, warmed up and taking readings: the command and its pid."""
        command = subprocess.Popen(
            wavepick("speech-worker", "--processes", "1"),
            env=self.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.commands.append(command)
        deadline = time.monotonic() + 300
        while not (names := running_workers(self.redis, self.keys)):
            assert command.poll() is None and time.monotonic() < deadline, "no speech worker"
            time.sleep(0.2)
        [name] = names
        return command, int(name.rsplit(":", 1)[1])

    def stop_all(self) -> None:
        for command in self.commands:
            command.kill()
            command.wait()


def test_answers_are_read_by_speech_workers_of_another_host_found_through_redis(
    pg_url: str, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """The app reads no speech itself: `wavepick speech-worker`, as on another host, reads
    the picker's answers. With no worker left, an answer is told `speech_unavailable`
    within the reply deadline and changes nothing; a worker that joins later reads the
    answer said again."""
    first = pick_floor(pg_url)[0]
    (tmp_path / "app").mkdir()
    brokered = {
        "WAVEPICK_REDIS_URL": redis_url,
        "WAVEPICK_REDIS_PREFIX": prefix,
        "WAVEPICK_SPEECH_BROKERED": "true",  # and WAVEPICK_SPEECH_WORKERS=0: none of its own
        "WAVEPICK_SPEECH_REPLY_SECONDS": "3",
    }
    server = ServerProcess(pg_url, tmp_path / "app", brokered)
    other_host = SpeechWorkerHost(redis_url, prefix, tmp_path / "worker")
    try:
        url = server.url.replace("http://", "ws://") + "/ws/headset"
        with httpx.Client(base_url=server.url, timeout=30) as http:
            asyncio.run(pick_by_voice(url, token(http, "picker"), first, other_host))
            assert stock_at(http, "LAX", first.sku, first.location) == 10 - first.quantity
            supervisor = auth(http, "supervisor")
            assert http.get("/api/v1/reconcile", headers=supervisor).json()["consistent"]
    finally:
        server.stop()
        other_host.stop_all()


async def pick_by_voice(
    url: str, picker: str, line: FloorLine, other_host: SpeechWorkerHost
) -> None:
    from tests.test_headset import human_digits, say_until

    command, pid = other_host.start()
    headset = HeadsetClient(url, picker, turn_timeout=60)
    await headset.connect()
    await headset.say("ready")
    digits = [human_digits(line.check_digits, take) for take in range(10)]
    await say_until(headset, digits, "quantity")

    command.send_signal(signal.SIGTERM)
    assert command.wait(30) == 0 and all_ended([pid])
    unheard = await headset.speak(human_digits(str(line.quantity), 0))
    assert [error["code"] for error in unheard.errors] == ["speech_unavailable"], unheard
    assert headset.prompt and headset.prompt["state"] == "quantity"

    other_host.start()
    takes = [human_digits(str(line.quantity), take) for take in range(10)]
    await say_until(headset, takes, "location")
    await headset.close()


def test_forwarded_calls_wait_for_the_rooms_process_to_start() -> None:
    """The rooms process's own port takes connections before that process serves them, so
    a call forwarded while it starts (or is replaced) waits instead of failing with 503."""
    own = _loopback_socket()
    try:
        with socket.create_connection(own.getsockname(), timeout=2):
            pass
    finally:
        own.close()
