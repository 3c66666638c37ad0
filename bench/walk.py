"""Walk benchmark: whole demo pick assignments walked over the real headset socket by pickers
speaking with human voices (fsdd-dev); prints one JSON document.

    python bench/walk.py [--rate 8000 16000] [--gap-ms 40 150 300] [--gain-db -25]
                         [--floor-dbfs -60] [--floor-colour pink|white]
                         [--speakers george jackson lucas] [--seed N] [--pickers 1 [5 ...]]
                         [--capacity-ms 500] [--detail]
                         [--transport socket|webrtc] [--speech-workers N]
                         [--brokered redis://127.0.0.1:6379/0]

One fresh `wavepick serve --demo` process (speech warmed up before the first walk) serves
every walk. Each walk is a new simulated picker (`server.simulate.prepare`) who signs on,
takes the most urgent fresh assignment and walks it to "Deliver to staging": the microphone
streams 20 ms frames in real time over a quiet noise floor, check digits, quantities and
serial suffixes are spoken digit by digit by one speaker (takes 3-49, `--gap-ms` between
digits, `--gain-db` quieter than the recordings), everything else is typed. With
`--transport webrtc` the microphone and the prompts travel on a WebRTC audio track (Opus)
once the headset's peer connection is up, as the headset page's do. One walk per
speaker x rate x gap; with `--pickers N`, N pickers walk each condition at once (latency
under load); several counts (`--pickers 1 5 10 20`) are walked one after the other, and
with `--capacity-ms 500` the walk stops at the first count whose p95 exceeds it and reports
the largest count within it, per core (`capacity`). `--speech-workers` sets the server's
WAVEPICK_SPEECH_WORKERS (default: its own default, one per core; 0: speech in the app's
threads). With `--brokered REDIS_URL` the server's readings go through that Redis to the
speech workers it starts (`WAVEPICK_SPEECH_BROKERED`), as they would to workers on other
hosts: the broker's cost, measured against the same walk without it.

Per walk: answers, right first time, fragments (and the dialog states they landed in),
misheard, false commands, not understood, unheard, latency from the last speech sample to
the next prompt's first audio (p50/p95), how the lines ended and whether stock still equals
the ledger. The server's CPU (app and speech workers) over the walks, per spoken answer.
Then totals per condition ("rate/gap") and per speaker, the worst of each (the
lowest share of answers right first time), and latency over all walks. Definitions:
bench/_walk_score.py. One walk of a demo assignment takes one to two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._serve import ServeProcess
from bench._walk_score import count, percentiles_ms, rate
from bench._walker import FSDD, WalkReport, walk
from bench.ledger import background_busy_percent, process_tree_cpu_seconds
from server.simulate import prepare

__all__ = ["FSDD", "ServeProcess", "WalkReport", "walk", "walk_conditions"]

PASSWORD = "walk-bench-password"
SPEAKERS = ("george", "jackson", "lucas")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def walk_conditions(
    server: ServeProcess,
    conditions: list[tuple[str, int, int]],
    *,
    pickers: int = 1,
    seed: int = 0,
    say: Callable[[str], None] = progress,
    **options: Any,
) -> list[WalkReport]:
    """Walk each (speaker, rate, gap_ms) with `pickers` new pickers at once, each on a
    fresh assignment; `options` go to `walk` (gain_db, floor_dbfs, ...)."""
    floor = await prepare(server.url, server.admin, len(conditions) * pickers, say)
    tokens = iter(floor.tokens)
    reports: list[WalkReport] = []
    for n, (speaker, sample_rate, gap_ms) in enumerate(conditions):
        say(f"walking: {speaker}, {sample_rate} Hz, {gap_ms} ms gaps, {pickers} picker(s)")
        reports += await asyncio.gather(
            *(
                walk(
                    server.url,
                    next(tokens),
                    floor,
                    speaker=speaker,
                    rate=sample_rate,
                    gap_ms=gap_ms,
                    seed=seed + 1000 * n + k,
                    **options,
                )
                for k in range(pickers)
            )
        )
        for report in reports[-pickers:]:
            say(f"  {report.picker}: {report.end} in {report.duration_s} s, {report.counts()}")
    return reports


def totals(reports: Iterable[WalkReport]) -> dict[str, Any]:
    walks = list(reports)
    counts = count([a for r in walks for a in r.answers])
    return {
        "walks": len(walks),
        "finished": sum(r.finished for r in walks),
        **counts,
        "right_first_time_rate": rate(counts["right_first_time"], counts["answers"]),
        "latency_ms": percentiles_ms([x for r in walks for x in r.latencies()]),
        "stock_consistent": all(r.stock_consistent for r in walks),
    }


def per_answer(cpu_s: float, answers: int) -> int | None:
    return round(1000 * cpu_s / answers) if answers else None


def step(pickers: int, walked: list[WalkReport], cpu_s: float) -> dict[str, Any]:
    """One count of pickers walking at once: latency, how well they were heard, and the
    server's CPU (app and speech workers) per spoken answer."""
    figures = totals(walked)
    return {
        "pickers": pickers,
        "latency_ms": figures["latency_ms"],
        "right_first_time_rate": figures["right_first_time_rate"],
        "finished": figures["finished"],
        "walks": figures["walks"],
        "cpu_s": round(cpu_s, 1),
        "cpu_ms_per_answer": per_answer(cpu_s, figures["answers"]),
    }


def grouped(reports: list[WalkReport], key: Callable[[WalkReport], str]) -> dict[str, Any]:
    keys = dict.fromkeys(key(r) for r in reports)
    return {k: totals(r for r in reports if key(r) == k) for k in keys}


