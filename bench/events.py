"""Events v1 latency: from the request that commits a pick to its `pick_confirmed` frame at
every console watching `/ws/events`, with many consoles and pickers, in one server process
and across two processes through Redis.

    python bench/events.py [--pickers 200] [--consoles 20] [--duration 30] [--pace 5]
                           [--modes inprocess,redis] [--database postgresql|sqlite]
                           [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
                           [--redis-url redis://127.0.0.1:6379/0]
    python bench/events.py --driver headset [--pickers 200] [--pace 5] ...

Driver `http` (default): a throwaway database holds one warehouse and, per picker, a user
and one assignment with enough lines in an aisle of its own. The pickers sign on over
HTTP; then each confirms one line every `--pace` seconds on average (0.5–1.5 × pace at
random, starts staggered) for `--duration` seconds, the measured window. `--consoles`
sockets watch `/ws/events` as `supervisor`. A delivery's latency runs from just before
the confirming request is sent to when a console reads the frame; every console must get
every confirmed pick, once (`missing`, `duplicates`). `inprocess`: one server, pickers
and consoles on it. `redis`: two servers on one database and one Redis, the pickers on the
first, every console on the second, so every event crosses processes.

Driver `headset`: `wavepick simulate pickers` (server.simulate: headset sockets, typed
answers, prompts synthesised) against `wavepick serve --demo`, the consoles watching. A
headset pick's request time is not seen from here, so latency runs from the event's `at`
(the line closed in its transaction, same machine clock) to the console reading it: the
figure a live floor board is held to (within 1 s of the pick at p95, 200 pickers).

Pickers, consoles, servers, PostgreSQL and Redis share this machine's cores: `machine`
says how busy it already was, and each run gives the CPU seconds of the bench's clients and
of the servers. Prints one JSON object; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._serve import ServeProcess
from bench.ledger import (
    background_busy_percent,
    machine_cpu_seconds,
    process_tree_cpu_seconds,
    sqlalchemy_url,
    throwaway_database,
)
from server import schemas
from server.db import make_engine, make_session_factory, transaction
from server.migrate import upgrade
from server.security import hash_password, issue_token
from server.services import allocation, catalog, inventory, orders, waves
from server.tables import LocationKind, Role, User, WarehouseMember

SECRET = "bench-secret-key-for-signing-tokens-0123456789"
PASSWORD = "bench-password-0123"
WAREHOUSE = "BENCH"
DRAIN_S = 15.0  # after the run, how long consoles may take to receive the last events


# --- the floor ---------------------------------------------------------------------------


def seed_floor(database_url: str, pickers: int, lines: int) -> None:
    """Users (admin, supervisor, pickers bench-NNN), one warehouse, and per picker an aisle
    of `lines` slots, each with its own SKU, and one released assignment of a unit from
    each: pickers work apart, as on a real floor, rather than all at the same slots."""
    engine = make_engine(database_url, pool_size=2)
    sessions = make_session_factory(engine)
    password = hash_password(PASSWORD)
    names = [f"bench-{n:03d}" for n in range(pickers)]
    with transaction(sessions) as session:
        warehouse = catalog.create_warehouse(
            session,
            code=WAREHOUSE,
            name="Bench",
            country="US",
            timezone="UTC",
            latitude=34.06,
            longitude=-117.65,
        )
        accounts = [("admin", Role.admin), ("supervisor", Role.supervisor)]
        accounts += [(name, Role.picker) for name in names]
        for username, role in accounts:
            user = User(username=username, password_hash=password, role=role, active=True)
            session.add(user)
            session.flush()
            session.add(WarehouseMember(user_id=user.id, warehouse_id=warehouse.id))
        staging = catalog.LocationSpec(code="STAGE", zone="STAGE", kind=LocationKind.staging)
        catalog.create_location(session, warehouse, staging)
        for n in range(pickers):
            slots = [f"S{n:03d}-{k:02d}" for k in range(lines)]
            for k, slot in enumerate(slots):
                spec = catalog.LocationSpec(
                    code=slot, zone=f"Z{n:03d}", aisle=f"{n:03d}", pick_sequence=k
                )
                catalog.create_location(session, warehouse, spec)
                catalog.create_sku(session, code=slot, description=f"item {slot}")
            receipt = [
                schemas.ReceiptLineIn(sku=slot, location=slot, quantity=1_000) for slot in slots
            ]
            body = schemas.ReceiptCreate(warehouse=WAREHOUSE, lines=receipt)
            inventory.receive(session, body, actor="bench")
            items = [schemas.OrderLineIn(sku=slot, quantity=1) for slot in slots]
            order = schemas.OrderCreate(number=f"EV-{n:04d}", country="US", lines=items)
            orders.create_order(session, order, actor="bench")
    with transaction(sessions) as session:
        for n in range(pickers):
            allocation.allocate_order(session, f"EV-{n:04d}")
    with transaction(sessions) as session:
        criteria = waves.WaveCriteria(lines_per_assignment=lines)
        waves.release_wave(session, WAREHOUSE, criteria, actor="bench")
    engine.dispose()


def picker_token(name: str) -> str:
    """Signed like the servers' tokens: 200 password checks would take minutes."""
    return issue_token(name, Role.picker, key=SECRET, ttl=dt.timedelta(hours=2))


