"""Stock-ledger throughput on PostgreSQL, next to what the same PostgreSQL does under pgbench.

Run from the repository root:

    python bench/ledger.py [--duration 20] [--levels 1,8,32] [--workers 1]
                           [--modes moves,picks] [--pick-lines 3000] [--no-baseline]
                           [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

What it measures, in one run against one PostgreSQL server:

1. Confirmed movements per second. A throwaway database is created and migrated, users and
   one warehouse are seeded, and a real server (`uvicorn server.app:create_app --factory`,
   as production runs it) is started on loopback. For each concurrency level N, N asyncio
   clients, each with its own keep-alive HTTP connection (`KeepAlive`: lean, as pgbench's C
   clients are), send `POST /api/v1/movements` back to back for `--duration` seconds after a
   short warm-up. Client i owns two locations stocked with plenty of units and moves one
   unit between them, back and forth, so moves never run short and never touch another
   client's stock rows: what limits the rate is the server and the database, not lock
   contention. Only 201 answers count; latency p50/p95 is over every answer finished in the
   measured window.
   Confirmed picks per second (`--modes picks`): before the levels, picker i gets
   `--pick-lines` one-unit lines of its own SKU at its own slot, in assignments of up to
   500, delivered to its own staging location (orders allocated on import, one wave, each
   assignment given to its picker, sign-on, all through the API). Each picker confirms
   its lines in walking order, back to back (`POST /api/v1/pick-lines/{id}/confirm`, a
   fresh answer token each), and at the end of an assignment completes it and signs on to
   the next; only 200 answers count. A picker that runs out of lines stops
   (`pickers_out_of_lines`: the rate then understates the server; give more lines).
2. The baseline under those rates (unless `--no-baseline`): the same app, with every
   middleware, the token check and the warehouse scope, serving two more routes
   (`bench/_baseline_app.py`) on the same database, after the real server has stopped:
   8 signed-in pickers post back to back to `/bench/signed-in`, which does nothing, then
   to `/bench/one-transaction`, one empty transaction (`SELECT 1`) through the app's
   database layer, as a move's is. No write can cost less than the second: when it
   reaches less than 0.3 of pgbench, so does every move and pick on that machine.
3. `pgbench -i -s 10` into a second throwaway database, then `pgbench -c 8 -j 2 -T 20`
   (TPC-B-like, 5 statements per transaction): the database's own write capacity on this
   machine, for the ratios `moves/s (picks/s) at 8 clients ÷ pgbench TPS at 8 clients`.

At the end the ledger must reconcile (`GET /api/v1/reconcile`: stock equals the sum of
the ledger), the number of move movements in the database must equal the 201s the movers
saw and the number of pick movements the 200s the pickers saw. Both databases are
dropped, even on error. All traffic goes to 127.0.0.1. Prints one JSON object. The
clients share the machine's cores with the server and PostgreSQL, so each level also
reports the CPU seconds of the clients, the server and the rest of the machine, and the
server's CPU milliseconds per confirmed move or pick; `machine` says how busy the
machine already was before the bench (`contended` above 25 %: anything else running here
lowers every figure, the ratio less so than the absolute rates).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: import this checkout's `server`
    sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from server.db import make_engine, make_session_factory, transaction  # noqa: E402
from server.migrate import upgrade  # noqa: E402
from server.security import hash_password  # noqa: E402
from server.tables import Movement, MovementKind, Role, User  # noqa: E402

SECRET = "bench-secret-key-for-signing-tokens-0123456789"
PASSWORD = "bench-password-0123"
WAREHOUSE = "BENCH"
SKU = "BENCH-1"
UNITS_PER_LOCATION = 1_000_000
WARMUP_SECONDS = 2.0
REQUEST_TIMEOUT = 30.0
CONTENDED_PERCENT = 25.0  # machine busy before the bench: figures are a lower bound
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WAVEPICK_APP = "server.app:create_app"
BASELINE_APP = "bench._baseline_app:create_app"
BASELINE_CLIENTS = 8  # the level the ratios are taken at


# --- throwaway databases -------------------------------------------------------------------


@contextmanager
def throwaway_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh database on the admin URL's server, dropped on exit; yields its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlalchemy_url(admin_url: str, database: str) -> str:
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


def seed_users(database_url: str) -> None:
    """One active user per role, all with the bench password."""
    engine = make_engine(database_url, pool_size=1)
    password_hash = hash_password(PASSWORD)
    with transaction(make_session_factory(engine)) as session:
        for role in Role:
            session.add(
                User(
                    username=role.value,
                    password_hash=password_hash,
                    role=role,
                    full_name=role.value.title(),
                    active=True,
                )
            )
    engine.dispose()


def count_movements(database_url: str, kind: MovementKind) -> int:
    engine = make_engine(database_url, pool_size=1)
    with transaction(make_session_factory(engine), write=False) as session:
        found = session.scalar(
            select(func.count()).select_from(Movement).where(Movement.kind == kind)
        )
    engine.dispose()
    return int(found or 0)


# --- CPU accounting from /proc -------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its live descendants (uvicorn workers)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # guest time is already inside user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@contextmanager
def machine_load() -> Iterator[dict[str, float]]:
    """Fills in how busy the whole machine was, in percent of all cores, over the block."""
    busy_before, total_before = machine_cpu_seconds()
    reading: dict[str, float] = {}
    yield reading
    busy_after, total_after = machine_cpu_seconds()
    elapsed = total_after - total_before
    reading["busy_percent"] = round(100 * (busy_after - busy_before) / elapsed, 1) if elapsed else 0


def background_busy_percent(seconds: float = 3.0) -> float:
    """How busy the machine is before the bench starts: load from anything else running here
    competes with the server and PostgreSQL and lowers every figure."""
    with machine_load() as reading:
        time.sleep(seconds)
    return reading["busy_percent"]


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LedgerServer:
    """`uvicorn server.app:create_app --factory` (or `app`) on loopback, in its own
    process."""

    def __init__(
        self, database_url: str, data_dir: Path, *, workers: int, app: str = WAVEPICK_APP
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "WAVEPICK_DATABASE_URL": database_url,
            "WAVEPICK_SECRET_KEY": SECRET,
            "WAVEPICK_DATA_DIR": str(data_dir),
            "WAVEPICK_LOG_LEVEL": "WARNING",
            "WAVEPICK_SPEECH_WARM_UP": "false",  # moves only: no CPU spent on voices
        }
        self.log_path = data_dir / "server.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}: {self.log_path.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server did not answer /healthz within {timeout:.0f} s")

    def cpu_seconds(self) -> float:
        return process_tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()


def bearer(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def location_pair(client_number: int) -> tuple[str, str]:
    return f"C{client_number:03d}-A", f"C{client_number:03d}-B"


def stage_warehouse(base_url: str, clients: int) -> None:
    """One warehouse (the supervisor and the picker are its members) and SKU; two stocked
    locations per client, created through the API."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        admin = bearer(client, "admin")
        supervisor = bearer(client, "supervisor")
        client.post(
            "/api/v1/warehouses",
            json={"code": WAREHOUSE, "name": "Bench", "country": "US", "timezone": "UTC"},
            headers=admin,
        ).raise_for_status()
        for member in (Role.supervisor, Role.picker):
            client.put(
                f"/api/v1/users/{member.value}/warehouses",
                json={"warehouses": [WAREHOUSE]},
                headers=admin,
            ).raise_for_status()
        client.post(
            "/api/v1/skus", json={"sku": SKU, "description": "Bench item"}, headers=admin
        ).raise_for_status()
        codes = [code for n in range(clients) for code in location_pair(n)]
        for code in codes:
            client.post(
                f"/api/v1/warehouses/{WAREHOUSE}/locations", json={"code": code}, headers=admin
            ).raise_for_status()
        lines = [{"sku": SKU, "location": code, "quantity": UNITS_PER_LOCATION} for code in codes]
        client.post(
            "/api/v1/receipts", json={"warehouse": WAREHOUSE, "lines": lines}, headers=supervisor
        ).raise_for_status()