def worst(groups: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The group with the lowest share right first time (then the most wrong heard frames)."""
    scored = [(k, v) for k, v in groups.items() if v["right_first_time_rate"] is not None]
    if not scored:
        return None
    name, figures = min(
        scored,
        key=lambda kv: (
            kv[1]["right_first_time_rate"],
            -(kv[1]["fragments"] + kv[1]["misheard"] + kv[1]["false_commands"]),
        ),
    )
    return {"name": name, **figures}


def report(
    reports: list[WalkReport], settings: dict[str, Any], server: ServeProcess, detail: bool
) -> dict[str, Any]:
    by_condition = grouped(reports, lambda r: f"{r.rate}/{r.gap_ms}")
    by_speaker = grouped(reports, lambda r: r.speaker)
    return {
        "bench": "walk",
        "settings": settings,
        "server": {"warm_up_s": server.warm_up_s},
        "walks": [r.to_json(detail) for r in reports],
        "by_condition": by_condition,
        "by_speaker": by_speaker,
        "worst_condition": worst(by_condition),
        "worst_speaker": worst(by_speaker),
        "overall": totals(reports),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, nargs="+", default=[8000, 16000])
    parser.add_argument("--gap-ms", type=int, nargs="+", default=[40, 150, 300])
    parser.add_argument("--gain-db", type=float, default=-25.0)
    parser.add_argument("--floor-dbfs", type=float, default=-60.0)
    parser.add_argument("--floor-colour", choices=("pink", "white"), default="pink")
    parser.add_argument("--speakers", nargs="+", choices=SPEAKERS, default=list(SPEAKERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pickers",
        type=int,
        nargs="+",
        default=[1],
        help="pickers walking at once; several counts are walked one after the other",
    )
    parser.add_argument(
        "--capacity-ms",
        type=int,
        default=None,
        help="with several --pickers: stop at the first count whose p95 exceeds this",
    )
    parser.add_argument("--max-turns", type=int, default=80)
    parser.add_argument("--data", type=Path, default=FSDD, help="the fsdd-dev folder")
    parser.add_argument("--detail", action="store_true", help="every answer and heard frame")
    parser.add_argument(
        "--speech-workers", type=int, default=None, help="the server's speech worker processes"
    )
    parser.add_argument(
        "--brokered",
        metavar="REDIS_URL",
        default=None,
        help="readings go through this Redis to the speech workers the server starts "
        "(WAVEPICK_SPEECH_BROKERED), as they would to workers on other hosts",
    )
    parser.add_argument(
        "--transport",
        choices=("socket", "webrtc"),
        default="socket",
        help="microphone and prompt audio as binary socket frames, or on a WebRTC track",
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"no human recordings at {args.data}")
    conditions = [
        (speaker, sample_rate, gap)
        for speaker in args.speakers
        for sample_rate in args.rate
        for gap in args.gap_ms
    ]
    options = {
        "gain_db": args.gain_db,
        "floor_dbfs": args.floor_dbfs,
        "floor_colour": args.floor_colour,
        "max_turns": args.max_turns,
        "fsdd": args.data,
        "transport": args.transport,
    }
    settings = {
        **{k: v for k, v in options.items() if k != "fsdd"},
        "rates": args.rate,
        "gaps_ms": args.gap_ms,
        "speakers": args.speakers,
        "seed": args.seed,
        "pickers": args.pickers,
        "speech_workers": args.speech_workers,
        "brokered": args.brokered is not None,
    }
    workers = args.speech_workers
    env = {} if workers is None else {"WAVEPICK_SPEECH_WORKERS": str(workers)}
    if args.brokered:
        env |= {
            "WAVEPICK_REDIS_URL": args.brokered,
            "WAVEPICK_REDIS_PREFIX": f"wavepick-walk-{os.getpid()}",
            "WAVEPICK_SPEECH_BROKERED": "true",
        }
    started = time.monotonic()
    busy = background_busy_percent()
    with tempfile.TemporaryDirectory(prefix="wavepick-walk-") as folder:
        progress("starting wavepick serve --demo and warming up speech")
        with ServeProcess(Path(folder), password=PASSWORD, env=env) as server:
            progress(f"server ready in {server.warm_up_s} s")
            assert server.process is not None
            pid = server.process.pid
            steps: list[dict[str, Any]] = []
            reports: list[WalkReport] = []
            for count in args.pickers:
                cpu_before = process_tree_cpu_seconds(pid)
                walked = asyncio.run(
                    walk_conditions(server, conditions, pickers=count, seed=args.seed, **options)
                )
                cpu_s = process_tree_cpu_seconds(pid) - cpu_before
                steps.append(step(count, walked, cpu_s))
                reports += walked
                if args.capacity_ms and steps[-1]["latency_ms"]["p95"] > args.capacity_ms:
                    break
            result = report(reports, settings, server, args.detail)
    result["server"]["cpu_ms_per_answer"] = per_answer(
        sum(s["cpu_s"] for s in steps), result["overall"]["answers"]
    )
    result["steps"] = steps
    if args.capacity_ms:
        within = [s["pickers"] for s in steps if s["latency_ms"]["p95"] <= args.capacity_ms]
        cores = len(os.sched_getaffinity(0))
        result["capacity"] = {
            "target_p95_ms": args.capacity_ms,
            "largest_pickers_within": max(within, default=0),
            "per_core": round(max(within, default=0) / cores, 1),
            "cores": cores,
        }
    result["machine"] = {"busy_before_percent": busy, "cores": os.cpu_count()}
    result["duration_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
