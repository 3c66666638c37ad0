"""Endpointing benchmark: where live answers end, over a microphone floor, with the rule
that lets speech break an answer's quiet (`EndpointSettings.resume_frames` of the last
`resume_window` frames voiced) as shipped and as "every voiced frame"; prints one JSON
document.

    python bench/endpointing.py [--rate 8000 16000] [--gap-ms 40 150 300] [--answers 40]
                                [--gain-db -25] [--floor-dbfs -60] [--seed 0]
                                [--speakers george jackson lucas]

No recogniser and no server: only `voice.endpoint.Endpointer` with `LIVE_ANSWERS`, fed
20 ms frames as the headset socket is. Two parts:

- `noise`: 120 s of pink noise at `--floor-dbfs` per rate and seed (three seeds): the
  share of frames the endpointer calls voiced, the share that would break an answer's
  quiet under each rule, and from that how often the 160 ms that ends a whole answer and
  the 700 ms that ends a partial one would be broken by noise alone. The shipped rule was
  chosen on this part only.
- `answers`: per rate x gap x speaker, `--answers` answers of 1, 2 or 4 digits said by one
  fsdd-dev speaker (takes 3-49, `--gap-ms` between digits, `--gain-db`) between 0.5 s and
  5 s of the floor. Per rule: answers not endpointed as exactly one utterance (`split`:
  cut in pieces, or never found; utterances of the floor alone after the answer are
  `floor_utterances`), seconds from the last speech sample to the end of a partial answer
  (its `end_silence_ms` of quiet; `partial_end_s`) and to the first moment the quiet
  reaches 160 ms (when a whole answer read at its pause may end; `whole_end_s`), p50 /
  p95 / max.
- `pauses`: how long the endpointer hears a pause of `--pause-ms` (400: the longest pause
  inside an answer that must keep it one answer) between two digits said by one speaker
  at `--pause-gain-db` (-30: the quietest level the issue asks for), per rate and speaker
  (`--pairs` pairs of random digits and takes 3-49): the longest run of frames that do
  not carry speech on, from the first word's start to the second's end. A quiet voice's
  word edges (the tail of "one", the "f" of "four") sink under the floor, so the pause
  heard is longer than the pause said. A partial answer must wait longer than that
  (`EndpointSettings.end_silence_ms`), chosen leaving one speaker out: for each speaker
  the longest pause heard of the other two, plus a frame; `chosen` is the largest of
  those, and each speaker's share of pauses that would split at its fold's value and at
  the shipped one is reported.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._human_voice import HumanVoice
from bench._microphone import NoiseFloor
from bench._walker import FSDD
from voice.endpoint import LIVE_ANSWERS, Endpointer, EndpointSettings, SpeechEnded

RULES = {
    "shipped": LIVE_ANSWERS,
    "every_voiced_frame": replace(LIVE_ANSWERS, resume_frames=1, resume_window=1),
}
NOISE_S = 120
NOISE_SEEDS = (3, 4, 5)
LEAD_S, TAIL_S = 0.5, 5.0  # the tail: time for a partial end that noise put off


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def floor_samples(count: int, dbfs: float, seed: int) -> np.ndarray:
    return NoiseFloor(dbfs, "pink", seed).next(count)


def as_pcm(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


def quiet_broken(share: float, quiet_ms: int, frame_ms: int) -> float:
    """How often a quiet of `quiet_ms` holds at least one frame that breaks it."""
    return 1.0 - (1.0 - share) ** (quiet_ms // frame_ms)


def noise(rate: int, dbfs: float) -> dict[str, Any]:
    """What the endpointer makes of the microphone floor alone."""
    settings = LIVE_ANSWERS
    frame = rate * settings.frame_ms // 1000
    voiced_shares: list[float] = []
    breaking: dict[str, list[float]] = {rule: [] for rule in RULES}
    for seed in NOISE_SEEDS:
        pcm = as_pcm(floor_samples(rate * NOISE_S, dbfs, seed))
        endpointer = Endpointer(rate, settings)
        voiced = np.array(
            [endpointer.is_speech(pcm[i : i + frame]) for i in range(0, len(pcm) - frame, frame)]
        )[50:]  # the floor tracker settled
        voiced_shares.append(float(voiced.mean()))
        for rule, ruled in RULES.items():
            frames = voiced.tolist()
            breaks = [ruled.resumes(frames[: i + 1]) for i in range(len(frames))]
            breaking[rule].append(float(np.mean(breaks)))
    assert settings.whole_end_ms is not None
    return {
        "voiced_share": [round(v, 4) for v in voiced_shares],
        "rules": {
            rule: {
                "breaking_share": [round(v, 4) for v in shares],
                "whole_end_broken": [
                    round(quiet_broken(v, settings.whole_end_ms, settings.frame_ms), 3)
                    for v in shares
                ],
                "partial_end_broken": [
                    round(quiet_broken(v, settings.end_silence_ms, settings.frame_ms), 3)
                    for v in shares
                ],
            }
            for rule, shares in breaking.items()
        },
    }


def endpoint(pcm: np.ndarray, rate: int, settings: EndpointSettings, speech_end: float) -> Any:
    """(pieces, partial end, whole end, floor utterances): the utterances that began while
    the answer was being said (1 when it stayed whole), when the only one ended and when
    its quiet first reached `whole_end_ms` (seconds after `speech_end`, None when they did
    not come), and the utterances the floor alone made after the answer."""
    endpointer = Endpointer(rate, settings)
    frame = rate * settings.frame_ms // 1000
    pieces: list[float] = []
    after = 0
    whole: float | None = None
    assert settings.whole_end_ms is not None
    for i in range(0, len(pcm) - frame + 1, frame):
        at = (i + frame) / rate
        for event in endpointer.feed(pcm[i : i + frame]):
            if isinstance(event, SpeechEnded) and len(event.audio):
                if event.start < speech_end:
                    pieces.append(at - speech_end)
                else:
                    after += 1
        quiet = endpointer.quiet_ms >= settings.whole_end_ms
        if whole is None and at > speech_end and quiet:
            whole = at - speech_end
    return len(pieces), (pieces[0] if len(pieces) == 1 else None), whole, after


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p50, p95, top = np.percentile(values, [50, 95, 100])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "max": round(float(top), 3)}


def answers(
    rate: int, gap_ms: int, speaker: str, count: int, gain_db: float, dbfs: float, seed: int
) -> dict[str, Any]:
    voice = HumanVoice(FSDD, speaker, rate, gap_ms=gap_ms, gain_db=gain_db)
    rng = random.Random(f"{seed}-{rate}-{gap_ms}-{speaker}")
    found: dict[str, dict[str, Any]] = {
        rule: {"split": 0, "partial": [], "whole": [], "floor": 0} for rule in RULES
    }
    for _ in range(count):
        digits = "".join(str(rng.randrange(10)) for _ in range(rng.choice((1, 2, 4))))
        said = voice.say(digits, rng).samples.astype(np.float64)
        lead, tail = np.zeros(int(rate * LEAD_S)), np.zeros(int(rate * TAIL_S))
        clean = np.concatenate([lead, said, tail])
        pcm = as_pcm(clean + floor_samples(len(clean), dbfs, rng.randrange(2**31)))
        speech_end = (len(lead) + len(said)) / rate
        for rule, settings in RULES.items():
            pieces, partial, whole, after = endpoint(pcm, rate, settings, speech_end)
            seen = found[rule]
            seen["split"] += pieces != 1
            seen["floor"] += after
            if partial is not None:
                seen["partial"].append(partial)
            if whole is not None:
                seen["whole"].append(whole)
    return {
        rule: {
            "answers": count,
            "split": seen["split"],
            "floor_utterances": seen["floor"],
            "partial_end_s": spread(seen["partial"]),
            "whole_end_s": spread(seen["whole"]),
        }
        for rule, seen in found.items()
    }


def longest_quiet(pcm: np.ndarray, rate: int, until_s: float) -> int:
    """The longest quiet (ms) the endpointer hears inside the utterance before `until_s`:
    what a partial answer's wait must exceed for the utterance to stay one."""
    settings = replace(LIVE_ANSWERS, end_silence_ms=60_000)
    endpointer = Endpointer(rate, settings)
    frame = rate * settings.frame_ms // 1000
    longest = 0
    for i in range(0, int(until_s * rate) - frame + 1, frame):
        endpointer.feed(pcm[i : i + frame])
        longest = max(longest, endpointer.quiet_ms)
    return longest


