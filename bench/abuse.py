"""Abuse benchmark: a real `wavepick serve --demo` under a login flood, huge request bodies,
huge WebSocket messages and a large CSV import, while a supervisor keeps using the API;
prints one JSON document.

    python bench/abuse.py [--clients 40] [--seconds 10] [--orders 20000]

Phases, one after the other, each with a prober that reads `GET /api/v1/stock` every
100 ms with a valid token (the `/api` latency a floor sees during the attack) and a
sampler that reads the server's resident memory (`/proc/PID/status`) every 50 ms:

1. login flood: `--clients` clients sign in back to back for `--seconds` s, half of them
   with the right password of a demo picker, half guessing the admin's;
2. large bodies: `--clients` clients each send a 400 MB body declared by Content-Length,
   and as many a chunked body of up to 64 MiB with no length (with a valid token);
3. WebSocket: 30 sockets, one per picker, each send one 16 MiB message to `/ws/headset`;
4. CSV import (SQLite): `--orders` orders imported in one file while a supervisor posts
   an adjustment every 100 ms; `writer_wait_max_ms` is the slowest adjustment.

Targets (issue 11): peak server memory under 500 MB, `/api` p95 under 300 ms during each
attack. `ok` says whether both held in every phase. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: import this checkout's `server`
    sys.path.insert(0, str(REPO))

from bench._serve import ServeProcess  # noqa: E402

PASSWORD = "bench-demo-password"
MiB = 1024 * 1024
MEMORY_TARGET_MB = 500
API_P95_TARGET_MS = 300


class MemorySampler:
    """The peak resident memory of one process, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._rss_kb())
            time.sleep(0.05)

    def __enter__(self) -> MemorySampler:
        self.peak_kb = self._rss_kb()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kb / 1024, 1)


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


def probe_api(url: str, token: str, stop: Any, out: Any) -> None:
    """In its own process (so the attackers' event loop does not slow it): milliseconds of
    each `GET /api/v1/stock` until `stop`; a failed read counts as the time it took."""
    latencies = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            with contextlib.suppress(httpx.HTTPError):
                client.get(
                    "/api/v1/stock", params={"warehouse": "LAX", "limit": 5}, headers=headers
                )
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.1)
    out.put(latencies)


