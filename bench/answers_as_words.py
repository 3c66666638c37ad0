"""Digit answers heard as words: how often what a picker says at a prompt that wants digits
comes back as a command word, and how often the dialog would act on it; prints one JSON
document.

    python bench/answers_as_words.py [--answers 40] [--rate 8000 16000] [--gain-db -25]
                                     [--seed 11]

Each fsdd-dev speaker (takes 3-49) says `--answers` answers to each pick state that takes
digits: check digits (2), a quantity (1) and a serial's last digits (4), with 40, 150 and
300 ms between the digits, `--gain-db` quieter than recorded, over a -60 dBFS white floor.
Each is read as the headset reads it (`server.headset.conversation`): with the state's
listening grammar, then judged against the line's answer (its digits, as many as the line
has). Counted per rate, speaker, pause and state:

- `as_word`: the reading is a command word;
- `taken_by_engines`: the engines accepted that word at a confidence the dialog acts on
  (0.5, or `WORK_CHANGING_CONFIDENCE` for the words that change work);
- `taken`: the same after `refuse_word_read_as_digits` (what the headset does now);
- `changes_work`: of `taken`, words that change work (sign off, short, skip slot, ...);
  `changes_work_by_engines`, of `taken_by_engines`.

No setting is chosen here: the rule has no threshold. fsdd-dev holds no command words, so
how often a real command is refused by the rule is not measured here.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._human_voice import FLOOR_DBFS, HumanVoice, over_the_floor
from bench.walk import FSDD, SPEAKERS
from server.config import Settings
from voice.dialog.machine import WORK_CHANGING_CONFIDENCE
from voice.dialog.pick import PICK_WORKFLOW, PickDialog
from voice.grammar import DIGITS
from voice.stt import Result, refuse_word_read_as_digits
from voice.workers import LocalSpeech, SpeechSetup

GAPS_MS = (40, 150, 300)
ANSWERS = {"location": 2, "quantity": 1, "serial": 4}  # state: digits of the line's answer
ACTED_ON = 0.5  # the dialog's own minimum confidence


def acted_on(reading: Result) -> bool:
    """Whether the dialog would run the word's handler."""
    word = reading.tokens[0]
    needed = WORK_CHANGING_CONFIDENCE if word in PickDialog.work_changing else ACTED_ON
    return reading.accepted and reading.confidence >= needed


def tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    words = [r for r in rows if r["word"]]
    return {
        "answers": len(rows),
        "as_word": len(words),
        "taken_by_engines": sum(r["taken_by_engines"] for r in words),
        "taken": sum(r["taken"] for r in words),
        "changes_work_by_engines": sum(
            r["taken_by_engines"] and r["word"] in PickDialog.work_changing for r in words
        ),
        "changes_work": sum(r["taken"] and r["word"] in PickDialog.work_changing for r in words),
        "words": dict(Counter(r["word"] for r in words).most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=40, help="per speaker, state and pause")
    parser.add_argument("--rate", type=int, nargs="+", default=[8000, 16000])
    parser.add_argument("--gain-db", type=float, default=-25.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if not FSDD.is_dir():
        parser.exit(2, f"the human recordings of fsdd-dev are not at {FSDD}\n")

    speech = LocalSpeech(
        SpeechSetup(synthetic_dir=Settings().speech_cache_path, locales=("en-US",))
    )
    rng = random.Random(args.seed)
    noise = np.random.default_rng(args.seed)
    rows: list[dict[str, Any]] = []
    for rate in args.rate:
        for speaker in SPEAKERS:
            for gap in GAPS_MS:
                voice = HumanVoice(FSDD, speaker, rate, gap_ms=gap, gain_db=args.gain_db)
                for state, digits in ANSWERS.items():
                    listening = PICK_WORKFLOW.grammar(
                        PICK_WORKFLOW.state(state), "en-US"
                    ).listening()
                    answer = listening.exactly(digits)
                    for _ in range(args.answers):
                        said = "".join(rng.choice(DIGITS) for _ in range(digits))
                        audio = over_the_floor(voice.say(said, rng).samples, rate, noise)
                        reading = speech.recognize(audio, listening, rate, None)
                        word = reading.tokens[0] if reading.tokens[:1] else None
                        is_word = word is not None and word not in DIGITS
                        judged = refuse_word_read_as_digits(reading, answer)
                        rows.append(
                            {
                                "rate": rate,
                                "speaker": speaker,
                                "gap_ms": gap,
                                "state": state,
                                "said": said,
                                "word": word if is_word else None,
                                "confidence": round(reading.confidence, 3),
                                "taken_by_engines": is_word and acted_on(reading),
                                "taken": is_word and acted_on(judged),
                            }
                        )
        print(f"{rate} Hz read", file=sys.stderr, flush=True)

    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups["by_condition"][f"{row['rate']}/{row['gap_ms']}ms"].append(row)
        groups["by_speaker"][row["speaker"]].append(row)
        groups["by_state"][row["state"]].append(row)
    report: dict[str, Any] = {
        "bench": "answers_as_words",
        "settings": vars(args)
        | {"floor_dbfs": FLOOR_DBFS, "gaps_ms": GAPS_MS, "digits_per_state": ANSWERS},
        "overall": tally(rows),
        **{
            name: {key: tally(found) for key, found in sorted(group.items())}
            for name, group in groups.items()
        },
        "taken_by_engines": [
            {k: r[k] for k in ("rate", "speaker", "gap_ms", "state", "said", "word", "confidence")}
            for r in rows
            if r["taken_by_engines"]
        ],
    }
    for name in ("by_condition", "by_speaker"):
        worst = max(report[name], key=lambda k: report[name][k]["as_word"])
        report[f"worst_{name.removeprefix('by_')}"] = {worst: report[name][worst]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