@dataclass(frozen=True)
class LineToConfirm:
    id: int
    quantity: int


@dataclass
class PickerWork:
    """A signed-on picker: their headers, and the lines of their current assignment still
    to confirm, in walking order."""

    headers: dict[str, str]
    assignment: int
    lines: list[LineToConfirm]

    def take(self, assignment: dict[str, Any]) -> None:
        self.assignment = assignment["number"]
        self.lines = [
            LineToConfirm(id=line["id"], quantity=line["quantity"])
            for line in sorted(assignment["lines"], key=lambda x: x["sequence"])
            if line["status"] == "open"
        ]


ORDER_LINES = 100  # lines per bench order
ASSIGNMENT_LINES = 500  # the most a wave puts in one assignment
PAGE = 20  # assignments of 500 lines read at a time


def picker_name(n: int) -> str:
    return f"bench-picker-{n}"


def pick_sku(n: int) -> str:
    return f"BENCH-P{n:03d}"


def stage_picks(base_url: str, pickers: int, lines_per_picker: int) -> list[PickerWork]:
    """Picker i (`bench-picker-i`, a member of the bench warehouse) with `lines_per_picker`
    one-unit lines in assignments of up to 500, the first one signed on: its own SKU at
    its own slot, delivered to its own staging location, so pickers never wait on each
    other's stock rows. Built as the floor builds it: orders allocated on import, one
    wave, each assignment given to its SKU's picker by a supervisor, sign-on."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        admin = bearer(client, "admin")
        supervisor = bearer(client, "supervisor")
        receipt = []
        for n in range(pickers):
            sku, slot = pick_sku(n), f"P{n:03d}-SLOT"
            client.post(
                "/api/v1/skus", json={"sku": sku, "description": "Bench pick item"}, headers=admin
            ).raise_for_status()
            for code, kind in ((slot, "storage"), (f"P{n:03d}-STAGE", "staging")):
                client.post(
                    f"/api/v1/warehouses/{WAREHOUSE}/locations",
                    json={"code": code, "kind": kind, "pick_sequence": n},
                    headers=admin,
                ).raise_for_status()
            receipt.append({"sku": sku, "location": slot, "quantity": lines_per_picker})
            client.post(
                "/api/v1/users",
                json={
                    "username": picker_name(n),
                    "password": PASSWORD,
                    "role": "picker",
                    "warehouses": [WAREHOUSE],
                },
                headers=admin,
            ).raise_for_status()
        client.post(
            "/api/v1/receipts", json={"warehouse": WAREHOUSE, "lines": receipt}, headers=supervisor
        ).raise_for_status()
        for n in range(pickers):  # orders picker by picker: the wave batches them so
            for first in range(0, lines_per_picker, ORDER_LINES):
                count = min(ORDER_LINES, lines_per_picker - first)
                order = {
                    "number": f"BENCH-{n:03d}-{first:05d}",
                    "country": "US",
                    "lines": [{"sku": pick_sku(n), "quantity": 1}] * count,
                }
                client.post(
                    "/api/v1/orders", params={"allocate": "true"}, json=order, headers=supervisor
                ).raise_for_status()
        client.post(
            "/api/v1/waves",
            json={
                "warehouse": WAREHOUSE,
                "lines_per_assignment": min(lines_per_picker, ASSIGNMENT_LINES),
            },
            headers=supervisor,
        ).raise_for_status()
        owners = {pick_sku(n): picker_name(n) for n in range(pickers)}
        give_each_assignment_to_its_picker(client, supervisor, owners)
        staged = []
        for n in range(pickers):
            work = PickerWork(bearer(client, picker_name(n)), 0, [])
            signed_on = client.post(
                "/api/v1/assignments/sign-on", json={"warehouse": WAREHOUSE}, headers=work.headers
            )
            signed_on.raise_for_status()
            work.take(signed_on.json())
            staged.append(work)
        return staged


def give_each_assignment_to_its_picker(
    client: httpx.Client, supervisor: dict[str, str], owners: dict[str, str]
) -> None:
    """Each assignment holds one picker's SKU (lines per picker are a multiple of an
    assignment's): it goes to the picker `owners` names for that SKU."""
    offset, total = 0, None
    while total is None or offset < total:
        page = client.get(
            "/api/v1/assignments",
            params={"warehouse": WAREHOUSE, "limit": PAGE, "offset": offset},
            headers=supervisor,
        )
        page.raise_for_status()
        total = page.json()["total"]
        for assignment in page.json()["items"]:
            skus = {line["sku"] for line in assignment["lines"]}
            if len(skus) != 1:
                raise RuntimeError(f"assignment {assignment['number']} mixes SKUs {skus}")
            client.patch(
                f"/api/v1/assignments/{assignment['number']}",
                json={"picker": owners[skus.pop()]},
                headers=supervisor,
            ).raise_for_status()
        offset += PAGE