async def under_attack(
    server: ServeProcess, token: str, attack: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run `attack` while probing the API and sampling memory; its figures plus those."""
    assert server.process is not None
    processes = multiprocessing.get_context("spawn")
    stop, out = processes.Event(), processes.Queue()
    prober = processes.Process(target=probe_api, args=(server.url, token, stop, out))
    prober.start()
    await asyncio.sleep(1.0)  # the prober has started probing
    with MemorySampler(server.process.pid) as memory:
        started = time.perf_counter()
        figures = await attack()
        seconds = time.perf_counter() - started
        stop.set()
    latencies = await asyncio.to_thread(out.get)
    prober.join()
    return {
        **figures,
        "seconds": round(seconds, 1),
        "peak_rss_mb": memory.peak_mb,
        "api_requests": len(latencies),
        "api_p50_ms": percentile(latencies, 0.5),
        "api_p95_ms": percentile(latencies, 0.95),
        "api_max_ms": round(max(latencies), 1) if latencies else None,
    }


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )


async def login_flood(url: str, clients: int, seconds: float) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def client_loop(n: int) -> None:
        right = n % 2 == 0
        username = f"picker{n % 5 + 1}" if right else "admin"
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            attempt = 0
            while time.monotonic() < deadline:
                password = PASSWORD if right else f"guess-{n}-{attempt}"
                attempt += 1
                try:
                    answer = await sign_in(client, username, password)
                    statuses[str(answer.status_code)] += 1
                    if answer.status_code in (429, 503):
                        await asyncio.sleep(0.05)
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

    await asyncio.gather(*(client_loop(n) for n in range(clients)))
    return {"clients": clients, "answers": dict(statuses)}


async def _chunks(total: int, size: int = MiB) -> AsyncIterator[bytes]:
    block = b" " * size
    for _ in range(total // size):
        yield block


async def large_bodies(url: str, clients: int, token: str) -> dict[str, Any]:
    statuses: Counter[str] = Counter()

    async def declared() -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(400 * 10**6)}
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            try:
                answer = await client.post(
                    "/api/v1/movements", content=_chunks(400 * 10**6), headers=headers
                )
                statuses[f"declared {answer.status_code}"] += 1
            except httpx.HTTPError as exc:  # the server answered 413 and closed mid-upload
                statuses[f"declared {type(exc).__name__}"] += 1

    async def chunked() -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            try:
                answer = await client.post(
                    "/api/v1/movements", content=_chunks(64 * MiB), headers=headers
                )
                statuses[f"chunked {answer.status_code}"] += 1
            except httpx.HTTPError as exc:
                statuses[f"chunked {type(exc).__name__}"] += 1

    await asyncio.gather(
        *(declared() for _ in range(clients)), *(chunked() for _ in range(clients))
    )
    return {"clients": 2 * clients, "answers": dict(statuses)}


async def huge_messages(url: str, tokens: list[str]) -> dict[str, Any]:
    """One socket per picker (a second socket of the same picker would take the first
    over, 4409, before its message is sent), each sending a 16 MiB message at once."""
    closes: Counter[str] = Counter()
    ws_url = url.replace("http://", "ws://") + "/ws/headset"

    async def one(token: str) -> None:
        try:
            async with websockets.connect(
                ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
            ) as ws:
                await ws.send(b"\0" * (16 * MiB))
                while True:
                    await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as closed:
            closes[str(closed.rcvd.code if closed.rcvd else "none")] += 1
        except (OSError, TimeoutError) as exc:
            closes[type(exc).__name__] += 1

    await asyncio.gather(*(one(token) for token in tokens))
    return {"sockets": len(tokens), "close_codes": dict(closes)}


async def pickers(client: httpx.AsyncClient, count: int) -> list[str]:
    """`count` pickers of their own, made by the admin: their tokens."""
    admin = (await sign_in(client, "admin", PASSWORD)).json()["access_token"]
    tokens = []
    for n in range(count):
        made = await client.post(
            "/api/v1/users",
            json={
                "username": f"abuse-{n}",
                "password": PASSWORD,
                "role": "picker",
                "warehouses": ["SZX"],
            },
            headers={"Authorization": f"Bearer {admin}"},
        )
        made.raise_for_status()
        tokens.append((await sign_in(client, f"abuse-{n}", PASSWORD)).json()["access_token"])
    return tokens


async def csv_import(url: str, token: str, orders: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        skus = (await client.get("/api/v1/skus", params={"limit": 500}, headers=headers)).json()[
            "items"
        ]
        plain = next(s["sku"] for s in skus if not s["lot_controlled"] and not s["serialized"])
        stock = (
            await client.get(
                "/api/v1/stock", params={"warehouse": "LAX", "sku": plain}, headers=headers
            )
        ).json()["items"]
        location = stock[0]["location"] if stock else "A-01-01"
        text = "order,sku,quantity,country,postcode\n" + "".join(
            f"BENCH-{n},{plain},1,US,90001\n" for n in range(orders)
        )
        done = asyncio.Event()
        waits: list[float] = []
        adjustment_statuses: Counter[int] = Counter()

        async def adjust() -> None:
            body = {
                "warehouse": "LAX",
                "sku": plain,
                "location": location,
                "quantity": 1,
                "reason": "found",
            }
            while not done.is_set():
                started = time.perf_counter()
                answer = await client.post("/api/v1/adjustments", json=body, headers=headers)
                waits.append((time.perf_counter() - started) * 1000)
                adjustment_statuses[answer.status_code] += 1
                await asyncio.sleep(0.1)

        writer = asyncio.create_task(adjust())
        imported = await client.post(
            "/api/v1/orders/import",
            files={"file": ("orders.csv", text, "text/csv")},
            headers=headers,
        )
        done.set()
        await writer
    return {
        "orders": orders,
        "import_status": imported.status_code,
        "imported": imported.json().get("imported"),
        "adjustments": dict(adjustment_statuses),
        "writer_wait_p50_ms": percentile(waits, 0.5),
        "writer_wait_max_ms": round(max(waits), 1) if waits else None,
    }


async def run(server: ServeProcess, clients: int, seconds: float, orders: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        token = (await sign_in(client, "supervisor", PASSWORD)).json()["access_token"]
        socket_pickers = await pickers(client, 30)

    async def idle() -> dict[str, Any]:
        await asyncio.sleep(3)
        return {}

    phases = {
        "baseline": await under_attack(server, token, idle),
        "login_flood": await under_attack(
            server, token, lambda: login_flood(server.url, clients, seconds)
        ),
        "large_bodies": await under_attack(
            server, token, lambda: large_bodies(server.url, clients, token)
        ),
        "websocket_messages": await under_attack(
            server, token, lambda: huge_messages(server.url, socket_pickers)
        ),
        "csv_import": await under_attack(
            server, token, lambda: csv_import(server.url, token, orders)
        ),
    }
    attacks = [p for name, p in phases.items() if name not in ("baseline", "csv_import")]
    return {
        "targets": {"peak_rss_mb": MEMORY_TARGET_MB, "api_p95_ms": API_P95_TARGET_MS},
        "ok": all(
            p["peak_rss_mb"] < MEMORY_TARGET_MB and (p["api_p95_ms"] or 0) < API_P95_TARGET_MS
            for p in attacks
        ),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in phases.values()),
        **phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--orders", type=int, default=20_000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="wavepick-abuse-") as folder,
        ServeProcess(Path(folder), password=PASSWORD, warm_up=False) as server,
    ):
        result = asyncio.run(run(server, args.clients, args.seconds, args.orders))
    result["machine"] = {"cpus": len(os.sched_getaffinity(0)), "load_1m": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
