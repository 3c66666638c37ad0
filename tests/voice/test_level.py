"""Speech level: quiet and loud voices are heard alike."""

from pathlib import Path

import numpy as np

from voice.audio import load
from voice.level import MAX_GAIN_DB, TARGET_DBFS, normalize, speech_level_dbfs

RATE = 8000


def test_quiet_and_loud_takes_come_out_at_one_level(fsdd: Path) -> None:
    take = load(fsdd / "4_lucas_30.wav", RATE)
    for gain_db in (-40, -25, -10, 0, 6):
        scaled = np.clip(np.round(take * 10 ** (gain_db / 20)), -32768, 32767).astype(np.int16)
        level = speech_level_dbfs(normalize(scaled, RATE), RATE)
        assert level is not None and abs(level - TARGET_DBFS) < 2.5, gain_db


def test_leading_silence_does_not_make_speech_louder(fsdd: Path) -> None:
    take = load(fsdd / "4_lucas_30.wav", RATE)
    padded = np.concatenate([np.zeros(RATE * 2, np.int16), take, np.zeros(RATE, np.int16)])
    assert speech_level_dbfs(padded, RATE) == speech_level_dbfs(take, RATE)


def test_normalizing_twice_changes_nothing_the_second_time(fsdd: Path) -> None:
    once = normalize(load(fsdd / "8_george_3.wav", RATE) // 50, RATE)
    assert np.array_equal(normalize(once, RATE), once)


def test_the_gain_is_bounded_and_digital_silence_stays_silent() -> None:
    t = np.arange(RATE) / RATE
    faint = np.round(np.sin(2 * np.pi * 440 * t) * 32768 * 10 ** (-62 / 20)).astype(np.int16)
    level = speech_level_dbfs(normalize(faint, RATE), RATE)
    assert level is not None and abs(level - (-62 - 3 + MAX_GAIN_DB)) < 1.0
    assert not normalize(np.zeros(RATE, np.int16), RATE).any()