def pauses_heard(
    rate: int, speaker: str, pairs: int, pause_ms: int, gain_db: float, dbfs: float, seed: int
) -> list[int]:
    voice = HumanVoice(FSDD, speaker, rate, gap_ms=pause_ms, gain_db=gain_db)
    rng = random.Random(f"{seed}-pauses-{rate}-{speaker}")
    heard: list[int] = []
    for _ in range(pairs):
        said = voice.say(f"{rng.randrange(10)}{rng.randrange(10)}", rng).samples
        lead, tail = np.zeros(int(rate * LEAD_S)), np.zeros(int(rate * TAIL_S))
        clean = np.concatenate([lead, said.astype(np.float64), tail])
        pcm = as_pcm(clean + floor_samples(len(clean), dbfs, rng.randrange(2**31)))
        heard.append(longest_quiet(pcm, rate, (len(lead) + len(said)) / rate))
    return heard


def partial_wait(heard: dict[str, list[int]], frame_ms: int) -> dict[str, Any]:
    """The partial answer's wait chosen leaving one speaker out (see the docstring)."""
    shipped = LIVE_ANSWERS.end_silence_ms
    folds: dict[str, Any] = {}
    for speaker, own in heard.items():
        others = [ms for other, values in heard.items() if other != speaker for ms in values]
        wait = max(others) + frame_ms
        folds[speaker] = {
            "wait_ms": wait,
            "split_at_fold_wait": round(float(np.mean([ms >= wait for ms in own])), 3),
            "split_at_shipped": round(float(np.mean([ms >= shipped for ms in own])), 3),
            "heard_ms": spread([float(ms) for ms in own]),
        }
    return {
        "shipped_ms": shipped,
        "chosen_ms": max(fold["wait_ms"] for fold in folds.values()),
        "folds": folds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, nargs="+", default=[8000, 16000])
    parser.add_argument("--gap-ms", type=int, nargs="+", default=[40, 150, 300])
    parser.add_argument("--answers", type=int, default=40)
    parser.add_argument("--gain-db", type=float, default=-25.0)
    parser.add_argument("--floor-dbfs", type=float, default=-60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause-ms", type=int, default=400)
    parser.add_argument("--pause-gain-db", type=float, default=-30.0)
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument(
        "--speakers", nargs="+", default=["george", "jackson", "lucas"], help="fsdd-dev voices"
    )
    args = parser.parse_args()
    report: dict[str, Any] = {
        "bench": "endpointing",
        "settings": {
            "gain_db": args.gain_db,
            "floor_dbfs": args.floor_dbfs,
            "floor": "pink",
            "answers": args.answers,
            "seed": args.seed,
            "rules": {
                rule: {"resume_frames": s.resume_frames, "resume_window": s.resume_window}
                for rule, s in RULES.items()
            },
        },
        "noise": {},
        "answers": {},
    }
    heard: dict[str, list[int]] = {speaker: [] for speaker in args.speakers}
    for rate in args.rate:
        for speaker in args.speakers:
            progress(f"pauses: {speaker}, {rate} Hz")
            heard[speaker] += pauses_heard(
                rate,
                speaker,
                args.pairs,
                args.pause_ms,
                args.pause_gain_db,
                args.floor_dbfs,
                args.seed,
            )
    report["pauses"] = {
        "pause_ms": args.pause_ms,
        "gain_db": args.pause_gain_db,
        "pairs_per_rate": args.pairs,
        **partial_wait(heard, LIVE_ANSWERS.frame_ms),
    }
    for rate in args.rate:
        progress(f"noise at {rate} Hz")
        report["noise"][str(rate)] = noise(rate, args.floor_dbfs)
        for gap in args.gap_ms:
            for speaker in args.speakers:
                progress(f"answers: {speaker}, {rate} Hz, {gap} ms gaps")
                key = f"{rate}/{gap}/{speaker}"
                report["answers"][key] = answers(
                    rate, gap, speaker, args.answers, args.gain_db, args.floor_dbfs, args.seed
                )
    for rule in RULES:
        rows = [row[rule] for row in report["answers"].values()]
        report.setdefault("totals", {})[rule] = {
            "answers": sum(r["answers"] for r in rows),
            "split": sum(r["split"] for r in rows),
            "floor_utterances": sum(r["floor_utterances"] for r in rows),
            "worst_partial_end_p95_s": max(
                (r["partial_end_s"]["p95"] for r in rows if r["partial_end_s"]), default=None
            ),
            "worst_whole_end_p95_s": max(
                (r["whole_end_s"]["p95"] for r in rows if r["whole_end_s"]), default=None
            ),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
