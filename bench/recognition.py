"""Recognition benchmark on fsdd-dev (human digits, 8 kHz): prints one JSON document.

    python bench/recognition.py [--limit N | --quick] [--snr 10] [--grammar digit]
                                [--no-whisper]

Keys "<condition>/<engine>", per speaker and overall. Without enrollment: "pocketsphinx",
"whisper", "synthetic" (the words in synthetic voices, matched on Whisper's encoder frames)
and "auto" (what `auto` makes of them). With enrollment of takes 0-2 of each digit (the
rest are tested): "templates" (the operator's takes alone; on MFCCs with --no-whisper) and
"auto_enrolled" (what `auto` does with a profile).
Conditions: clean, and warehouse noise (hum, beeps, air) at --snr dB. "check_digit_strings":
2-3 digit strings of one speaker with short pauses, as `auto` hears them. Then, per engine,
confidence thresholds chosen leaving one speaker out (how a threshold read off some voices
serves another voice), false accepts on non-speech clips (through the endpointer, and
handed to the engine as they are), CPU per utterance (process CPU, all threads, endpointing
included; p50/p95/mean; each engine over a speaker's takes on its own), the latency from
the end of speech to the final result when the audio is streamed in 20 ms chunks through
the endpointer, and the machine they were taken on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voice.audio import add_noise, read_wav, warehouse_noise
from voice.endpoint import Endpointer, SpeechEnded
from voice.enroll import Profile
from voice.grammar import named_grammar
from voice.stt.base import Recognizer, Result
from voice.stt.factory import EngineCache, open_recognizer
from voice.stt.recording import recognize_recording, speech_span
from voice.stt.templates import TemplateRecognizer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "speech" / "fsdd-dev"
RATE = 8000
SPEAKERS = ("george", "jackson", "lucas")
ENROLLED_TAKES = (0, 1, 2)


def load_corpus(data: Path, limit: int | None) -> dict[tuple[str, str, int], np.ndarray]:
    corpus = {}
    for path in sorted(data.glob("*.wav")):
        digit, speaker, take = path.stem.split("_")
        if limit is not None and int(take) not in ENROLLED_TAKES and int(take) >= 3 + limit:
            continue
        samples, rate = read_wav(path)
        assert rate == RATE, path
        corpus[(digit, speaker, int(take))] = samples
    return corpus


def noisy(samples: np.ndarray, snr: float, seed: int) -> np.ndarray:
    noise = warehouse_noise(2.0, RATE, "mixed", seed=seed % 17)
    return add_noise(samples, noise, snr, np.random.default_rng(seed))


def machine() -> dict[str, object]:
    """The CPU the times were taken on: they compare only on like machines (one Whisper
    decode took 13 ms here and 49 ms on an earlier machine of the same kind; forcing
    CTranslate2 to AVX2 here, CT2_FORCE_CPU_ISA=AVX2, changed nothing)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), ""
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []
    )
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "avx512": "avx512f" in flags,
    }


def timed(fn):  # type: ignore[no-untyped-def]
    """(value, CPU ms of the whole process: Whisper decodes on its own threads)."""
    start = time.process_time()
    value = fn()
    return value, (time.process_time() - start) * 1000.0


def heard_right(truth: str, result: Result) -> bool:
    """Whether the result is the digit string said (one digit or several)."""
    return "".join(result.tokens) == truth


def summary(rows: list[tuple[str, Result]]) -> dict[str, float]:
    n = len(rows) or 1
    correct = sum(1 for truth, r in rows if heard_right(truth, r))
    accepted = [(t, r) for t, r in rows if r.accepted]
    acc_ok = sum(1 for truth, r in accepted if heard_right(truth, r))
    return {
        "n": len(rows),
        "accuracy": round(correct / n, 4),
        "accepted": round(len(accepted) / n, 4),
        "accepted_correct": round(acc_ok / n, 4),
        "accepted_wrong": round((len(accepted) - acc_ok) / n, 4),
    }


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def build_profile(root: Path, corpus: dict, speaker: str) -> Profile:  # type: ignore[type-arg]
    profile = Profile.open(root / speaker, create=True)
    for (digit, spk, take), samples in sorted(corpus.items()):
        if spk == speaker and take in ENROLLED_TAKES:
            span = speech_span(samples, RATE)
            profile.add_take(digit, span if span is not None else samples, RATE)
    return profile


