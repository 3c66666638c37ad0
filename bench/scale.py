"""Text-mode headsets against several app processes: turn latency and errors with many
pickers on PostgreSQL and Redis; prints one JSON document.

    python bench/scale.py [--pickers 1000] [--workers 3] [--duration 120] [--think 6]
                          [--ramp 60]
                          [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
                          [--redis-url redis://127.0.0.1:6379/0]

A throwaway PostgreSQL database and a Redis key prefix of its own hold one
`wavepick serve --demo --workers N`. `wavepick simulate pickers` (server.simulate) then
creates the pickers and their work (orders allocated, waves released) and runs them: each
picker's headset socket lands on whichever process the kernel gives it, answers by typed
`say` frames after thinking 0.5–1.5 × `--think` seconds (walking to the slot, reading the
label), and times each turn from the answer sent to the first audio byte of the next
prompt. A realistic pace is an answer every several seconds: a line is four to five
answers, and pickers close a line every 20–40 s. `--ramp` spreads the sign-ons over that
many seconds, as a shift starts (0: every headset connects at once). The defaults are
a shift's start on a big floor: 1,000 pickers signing on over a minute, then picking, on
three app processes (one more than this 2-core machine has cores: an app process's
event loop and database threads share one interpreter lock, docs/scale-out.md). A headset the server
tells to try again later (1013 `store_unavailable`, 4409 `session_busy`) connects again
after a backoff, as the headset page does: those are reported as `reconnects`, anything
else that fails as `errors`.

Reported: picks and turns, turn latency p50/p95/max, errors, whether stock equals the
ledger afterwards, and the CPU seconds of the server processes, of the simulated
headsets (this process) and of the whole machine, which the pickers, the servers,
PostgreSQL and Redis all share, while the pickers work (the set-up before is not in them),
and the same per turn. The audio-mode figure (pickers per core with spoken
answers) is `bench/walk.py --pickers ... --capacity-ms 500`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._serve import ServeProcess
from bench.ledger import (
    background_busy_percent,
    machine_cpu_seconds,
    process_tree_cpu_seconds,
    sqlalchemy_url,
    throwaway_database,
)
from server.simulate import prepare, simulate

PASSWORD = "scale-bench-password"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    busy = background_busy_percent()
    env = {
        "WAVEPICK_REDIS_URL": args.redis_url,
        "WAVEPICK_REDIS_PREFIX": f"wavepick-scale-{uuid.uuid4().hex[:8]}:",
        "WAVEPICK_EVENTS_STREAM": f"wavepick-scale-{uuid.uuid4().hex[:8]}:events",
        "WAVEPICK_LOG_LEVEL": "WARNING",
    }
    with (
        tempfile.TemporaryDirectory(prefix="wavepick-scale-") as folder,
        throwaway_database(args.pg_url, "wavepick_scale") as name,
    ):
        server = ServeProcess(
            Path(folder),
            password=PASSWORD,
            database_url=sqlalchemy_url(args.pg_url, name),
            warm_up=False,
            env=env,
            args=["--workers", str(args.workers)],
        )
        with server:
            assert server.process is not None
            pid = server.process.pid
            progress(f"{args.workers} app processes serving; preparing {args.pickers} pickers")
            floor = asyncio.run(prepare(server.url, server.admin, args.pickers, progress))
            server_before, client_before = process_tree_cpu_seconds(pid), time.process_time()
            machine_before = machine_cpu_seconds()
            simulated = asyncio.run(
                simulate(
                    server.url,
                    count=args.pickers,
                    duration=args.duration,
                    audio=False,
                    think=args.think,
                    ramp=args.ramp,
                    admin=server.admin,
                    progress=progress,
                    floor=floor,
                )
            )
            machine_after = machine_cpu_seconds()
            cpu = {
                "servers": round(process_tree_cpu_seconds(pid) - server_before, 1),
                "simulated_headsets": round(time.process_time() - client_before, 1),
                "machine": round(machine_after[0] - machine_before[0], 1),
                "machine_available": round(machine_after[1] - machine_before[1], 1),
            }
            turns = max(1, simulated["turns"])
            cpu_per_turn = {
                "servers": round(1000 * cpu["servers"] / turns, 1),
                "machine": round(1000 * cpu["machine"] / turns, 1),
            }
    return {
        "bench": "scale",
        "settings": {
            "pickers": args.pickers,
            "workers": args.workers,
            "duration_s": args.duration,
            "think_s": args.think,
            "ramp_s": args.ramp,
            "database": "postgresql",
        },
        "simulation": simulated,
        "cpu_seconds": cpu,
        "cpu_ms_per_turn": cpu_per_turn,
        "machine": {"busy_before_percent": busy, "cores": len(os.sched_getaffinity(0))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--pickers", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3, help="app processes")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of picking")
    parser.add_argument("--think", type=float, default=6.0, help="seconds before each answer")
    parser.add_argument(
        "--ramp", type=float, default=60.0, help="seconds over which pickers sign on"
    )
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
