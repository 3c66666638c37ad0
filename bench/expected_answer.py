"""Expected-answer benchmark: how much the answer a line expects may weigh against what the
engines heard (`voice.stt.expecting`), chosen leaving one speaker out; prints one JSON
document.

    python bench/expected_answer.py [--takes 10] [--checks 40] [--rate 8000 16000]
                                    [--gain-db -25] [--seed 3] [--bound 0.005]

Quantities (one digit, each digit 0-9 `--takes` times) and check digits (`--checks`
two-digit strings, 40/150/300 ms between the digits in turn) are spoken by each fsdd-dev
speaker (takes 3-49, `--gain-db` quieter than recorded, over a -60 dBFS white floor) and
read as the headset reads them (the state's listening grammar, then the line's length
unless the first reading is already sure of it). Each reading is then weighed with every
weight of `WEIGHTS` as if the line expected:

- what was said: is it taken (right)?
- each other answer (quantity: the other digits 1-9; check digits: the 18 strings one
  digit away, a neighbouring slot's): is that taken instead (wrong: the picker said
  something else and the dialog heard the line's own answer)?

For each speaker left out, the weight is the largest whose wrong share stays within
`--bound` (the issue's 0.5 % acted on wrong) on each of the other two speakers (the worst
speaker, not their mean: one clean voice must not make room for a poor one); that speaker's right
and wrong shares at weight 1 (the engines alone) and at that weight are reported. The
headset uses the smallest weight any fold chose (`chosen`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._human_voice import HumanVoice, over_the_floor
from bench.walk import FSDD, SPEAKERS
from server.config import Settings
from server.headset.conversation import sure_at_length
from voice.dialog.pick import PICK_WORKFLOW
from voice.grammar import Grammar
from voice.stt import Result, expecting
from voice.workers import LocalSpeech, SpeechSetup

WEIGHTS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0)
GAPS_MS = (40, 150, 300)


def read_as_headset(
    speech: LocalSpeech, audio: np.ndarray, rate: int, state: str, digits: int
) -> tuple[Result, Grammar | None]:
    """The reading the dialog would be handed, and the grammar of the line's length (or
    None when the reading is not a whole digit answer, which is never weighed)."""
    listening = PICK_WORKFLOW.grammar(PICK_WORKFLOW.state(state), "en-US").listening()
    answer = listening.exactly(digits)
    heard = speech.recognize(audio, listening, rate, None)
    if len(heard.tokens) < digits or not heard.tokens[0].isdigit():
        return heard, None
    if not sure_at_length(heard, answer):
        heard = speech.recognize(audio, answer, rate, None)
    return heard, answer


def taken(heard: Result, answer: Grammar | None, expected: str, weight: float) -> bool:
    """Whether the dialog takes `expected` from this reading at `weight`."""
    tokens = tuple(expected)
    if answer is not None:
        heard = expecting(heard, tokens, weight, answer.text(tokens))
    return heard.accepted and heard.confidence >= 0.5 and heard.tokens == tokens


def others(said: str) -> list[str]:
    if len(said) == 1:
        return [d for d in "123456789" if d != said]
    return [
        said[:n] + d + said[n + 1 :] for n in range(len(said)) for d in "0123456789" if d != said[n]
    ]


def shares(rows: list[dict[str, Any]], weight: float) -> dict[str, Any]:
    right = [r["right"][str(weight)] for r in rows if r["right"][str(weight)] is not None]
    wrong = sum(r["wrong"][str(weight)] for r in rows)
    trials = sum(r["trials"] for r in rows)
    return {
        "right": round(float(np.mean(right)), 4) if right else None,
        "wrong": round(wrong / trials, 4) if trials else None,
        "answers": len(rows),
        "wrong_trials": trials,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--takes", type=int, default=10, help="quantities per digit")
    parser.add_argument("--checks", type=int, default=40, help="check digits per speaker")
    parser.add_argument("--rate", type=int, nargs="+", default=[8000, 16000])
    parser.add_argument("--gain-db", type=float, default=-25.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--bound", type=float, default=0.005, help="wrong share allowed")
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
            answers = [("quantity", d, 150) for d in "0123456789" for _ in range(args.takes)]
            answers += [
                ("location", f"{rng.randrange(100):02d}", GAPS_MS[n % len(GAPS_MS)])
                for n in range(args.checks)
            ]
            for state, said, gap in answers:
                voice = HumanVoice(FSDD, speaker, rate, gap_ms=gap, gain_db=args.gain_db)
                audio = over_the_floor(voice.say(said, rng).samples, rate, noise)
                reading, answer = read_as_headset(speech, audio, rate, state, len(said))
                wrong_ones = others(said)
                rows.append(
                    {
                        "speaker": speaker,
                        "rate": rate,
                        "state": state,
                        "right": {  # a quantity of zero is never asked for
                            str(w): None if said == "0" else taken(reading, answer, said, w)
                            for w in WEIGHTS
                        },
                        "wrong": {
                            str(w): sum(taken(reading, answer, e, w) for e in wrong_ones)
                            for w in WEIGHTS
                        },
                        "trials": len(wrong_ones),
                    }
                )
            print(f"read: {speaker}, {rate} Hz", file=sys.stderr)
    folds: dict[str, Any] = {}
    for speaker in SPEAKERS:
        train = [[r for r in rows if r["speaker"] == s] for s in SPEAKERS if s != speaker]
        within = [w for w in WEIGHTS if all(shares(t, w)["wrong"] <= args.bound for t in train)]
        weight = max(within) if within else 1.0
        test = [r for r in rows if r["speaker"] == speaker]
        folds[speaker] = {
            "weight": weight,
            "engines_alone": shares(test, 1.0),
            "weighed": shares(test, weight),
            "by_state": {
                state: {
                    "engines_alone": shares([r for r in test if r["state"] == state], 1.0),
                    "weighed": shares([r for r in test if r["state"] == state], weight),
                }
                for state in ("quantity", "location")
            },
        }
    print(
        json.dumps(
            {
                "bench": "expected_answer",
                "settings": vars(args),
                "chosen": min(f["weight"] for f in folds.values()),
                "left_out": folds,
                "all_weights": {
                    str(w): {s: shares([r for r in rows if r["speaker"] == s], w) for s in SPEAKERS}
                    for w in WEIGHTS
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