# --- what the consoles saw -----------------------------------------------------------------


@dataclass
class DeliveryTally:
    sent: dict[int, float] = field(default_factory=dict)  # line -> perf_counter at send
    confirmed: set[int] = field(default_factory=set)
    confirm_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    # per console: line -> [(perf_counter read, wall clock read, the event's `at`)]
    seen: list[dict[int, list[tuple[float, float, float]]]] = field(default_factory=list)
    started_wall: float = 0.0


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 1)}


async def console(
    url: str, headers: dict[str, str], tally: DeliveryTally, ready: asyncio.Event
) -> None:
    """One console: reads every frame, keeping when each pick_confirmed arrived."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        issued = await http.post("/api/v1/auth/ticket", headers=headers)
        ticket = issued.raise_for_status().json()["ticket"]
    seen: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
    tally.seen.append(seen)
    ws_url = url.replace("http://", "ws://", 1) + f"/ws/events?ticket={ticket}"
    async with websockets.connect(ws_url, max_queue=None, open_timeout=60) as ws:
        async for message in ws:
            frame = json.loads(message)
            if frame["type"] == "subscribed":
                ready.set()
            elif frame["type"] == "pick_confirmed":
                at = dt.datetime.fromisoformat(frame["at"].replace("Z", "+00:00")).timestamp()
                seen[frame["line"]].append((time.perf_counter(), time.time(), at))


@dataclass(frozen=True)
class Picker:
    name: str
    headers: dict[str, str]
    lines: list[dict[str, Any]]


async def sign_on(http: httpx.AsyncClient, name: str, one_at_a_time: asyncio.Semaphore) -> Picker:
    """The picker signed on to their assignment (before the measured window: a whole
    shift signing on in the same second is not what a floor board watches)."""
    headers = {"Authorization": f"Bearer {picker_token(name)}"}
    async with one_at_a_time:
        work = await http.post("/api/v1/assignments/sign-on", json={}, headers=headers)
    return Picker(name, headers, work.raise_for_status().json()["lines"])


async def picker(
    http: httpx.AsyncClient, picker: Picker, tally: DeliveryTally, deadline: float, pace: float
) -> None:
    """Confirm a line every `pace` seconds on average until `deadline`."""
    rng = random.Random(picker.name)
    headers = picker.headers
    await asyncio.sleep(rng.uniform(0, pace))
    for line in picker.lines:
        if time.perf_counter() >= deadline:
            return
        body = {"quantity": line["quantity"], "token": f"bench-{line['id']}"}
        sent = tally.sent[line["id"]] = time.perf_counter()
        try:
            answer = await confirm(http, line["id"], body, headers)
        except httpx.HTTPError as exc:
            tally.errors[type(exc).__name__] += 1
            continue
        if answer.status_code == 200:
            tally.confirmed.add(line["id"])
            tally.confirm_ms.append((time.perf_counter() - sent) * 1000)
        else:
            tally.errors[f"confirm {answer.status_code}"] += 1
        await asyncio.sleep(pace * rng.uniform(0.5, 1.5))


async def confirm(
    http: httpx.AsyncClient, line: int, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """Confirm a line; once more (the same token: a replay) when the server had closed
    the idle keep-alive connection just as the request went out."""
    path = f"/api/v1/pick-lines/{line}/confirm"
    try:
        return await http.post(path, json=body, headers=headers)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        return await http.post(path, json=body, headers=headers)


async def drained(tally: DeliveryTally) -> None:
    """Until every console has every confirmed pick (or DRAIN_S)."""
    deadline = time.perf_counter() + DRAIN_S
    while time.perf_counter() < deadline:
        if all(tally.confirmed <= seen.keys() for seen in tally.seen):
            return
        await asyncio.sleep(0.1)


def figures(tally: DeliveryTally, *, from_request: bool) -> dict[str, Any]:
    """Latencies of every (console, pick) delivery, per pick at its slowest console, and
    what went missing or came twice."""
    deliveries: list[float] = []
    from_fact: list[float] = []
    slowest: dict[int, float] = {}
    missing = duplicates = 0
    for seen in tally.seen:
        for line in tally.confirmed:
            arrivals = seen.get(line, [])
            missing += not arrivals
            duplicates += max(0, len(arrivals) - 1)
        for line, arrivals in seen.items():
            read_perf, read_wall, at = arrivals[0]
            if at < tally.started_wall:
                continue
            from_fact.append((read_wall - at) * 1000)
            if from_request and line in tally.sent:
                latency = (read_perf - tally.sent[line]) * 1000
                deliveries.append(latency)
                slowest[line] = max(slowest.get(line, 0.0), latency)
    result: dict[str, Any] = {}
    if from_request:
        result["request_to_console_ms"] = percentiles(deliveries)
        result["request_to_slowest_console_ms"] = percentiles(list(slowest.values()))
    result["fact_to_console_ms"] = percentiles(from_fact)
    result["deliveries"] = len(from_fact)
    result["picks_seen_per_console"] = sorted({len(seen) for seen in tally.seen})
    result["missing"] = missing
    result["duplicates"] = duplicates
    return result


@contextmanager
def cpu_usage(servers: list[ServeProcess]) -> Iterator[dict[str, Any]]:
    def sample() -> list[float]:
        running = [s.process.pid for s in servers if s.process is not None]
        busy, total = machine_cpu_seconds()
        server_cpu = sum(process_tree_cpu_seconds(pid) for pid in running)
        return [time.process_time(), server_cpu, busy, total]

    usage: dict[str, Any] = {}
    before = sample()
    yield usage
    bench, server, busy, total = (b - a for a, b in zip(before, sample(), strict=True))
    usage.update(
        bench_clients=round(bench, 1),
        servers=round(server, 1),
        machine_busy_percent=round(100 * busy / total, 1) if total else None,
    )


# --- the runs ------------------------------------------------------------------------------


def servers_for(
    mode: str, folder: Path, database_url: str, redis_url: str, *, demo: bool, stack: ExitStack
) -> tuple[ServeProcess, ServeProcess]:
    """(where pickers work, where consoles watch): one server, or two sharing Redis."""
    env = {"WAVEPICK_SECRET_KEY": SECRET}
    if mode == "redis":
        stream = f"wavepick-bench:{uuid.uuid4().hex}"
        env |= {"WAVEPICK_REDIS_URL": redis_url, "WAVEPICK_EVENTS_STREAM": stream}
        stack.callback(redis.Redis.from_url(redis_url).delete, stream)
    password = "demo-password-0123" if demo else PASSWORD
    started = []
    for name in ("work", "watch") if mode == "redis" else ("work",):
        server = ServeProcess(
            folder / name,
            password=password,
            demo=demo,
            database_url=database_url,
            warm_up=demo and name == "work",  # headsets speak from the first prompt
            env=env,
        )
        stack.enter_context(server)
        started.append(server)
    return started[0], started[-1]


async def run_http(
    mode: str, args: argparse.Namespace, database_url: str, folder: Path
) -> dict[str, Any]:
    lines = int(args.duration / args.pace) + 4
    seed_floor(database_url, args.pickers, lines)
    with ExitStack() as stack:
        work, watch = servers_for(
            mode, folder, database_url, args.redis_url, demo=False, stack=stack
        )
        tally = DeliveryTally()
        supervisor = await login(watch.url, "supervisor", PASSWORD)
        ready = [asyncio.Event() for _ in range(args.consoles)]
        consoles = [
            asyncio.create_task(console(watch.url, supervisor, tally, event)) for event in ready
        ]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 120)
        limits = httpx.Limits(max_connections=args.pickers, max_keepalive_connections=args.pickers)
        async with httpx.AsyncClient(base_url=work.url, limits=limits, timeout=60) as http:
            one_at_a_time = asyncio.Semaphore(4)
            names = [f"bench-{n:03d}" for n in range(args.pickers)]
            pickers = await asyncio.gather(*(sign_on(http, n, one_at_a_time) for n in names))
            with cpu_usage([work, watch] if work is not watch else [work]) as cpu:
                tally.started_wall = time.time()
                deadline = time.perf_counter() + args.duration
                await asyncio.gather(
                    *(picker(http, p, tally, deadline, args.pace) for p in pickers)
                )
                await drained(tally)
        for task in consoles:
            task.cancel()
        await asyncio.gather(*consoles, return_exceptions=True)
    return {
        "mode": mode,
        "pickers": args.pickers,
        "consoles": args.consoles,
        "picks": len(tally.confirmed),
        "picks_per_s": round(len(tally.confirmed) / args.duration, 1),
        "confirm_request_ms": percentiles(tally.confirm_ms),
        **figures(tally, from_request=True),
        "errors": dict(tally.errors),
        "cpu_seconds": cpu,
    }


async def run_headset(mode: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from server.simulate import simulate

    database_url = f"sqlite:///{folder / 'demo.db'}"
    with ExitStack() as stack:
        work, watch = servers_for(
            mode, folder, database_url, args.redis_url, demo=True, stack=stack
        )
        tally = DeliveryTally()
        supervisor = await login(watch.url, "supervisor", watch.password)
        ready = [asyncio.Event() for _ in range(args.consoles)]
        consoles = [
            asyncio.create_task(console(watch.url, supervisor, tally, event)) for event in ready
        ]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 120)
        with cpu_usage([work, watch] if work is not watch else [work]) as cpu:
            tally.started_wall = time.time()
            simulated = await simulate(
                work.url,
                count=args.pickers,
                duration=args.duration,
                audio=False,
                think=args.pace,
                admin=work.admin,
                progress=lambda line: print(line, file=sys.stderr),
            )
        await asyncio.sleep(2)  # the last picks' frames
        for task in consoles:
            task.cancel()
        await asyncio.gather(*consoles, return_exceptions=True)
    result = figures(tally, from_request=False)
    return {
        "mode": mode,
        "driver": "headset",
        "pickers": args.pickers,
        "consoles": args.consoles,
        **result,
        "simulation": simulated,
        "cpu_seconds": cpu,
    }


async def login(url: str, username: str, password: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        response = await http.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        return {"Authorization": f"Bearer {response.raise_for_status().json()['access_token']}"}


@contextmanager
def database(kind: str, pg_url: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        upgrade(url)
        yield url
        return
    with throwaway_database(pg_url, "wavepick_events") as name:
        url = sqlalchemy_url(pg_url, name)
        upgrade(url)
        yield url


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--driver", choices=("http", "headset"), default="http")
    parser.add_argument("--pickers", type=int, default=200)
    parser.add_argument("--consoles", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of picking")
    parser.add_argument("--pace", type=float, default=5.0, help="seconds between picks")
    parser.add_argument("--modes", default="inprocess,redis", help="inprocess, redis or both")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not set(modes) <= {"inprocess", "redis"}:
        parser.error("--modes takes inprocess, redis or both")

    background = background_busy_percent()
    runs = []
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="wavepick-events-") as tmp:
            folder = Path(tmp)
            print(f"events bench: {args.driver}, {mode}", file=sys.stderr)
            if args.driver == "headset":
                runs.append(await run_headset(mode, args, folder))
            else:
                with database(args.database, args.pg_url, folder) as url:
                    runs.append(await run_http(mode, args, url, folder))
    report = {
        "runs": runs,
        "settings": {
            "driver": args.driver,
            "database": "sqlite" if args.driver == "headset" else args.database,
            "duration_s": args.duration,
            "pace_s": args.pace,
        },
        "machine": {
            "cores": os.cpu_count(),
            "busy_percent_before_bench": background,
            "python": platform.python_version(),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
