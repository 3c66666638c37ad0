"""Prompt synthesis latency: first audio of fresh prompts, cached lookups, per engine and locale.

Run from the repository root:  python -m bench.tts [--engine espeak-ng|pyttsx3|all] [--n 40]
Prints JSON. Targets (not asserted anywhere): first audio of a fresh prompt <= 150 ms,
cached prompt <= 5 ms. Each engine runs in its own process, because libespeak-ng can be
initialised by only one driver kind per process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from voice.tts import (
    EspeakEngine,
    Pyttsx3Engine,
    SpeechEngine,
    SynthesisFailed,
    Synthesizer,
    Voice,
)

ENGINES: dict[str, Callable[[], SpeechEngine]] = {
    "espeak-ng": EspeakEngine,
    "pyttsx3": Pyttsx3Engine,
}

PROMPTS: dict[str, Callable[[int], str]] = {
    "en-US": lambda n: ("Aisle {a}. Slot {s}.", "Pick {q}.")[n % 2].format(
        a=n % 40 + 1, s=n // 40 + 1, q=n + 1
    ),
    "zh-CN": lambda n: ("第{a}通道，{s}号货位。", "拣{q}件。")[n % 2].format(
        a=n % 40 + 1, s=n // 40 + 1, q=n + 1
    ),
}


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=20, method="inclusive")
    return {"p50": round(statistics.median(samples_ms), 2), "p95": round(cuts[18], 2)}


def timed_first(chunks: Iterator[bytes]) -> float | None:
    """Milliseconds until the first audio frame; None when the engine produced no audio."""
    started = time.perf_counter()
    try:
        next(chunks)
    except SynthesisFailed:
        return None
    return (time.perf_counter() - started) * 1000


def measure(engine_name: str, n: int, sample_rate: int) -> dict[str, object]:
    synthesizer = Synthesizer(engine=ENGINES[engine_name]())
    cold = timed_first(synthesizer.stream("Ready.", "en-US", sample_rate))
    report: dict[str, object] = {"cold_start_ms": None if cold is None else round(cold, 2)}
    for locale, prompt in PROMPTS.items():
        texts = [prompt(i) for i in range(n)]  # distinct: every one is a cache miss
        timings = {
            text: timed_first(synthesizer.stream(text, locale, sample_rate)) for text in texts
        }
        first = [ms for ms in timings.values() if ms is not None]
        spoken = [text for text, ms in timings.items() if ms is not None]
        cached = []
        for text in spoken:
            started = time.perf_counter()
            synthesizer.synthesize(text, locale, sample_rate)
            cached.append((time.perf_counter() - started) * 1000)
        report[locale] = {
            "fresh_first_audio_ms": percentiles(first),
            "cached_ms": percentiles(cached),
            "prompts": n,
            "failed_no_audio": n - len(spoken),
        }
    report["disk_cached_ms"] = disk_check(engine_name, sample_rate)
    report["rate_applied"] = rate_check(engine_name, sample_rate)
    report["renders"] = synthesizer.renders
    return report


def disk_check(engine_name: str, sample_rate: int, n: int = 20) -> dict[str, float]:
    """A restarted server: prompts rendered by a previous process, read from the disk cache."""
    texts = [PROMPTS["en-US"](i) for i in range(n)]
    with tempfile.TemporaryDirectory() as cache_dir:
        earlier = Synthesizer(Path(cache_dir), engine=ENGINES[engine_name]())
        spoken = []
        for text in texts:
            try:
                earlier.synthesize(text, "en-US", sample_rate)
            except SynthesisFailed:
                continue
            spoken.append(text)
        restarted = Synthesizer(Path(cache_dir), engine=ENGINES[engine_name]())
        lookups = []
        for text in spoken:
            started = time.perf_counter()
            restarted.synthesize(text, "en-US", sample_rate)
            lookups.append((time.perf_counter() - started) * 1000)
        if restarted.renders:
            raise RuntimeError(f"disk cache missed {restarted.renders} of {len(spoken)} prompts")
    return percentiles(lookups)


def rate_check(engine_name: str, sample_rate: int, rounds: int = 10) -> str:
    """How often a prompt comes out at the speaking rate asked for ("k/n")."""
    engine = ENGINES[engine_name]()
    brisk = Synthesizer(engine=engine, voices={"en-US": Voice("en-US", "en-us", 260)})
    slow = Synthesizer(engine=engine, voices={"en-US": Voice("en-US", "en-us", 130)})
    applied = 0
    for i in range(rounds):
        text = f"Aisle {i}. Slot {i + 4}. Pick {i + 2}."
        try:
            fast_len = len(brisk.synthesize(text, "en-US", sample_rate))
            slow_len = len(slow.synthesize(text, "en-US", sample_rate))
        except SynthesisFailed:
            continue  # counted as not applied
        applied += slow_len > 1.6 * fast_len  # 130 vs 260 wpm: about twice as long
    return f"{applied}/{rounds}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=[*ENGINES, "all"], default="all")
    parser.add_argument("--n", type=int, default=40, help="fresh prompts per locale")
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args()
    if args.engine != "all":
        print(json.dumps({args.engine: measure(args.engine, args.n, args.sample_rate)}))
        return
    results: dict[str, object] = {}
    for name in ENGINES:
        command = [sys.executable, "-m", "bench.tts", "--engine", name, "--n", str(args.n)]
        command += ["--sample-rate", str(args.sample_rate)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results.update(json.loads(done.stdout))
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