def streaming_latency(recognizer, samples: np.ndarray) -> float | None:  # type: ignore[no-untyped-def]
    """ms from the end of speech to the final result, streaming 20 ms chunks."""
    pad = np.zeros(RATE * 3 // 10, np.int16)
    stream = np.concatenate([pad, samples, np.zeros(RATE, np.int16)])
    speech_end = (len(pad) + len(samples)) / RATE
    endpointer = Endpointer(RATE)
    chunk = RATE // 50
    for i in range(0, len(stream), chunk):
        t0 = time.perf_counter()
        for event in endpointer.feed(stream[i : i + chunk]):
            if isinstance(event, SpeechEnded) and len(event.audio):
                recognizer.recognize(event.audio)
                compute = time.perf_counter() - t0
                fed = (i + chunk) / RATE
                return (fed - speech_end + compute) * 1000.0
    return None


def general_engines(grammar, cache: EngineCache) -> dict[str, Recognizer]:  # type: ignore[no-untyped-def]
    """The engines that need no enrollment: PocketSphinx, Whisper, the words in synthetic
    voices, and what `auto` makes of them."""
    engines = {"pocketsphinx": open_recognizer("pocketsphinx", grammar, RATE, cache=cache)}
    if cache.whisper_available(grammar.locale):
        engines["whisper"] = open_recognizer("whisper", grammar, RATE, cache=cache)
    synthetic = cache.synthetic(grammar)
    if synthetic is not None:
        engines["synthetic"] = TemplateRecognizer(grammar, RATE, synthetic, name="synthetic")
    return engines | {"auto": open_recognizer("auto", grammar, RATE, cache=cache)}


def held_out_thresholds(per_speaker: dict[str, list[tuple[str, Result]]]) -> dict[str, object]:
    """Leave one speaker out: the confidence threshold that serves the other speakers best
    (most right answers accepted, a wrong one costing ten), applied to the held-out one."""

    def outcome(rows: list[tuple[str, Result]], threshold: float) -> tuple[int, int]:
        acted = [(truth, r) for truth, r in rows if r.tokens and r.confidence >= threshold]
        right = sum(1 for truth, r in acted if heard_right(truth, r))
        return right, len(acted) - right

    grid = [round(x, 2) for x in np.arange(0.3, 0.96, 0.05)]
    report: dict[str, object] = {}
    right_total = wrong_total = n_total = 0
    for held_out, rows in per_speaker.items():
        others = [row for s, rs in per_speaker.items() if s != held_out for row in rs]
        best = max(grid, key=lambda th: (lambda rw: rw[0] - 10 * rw[1])(outcome(others, th)))
        right, wrong = outcome(rows, best)
        right_total, wrong_total, n_total = (
            right_total + right,
            wrong_total + wrong,
            n_total + len(rows),
        )
        report[held_out] = {
            "threshold": best,
            "accepted_correct": round(right / len(rows), 4),
            "accepted_wrong": round(wrong / len(rows), 4),
        }
    report["overall"] = {
        "accepted_correct": round(right_total / n_total, 4),
        "accepted_wrong": round(wrong_total / n_total, 4),
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="test takes per digit/speaker")
    parser.add_argument("--quick", action="store_true", help="same as --limit 5")
    parser.add_argument("--snr", type=float, default=10.0)
    parser.add_argument("--grammar", default="digit")
    parser.add_argument("--no-whisper", action="store_true", help="leave the Whisper engine out")
    args = parser.parse_args()
    limit = 5 if args.quick and args.limit is None else args.limit

    corpus = load_corpus(args.data, limit)
    grammar = named_grammar(args.grammar)
    cache = EngineCache(use_whisper=not args.no_whisper)
    anyone = general_engines(grammar, cache)
    rows: dict[str, dict[str, list[tuple[str, Result]]]] = defaultdict(lambda: defaultdict(list))
    cpu: dict[str, list[float]] = defaultdict(list)
    latencies: dict[str, list[float]] = defaultdict(list)
    auto_engines: dict[str, str] = {}
    profiles: dict[str, Profile] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for speaker in SPEAKERS:
            profile = profiles[speaker] = build_profile(Path(tmp), corpus, speaker)
            engines = anyone | {
                "templates": open_recognizer("templates", grammar, RATE, profile, cache),
                "auto_enrolled": open_recognizer("auto", grammar, RATE, profile, cache),
            }
            tests = [
                (k, v)
                for k, v in sorted(corpus.items())
                if k[1] == speaker and k[2] not in ENROLLED_TAKES
            ]
            for (digit, _, take), clean in tests:
                seed = (int(digit) * 7919 + take * 104729 + SPEAKERS.index(speaker)) % 100000
                conditions = (("clean", clean), (f"snr{args.snr:g}", noisy(clean, args.snr, seed)))
                for cond, audio in conditions:
                    for name, engine in engines.items():
                        result = recognize_recording(engine, audio, RATE)
                        rows[f"{cond}/{name}"][speaker].append((digit, result))
                if take % 4 == 0 or (limit is not None and take < 3 + limit):
                    for label, name in (("no_enrollment", "auto"), ("enrolled", "auto_enrolled")):
                        recognizer = engines[name]
                        auto_engines[label] = recognizer.name
                        latency = streaming_latency(recognizer, clean)
                        if latency is not None:
                            latencies[label].append(latency)
            # CPU: each engine alone over the speaker's takes, as a stream would run it
            for name, engine in engines.items():
                for _, clean in tests:
                    _, ms = timed(lambda e=engine, a=clean: recognize_recording(e, a, RATE))
                    cpu[name].append(ms)
        false_accepts = non_speech(anyone, cache, Path(tmp), grammar)
        strings = digit_strings(corpus, profiles, cache, args.snr)

    report: dict[str, object] = {
        "data": str(args.data),
        "grammar": args.grammar,
        "test_takes_per_digit_and_speaker": limit or 47,
        "enrolled_takes_per_digit": len(ENROLLED_TAKES),
        "snr_db": args.snr,
        "note": "accuracy = top answer right; accepted_wrong = answers acted on but wrong",
        "machine": machine(),
    }
    for key, per_speaker in sorted(rows.items()):
        everything = [r for rs in per_speaker.values() for r in rs]
        report[key] = {"overall": summary(everything)} | {
            s: summary(rs) for s, rs in per_speaker.items()
        }
    report["held_out_thresholds"] = {
        key: held_out_thresholds(per_speaker)
        for key, per_speaker in sorted(rows.items())
        if key.split("/")[1] in ("whisper", "auto", "auto_enrolled")
    }
    report["check_digit_strings"] = strings
    report["false_accepts_non_speech"] = false_accepts
    report["cpu_ms_per_utterance"] = {
        k: {"p50": percentile(v, 50), "p95": percentile(v, 95), "mean": round(float(np.mean(v)), 2)}
        for k, v in cpu.items()
    }
    report["end_of_speech_to_result_ms"] = {
        label: {
            "engine": auto_engines[label],
            "chunk_ms": 20,
            "n": len(v),
            "p50": percentile(v, 50),
            "p95": percentile(v, 95),
        }
        for label, v in latencies.items()
    }
    print(json.dumps(report, indent=1))


def digit_strings(corpus, profiles, cache: EngineCache, snr: float) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Check digits as a picker says them: 2-3 test takes of one speaker with pauses of
    80-200 ms between them, through `auto` with the check-digit grammar."""
    rng = np.random.default_rng(7)
    grammar = named_grammar("check_digits")
    rows: dict[str, list[tuple[str, Result]]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    for speaker, profile in profiles.items():
        takes = [
            (d, v) for (d, s, t), v in corpus.items() if s == speaker and t not in ENROLLED_TAKES
        ]
        for n in range(20):
            picked = [takes[i] for i in rng.choice(len(takes), size=2 + n % 2, replace=False)]
            parts = [np.zeros(int(RATE * rng.uniform(0.08, 0.2)), np.int16)]
            for _, samples in picked:
                parts += [samples, np.zeros(int(RATE * rng.uniform(0.08, 0.2)), np.int16)]
            clean = np.concatenate(parts)
            truth = "".join(d for d, _ in picked)
            for label, prof in (("no_enrollment", None), ("enrolled", profile)):
                recognizer = open_recognizer("auto", grammar, RATE, prof, cache)
                for cond, audio in (("clean", clean), (f"snr{snr:g}", noisy(clean, snr, n))):
                    result, ms = timed(
                        lambda r=recognizer, a=audio: recognize_recording(r, a, RATE)
                    )
                    rows[f"{cond}/{label}"].append((truth, result))
                    if cond == "clean":
                        cpu[label].append(ms)

    return {key: summary(pairs) for key, pairs in sorted(rows.items())} | {
        "cpu_ms": {k: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for k, v in cpu.items()}
    }


def non_speech(anyone, cache: EngineCache, tmp: Path, grammar) -> dict[str, object]:  # type: ignore[no-untyped-def]
    clips = []
    for seed in range(8):
        for kind in ("hum", "beeps", "air", "mixed"):
            clips.append(warehouse_noise(1.5, RATE, kind, seed=seed))
        rng = np.random.default_rng(seed)
        clips.append((rng.standard_normal(RATE) * 2000).astype(np.int16))
        clicks = np.zeros(RATE, np.int16)
        clicks[rng.integers(0, RATE, 5)] = 20000
        clips.append(clicks)
    engines = dict(anyone)
    engines["templates"] = open_recognizer("templates", grammar, RATE, tmp / "george", cache)
    engines["auto_enrolled"] = open_recognizer("auto", grammar, RATE, tmp / "george", cache)
    # digit strings bring PocketSphinx in as a backup, which reads digits into noise
    strings = named_grammar("check_digits")
    engines["auto_check_digits"] = open_recognizer("auto", strings, RATE, cache=cache)
    endpointed: dict[str, int] = defaultdict(int)
    raw: dict[str, int] = defaultdict(int)
    for clip in clips:
        for name, engine in engines.items():
            endpointed[name] += recognize_recording(engine, clip, RATE).accepted
            raw[name] += engine.recognize(clip).accepted
    return {
        "clips": len(clips),
        "endpointed": {k: round(v / len(clips), 4) for k, v in endpointed.items()},
        "engine_alone": {k: round(v / len(clips), 4) for k, v in raw.items()},
    }


if __name__ == "__main__":
    main()