def reconcile(base_url: str) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        response = client.get(
            "/api/v1/reconcile",
            params={"warehouse": WAREHOUSE},
            headers=bearer(client, "supervisor"),
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


# --- the load ------------------------------------------------------------------------------


@dataclass
class LevelTally:
    """What the clients of one concurrency level saw inside the measured window."""

    window_start: float
    window_end: float
    confirmed_per_second: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    confirmed_total: int = 0  # every success, warm-up and tail included, for the DB check
    success: str = "201"  # a move answers 201, a pick confirmation 200
    exhausted: int = 0  # pickers that confirmed every line they had before the end

    def record(self, started: float, finished: float, status: str) -> None:
        if status == self.success:
            self.confirmed_total += 1
        if not self.window_start <= finished < self.window_end:
            return
        self.statuses[status] += 1
        self.latencies_ms.append((finished - started) * 1000)
        if status == self.success:
            self.confirmed_per_second[int(finished - self.window_start)] += 1


class KeepAlive:
    """One HTTP/1.1 keep-alive connection for the load: a request is a few bytes written and
    its answer read with httptools' C parser (the one uvicorn reads requests with).
    pgbench drives PostgreSQL from C; httpx, here, took 1.2-2.2 ms of CPU a request, so
    eight of its clients took half a core of the two from the server being measured."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        fixed = {"Host": f"{self.host}:{self.port}", "Content-Type": "application/json", **headers}
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes) -> str:
        """The answer's status code, or the name of what went wrong (then reconnects)."""
        try:
            return str(await asyncio.wait_for(self._post(path, body), REQUEST_TIMEOUT))
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            await self.close()
            return type(exc).__name__

    async def _post(self, path: str, body: bytes) -> int:
        if self._stream is None:
            self._stream = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._stream
        head = f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.complete:
            data = await reader.read(65536)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            parser.feed_data(data)
        if not parser.should_keep_alive():
            await self.close()
        return int(parser.get_status_code())

    async def close(self) -> None:
        if self._stream is not None:
            writer = self._stream[1]
            self._stream = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _Answer:
    """httptools' callbacks: only the end of the message matters to the load."""

    complete = False

    def on_message_complete(self) -> None:
        self.complete = True


async def move_back_and_forth(
    base_url: str, headers: dict[str, str], client_number: int, tally: LevelTally
) -> None:
    """One floor worker: sequential moves of one unit between its own two locations."""
    here, there = location_pair(client_number)
    bodies = [
        json.dumps(
            {
                "warehouse": WAREHOUSE,
                "sku": SKU,
                "from_location": source,
                "to_location": target,
                "quantity": 1,
                "reason": "bench",
            }
        ).encode()
        for source, target in ((here, there), (there, here))
    ]
    client = KeepAlive(base_url, headers)
    try:
        while time.perf_counter() < tally.window_end:
            started = time.perf_counter()
            status = await client.post("/api/v1/movements", bodies[0])
            tally.record(started, time.perf_counter(), status)
            bodies.reverse()
    finally:
        await client.close()


async def post_back_to_back(
    base_url: str, headers: dict[str, str], path: str, tally: LevelTally
) -> None:
    """One client of the baseline app: the same empty POST, back to back."""
    client = KeepAlive(base_url, headers)
    try:
        while time.perf_counter() < tally.window_end:
            started = time.perf_counter()
            status = await client.post(path, b"{}")
            tally.record(started, time.perf_counter(), status)
    finally:
        await client.close()


async def confirm_picks(base_url: str, work: PickerWork, tally: LevelTally) -> None:
    """One picker: confirms the lines of their assignment in walking order, one at a time,
    each with its own answer token, as the headset does; at the end of an assignment,
    completes it and signs on to the next."""
    client = KeepAlive(base_url, work.headers)
    try:
        while time.perf_counter() < tally.window_end:
            if not work.lines and not await next_assignment(base_url, work):
                tally.exhausted += 1
                break
            line = work.lines.pop(0)
            body = json.dumps({"quantity": line.quantity, "token": uuid.uuid4().hex}).encode()
            started = time.perf_counter()
            status = await client.post(f"/api/v1/pick-lines/{line.id}/confirm", body)
            tally.record(started, time.perf_counter(), status)
    finally:
        await client.close()


async def next_assignment(base_url: str, work: PickerWork) -> bool:
    """Complete the picker's assignment and sign on to their next; False when none is
    left."""
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        completed = await client.post(
            f"/api/v1/assignments/{work.assignment}/complete", headers=work.headers
        )
        completed.raise_for_status()
        signed_on = await client.post(
            "/api/v1/assignments/sign-on", json={"warehouse": WAREHOUSE}, headers=work.headers
        )
        signed_on.raise_for_status()
    if signed_on.status_code == 204:
        return False
    work.take(signed_on.json())
    return bool(work.lines)


async def cpu_during_window(server: LedgerServer, tally: LevelTally) -> list[float]:
    """CPU seconds of (this client process, the server, the machine busy, the machine total)
    between the start and the end of the measured window."""

    def sample() -> list[float]:
        return [time.process_time(), server.cpu_seconds(), *machine_cpu_seconds()]

    await asyncio.sleep(max(0.0, tally.window_start - time.perf_counter()))
    before = sample()
    await asyncio.sleep(max(0.0, tally.window_end - time.perf_counter()))
    return [b - a for a, b in zip(before, sample(), strict=True)]


def percentile(samples: list[float], fraction: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)


async def run_level(
    server: LedgerServer,
    headers: dict[str, str],
    clients: int,
    duration: float,
    picks: list[PickerWork] | None = None,
    baseline_path: str | None = None,
) -> tuple[dict[str, Any], int]:
    """Drive `clients` concurrent floor workers (movers; with `picks` the pickers, each
    with their headers and lines; with `baseline_path`, posts to that route of the
    baseline app); the level's figures and its count of successes."""
    now = time.perf_counter()
    tally = LevelTally(
        window_start=now + WARMUP_SECONDS,
        window_end=now + WARMUP_SECONDS + duration,
        success="201" if picks is None else "200",
    )
    if baseline_path is not None:
        workers = [
            post_back_to_back(server.url, headers, baseline_path, tally) for _ in range(clients)
        ]
    elif picks is None:
        workers = [move_back_and_forth(server.url, headers, n, tally) for n in range(clients)]
    else:
        workers = [confirm_picks(server.url, work, tally) for work in picks[:clients]]
    usage = asyncio.create_task(cpu_during_window(server, tally))
    await asyncio.wait_for(asyncio.gather(*workers), timeout=WARMUP_SECONDS + duration + 60)
    client_cpu, server_cpu, busy, total = await usage
    per_second = [tally.confirmed_per_second.get(s, 0) for s in range(int(duration))]
    confirmed = sum(tally.confirmed_per_second.values())
    figures = {
        "clients": clients,
        "per_second": round(confirmed / duration, 1),
        "pickers_out_of_lines": tally.exhausted,
        "per_second_min": min(per_second, default=0),
        "per_second_max": max(per_second, default=0),
        "latency_ms": {
            "p50": percentile(tally.latencies_ms, 0.50),
            "p95": percentile(tally.latencies_ms, 0.95),
        },
        "answers": dict(tally.statuses),
        "server_cpu_ms_each": round(1000 * server_cpu / confirmed, 2) if confirmed else None,
        "cpu_seconds": {
            "client": round(client_cpu, 1),
            "server": round(server_cpu, 1),
            "rest_of_machine": round(busy - client_cpu - server_cpu, 1),
            "machine_busy_percent": round(100 * busy / total, 1) if total else None,
        },
    }
    return figures, tally.confirmed_total


# --- pgbench -------------------------------------------------------------------------------


def run_pgbench(admin_url: str, database: str, options: list[str], *, timeout: float) -> str:
    """pgbench's stdout, run against `database` on the admin URL's server."""
    target = psycopg.conninfo.conninfo_to_dict(admin_url)
    connection = [
        *("-h", str(target.get("host", "127.0.0.1"))),
        *("-p", str(target.get("port", 5432))),
        *("-U", str(target.get("user", "postgres"))),
    ]
    pgbench = shutil.which("pgbench") or "/usr/bin/pgbench"
    done = subprocess.run(
        [pgbench, *options, *connection, database],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout


def pgbench_figures(output: str) -> dict[str, float]:
    """`tps = …` and `latency average = … ms` from a pgbench report."""
    tps = re.search(r"^tps = ([0-9.]+)", output, re.MULTILINE)
    latency = re.search(r"^latency average = ([0-9.]+) ms", output, re.MULTILINE)
    if tps is None or latency is None:
        raise RuntimeError(f"no 'tps = …' or 'latency average' in pgbench output:\n{output}")
    return {"tps": float(tps.group(1)), "latency_ms": float(latency.group(1))}


def measure_pgbench(
    admin_url: str, *, clients: int, threads: int, seconds: int
) -> dict[str, float]:
    """TPC-B-like `pgbench -c clients -j threads -T seconds` at scale 10, in a throwaway
    database, with how busy the machine was while it ran."""
    with throwaway_database(admin_url, "wavepick_pgbench") as name:
        run_pgbench(admin_url, name, ["-i", "-s", "10", "-q"], timeout=300)
        load = ["-c", str(clients), "-j", str(threads), "-T", str(seconds)]
        with machine_load() as reading:
            output = run_pgbench(admin_url, name, load, timeout=seconds + 120)
    return {**pgbench_figures(output), "machine_busy_percent": reading["busy_percent"]}


# --- the whole run -------------------------------------------------------------------------


def measure_ledger(
    admin_url: str,
    levels: list[int],
    duration: float,
    workers: int,
    modes: list[str],
    pick_lines: int,
    baseline: bool,
) -> dict[str, Any]:
    """Each mode's levels, then one reconciliation and the ledger cross-check per mode;
    with `baseline`, the baseline app's two routes at 8 clients."""
    with (
        throwaway_database(admin_url, "wavepick_bench") as name,
        tempfile.TemporaryDirectory(prefix="wavepick-bench-") as data_dir,
    ):
        database_url = sqlalchemy_url(admin_url, name)
        upgrade(database_url)
        seed_users(database_url)
        server = LedgerServer(database_url, Path(data_dir), workers=workers)
        results: dict[str, dict[str, Any]] = {}
        confirmed: dict[str, int] = {}
        try:
            server.wait_ready()
            stage_warehouse(server.url, max(levels))
            staged_picks = None
            if "picks" in modes:
                staged_picks = stage_picks(server.url, max(levels), pick_lines)
            with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
                picker = bearer(client, "picker")
            for mode in modes:
                results[mode], confirmed[mode] = {}, 0
                for clients in levels:
                    picks = staged_picks if mode == "picks" else None
                    level = run_level(server, picker, clients, duration, picks)
                    figures, seen = asyncio.run(level)
                    results[mode][str(clients)] = figures
                    confirmed[mode] += seen
            reconciliation = reconcile(server.url)
        finally:
            server.stop()
        baseline_levels = (
            measure_baseline(database_url, Path(data_dir), workers, duration) if baseline else {}
        )
        kinds = {"moves": MovementKind.move, "picks": MovementKind.pick}
        in_ledger = {mode: count_movements(database_url, kinds[mode]) for mode in modes}
    return {
        "levels": results,
        "baseline": baseline_levels,
        "ledger_check": {
            "consistent": reconciliation["consistent"],
            "rows_checked": reconciliation["rows_checked"],
            "discrepancies": len(reconciliation["discrepancies"]),
            **{
                mode: {
                    "confirmed_by_clients": confirmed[mode],
                    "in_ledger": in_ledger[mode],
                    "every_success_is_in_the_ledger": confirmed[mode] == in_ledger[mode],
                }
                for mode in modes
            },
        },
    }


def measure_baseline(
    database_url: str, data_dir: Path, workers: int, duration: float
) -> dict[str, dict[str, Any]]:
    """The baseline app (`bench/_baseline_app.py`) on the bench's database, after the
    real one has stopped: 8 signed-in pickers posting to each of its routes in turn."""
    from bench._baseline_app import ONE_TRANSACTION, SIGNED_IN

    server = LedgerServer(database_url, data_dir, workers=workers, app=BASELINE_APP)
    figures = {}
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
            picker = bearer(client, "picker")
        for name, path in (("signed_in", SIGNED_IN), ("one_transaction", ONE_TRANSACTION)):
            level = run_level(server, picker, BASELINE_CLIENTS, duration, baseline_path=path)
            figures[name] = asyncio.run(level)[0]
    finally:
        server.stop()
    return figures


def postgres_version(admin_url: str) -> str:
    with psycopg.connect(admin_url, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def parse_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("give positive client counts, e.g. 1,8,32")
    return levels


def parse_modes(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    if not modes or set(modes) - {"moves", "picks"}:
        raise argparse.ArgumentTypeError("give moves, picks or moves,picks")
    return list(dict.fromkeys(modes))


def parse_pick_lines(text: str) -> int:
    """Up to 500 lines make one assignment; more make several, all of the same size."""
    lines = int(text) if text.isdigit() else 0
    if not 1 <= lines <= 20_000 or (lines > ASSIGNMENT_LINES and lines % ASSIGNMENT_LINES):
        raise argparse.ArgumentTypeError(
            "give 1 to 500 lines, or a multiple of 500 up to 20000 (assignments of 500)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument("--levels", type=parse_levels, default=[1, 8, 32], help="e.g. 1,8,32")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL of the PostgreSQL server (throwaway databases are made there)",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    parser.add_argument(
        "--modes",
        type=parse_modes,
        default=["moves", "picks"],
        help="what the clients do: moves, picks (pick confirmations), or both: moves,picks",
    )
    parser.add_argument(
        "--pick-lines",
        type=parse_pick_lines,
        default=3000,
        metavar="LINES",
        help="one-unit lines for each picker (picks mode): 1-500, or a multiple of 500",
    )
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the baseline: what a POST doing nothing, and one doing one empty "
        "transaction, reach through the same app",
    )
    args = parser.parse_args()
    if psycopg.conninfo.conninfo_to_dict(args.pg_url).get("host") not in LOOPBACK:
        parser.error("--pg-url must point at 127.0.0.1: this bench only talks to loopback")

    background = background_busy_percent()
    ledger = measure_ledger(
        args.pg_url,
        args.levels,
        args.duration,
        args.workers,
        args.modes,
        args.pick_lines,
        args.baseline,
    )
    pgbench = measure_pgbench(args.pg_url, clients=8, threads=2, seconds=args.pgbench_seconds)
    tps = pgbench["tps"]

    report: dict[str, Any] = {}
    for mode, levels in ledger["levels"].items():
        at_8 = levels.get("8", {}).get("per_second")
        report[f"{mode}_per_second"] = {n: level["per_second"] for n, level in levels.items()}
        report[f"{mode}_latency_ms"] = {n: level["latency_ms"] for n, level in levels.items()}
        report[f"ratio_{mode}_c8_to_pgbench_c8"] = round(at_8 / tps, 3) if at_8 and tps else None
    report["baseline"] = {
        name: {
            "per_second": level["per_second"],
            "server_cpu_ms_each": level["server_cpu_ms_each"],
            "ratio_to_pgbench_c8": round(level["per_second"] / tps, 3) if tps else None,
            "answers": level["answers"],
        }
        for name, level in ledger["baseline"].items()
    }
    report |= {
        "pgbench_tps_c8": round(tps, 1),
        "pgbench_c8": pgbench,
        "reconcile": ledger["ledger_check"],
        "levels": ledger["levels"],
        "settings": {
            "modes": args.modes,
            "duration_s": args.duration,
            "warmup_s": WARMUP_SECONDS,
            "uvicorn_workers": args.workers,
            "pick_lines_per_picker": args.pick_lines,
            "baseline": args.baseline,
            "pgbench": f"-i -s 10; -c 8 -j 2 -T {args.pgbench_seconds}",
        },
        "machine": {
            "cores": os.cpu_count(),
            "busy_percent_before_bench": background,
            "contended": background > CONTENDED_PERCENT,
            "python": platform.python_version(),
            "postgresql": postgres_version(args.pg_url),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
