"""Second-reading benchmark: what reading a whole digit answer again at the line's own
length (`PickDialog.answer_grammar`) adds, split by how sure the first reading was; prints
one JSON document.

    python bench/second_reading.py [--digits 4] [--count 12] [--rate 8000]
                                   [--gap-ms 40 150 300] [--gain-db -25] [--seed 7]

Answers of `--digits` digits (4 or more: a serial suffix, fewer: check digits) are spoken
digit by digit by each fsdd-dev speaker (takes 3-49, `--gap-ms` between digits, `--gain-db`
quieter than recorded, over a -60 dBFS white floor) and read by the recogniser the server
uses, in this process: first with the listening grammar of the state that asks for them
(serial: 1 to 8 digits or a command; location: 1 to 4), then narrowed to exactly
`--digits`, as the headset conversation does. Per group ("sure": the
first reading already has the right length at fused confidence >= 0.9 and is taken;
"rest"): how many each reading got right, how often the second changed the first, and the
CPU of each reading. Nothing here is tuned; it says whether the second reading may be
skipped when the first is sure.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._human_voice import HumanVoice
from bench.walk import FSDD, SPEAKERS
from server.config import Settings
from server.headset.conversation import sure_at_length
from voice.dialog.pick import PICK_WORKFLOW
from voice.stt import Result
from voice.workers import LocalSpeech, SpeechSetup


def read_twice(
    speech: LocalSpeech, audio: np.ndarray, rate: int, digits: int
) -> tuple[Result, Result, bool, float, float]:
    """Both readings, whether the headset would skip the second (`sure_at_length`), and
    the CPU of each."""
    asking = "serial" if digits >= 4 else "location"
    grammar = PICK_WORKFLOW.grammar(PICK_WORKFLOW.state(asking), "en-US")
    answer = grammar.exactly(digits)
    started = time.process_time()
    first = speech.recognize(audio, grammar.listening(), rate, None)
    between = time.process_time()
    second = speech.recognize(audio, answer, rate, None)
    sure = bool(first.tokens) and first.tokens[0].isdigit() and sure_at_length(first, answer)
    return first, second, sure, between - started, time.process_time() - between


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    count = len(rows)
    return {
        "answers": count,
        "first_right": sum(r["first_right"] for r in rows),
        "second_right": sum(r["second_right"] for r in rows),
        "second_changed_first": sum(r["first"] != r["second"] for r in rows),
        "cpu_ms_first": round(1000 * float(np.mean([r["cpu_first"] for r in rows])), 1)
        if rows
        else None,
        "cpu_ms_second": round(1000 * float(np.mean([r["cpu_second"] for r in rows])), 1)
        if rows
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=4)
    parser.add_argument("--count", type=int, default=12, help="answers per speaker and gap")
    parser.add_argument("--rate", type=int, default=8000)
    parser.add_argument("--gap-ms", type=int, nargs="+", default=[40, 150, 300])
    parser.add_argument("--gain-db", type=float, default=-25.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not FSDD.is_dir():
        parser.exit(2, f"the human recordings of fsdd-dev are not at {FSDD}\n")

    settings = Settings()
    speech = LocalSpeech(SpeechSetup(synthetic_dir=settings.speech_cache_path, locales=("en-US",)))
    rng = random.Random(args.seed)
    noise = np.random.default_rng(args.seed)
    floor_rms = 32768 * 10 ** (-60 / 20)
    quiet = np.zeros(args.rate // 5, np.int16)
    rows: list[dict[str, Any]] = []
    for speaker in SPEAKERS:
        for gap in args.gap_ms:
            voice = HumanVoice(FSDD, speaker, args.rate, gap_ms=gap, gain_db=args.gain_db)
            for _ in range(args.count):
                said = "".join(rng.choice("0123456789") for _ in range(args.digits))
                spoken = np.concatenate([quiet, voice.say(said, rng).samples, quiet])
                heard = spoken + noise.normal(0, floor_rms, len(spoken))
                audio = np.clip(np.round(heard), -32768, 32767).astype(np.int16)
                first, second, sure, cpu_first, cpu_second = read_twice(
                    speech, audio, args.rate, args.digits
                )
                rows.append(
                    {
                        "speaker": speaker,
                        "gap_ms": gap,
                        "sure": sure,
                        "first": "".join(first.tokens),
                        "second": "".join(second.tokens),
                        "first_right": first.accepted and "".join(first.tokens) == said,
                        "second_right": second.accepted and "".join(second.tokens) == said,
                        "cpu_first": cpu_first,
                        "cpu_second": cpu_second,
                    }
                )
    print(
        json.dumps(
            {
                "bench": "second_reading",
                "settings": vars(args),
                "sure": summary([r for r in rows if r["sure"]]),
                "rest": summary([r for r in rows if not r["sure"]]),
                "sure_by_speaker": {
                    s: summary([r for r in rows if r["sure"] and r["speaker"] == s])
                    for s in SPEAKERS
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
