"""Speech in worker processes hears what the same speech in this process does, a
worker that dies is replaced without failing the answer it was reading, and workers end
with the app that started them, even when it is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, all_ended, process_running
from voice.audio import load
from voice.grammar import named_grammar
from voice.stt import NotWanted
from voice.workers import LocalSpeech, Occupancy, SpeechSetup, SpeechWorkers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workers(speech_setup: SpeechSetup) -> Iterator[SpeechWorkers]:
    pool = SpeechWorkers(speech_setup, processes=2)
    pool.warm_up()
    yield pool
    pool.close()


def takes(fsdd: Path, digit: str) -> list[np.ndarray]:
    return [load(fsdd / f"{digit}_{speaker}_30.wav", 8000) for speaker in ("george", "lucas")]


def test_warm_up_starts_every_worker(workers: SpeechWorkers) -> None:
    pids = workers.pids()
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_reading_takes_a_second_core_only_while_the_workers_are_mostly_idle(
    workers: SpeechWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One picker's reading runs its engines side by side (the other worker's core is
    idle); with every worker reading, or the workers busy most of the last second, each
    reading keeps to its own core."""
    now = [100.0]
    monkeypatch.setattr(workers, "busy", Occupancy(2, clock=lambda: now[0]))
    with workers._slot():
        assert workers._cores_to_spare()
        with workers._slot():
            assert not workers._cores_to_spare()  # no worker is free
    with workers._slot():  # one worker read all the last second, the other half of it
        with workers._slot():
            now[0] += 0.5
        now[0] += 0.5
        assert workers.busy.share() == pytest.approx(0.75)
        assert not workers._cores_to_spare()
    now[0] += 0.6  # the first reading's last 0.4 s are still in the last second
    assert workers.busy.share() == pytest.approx(0.2)
    with workers._slot():
        assert workers._cores_to_spare()


def test_workers_hear_what_this_process_hears(
    workers: SpeechWorkers, speech_setup: SpeechSetup, fsdd: Path
) -> None:
    here = LocalSpeech(speech_setup)
    grammar = named_grammar("check_digits").listening()  # every engine, PocketSphinx too
    right = 0
    for digit in "3849":
        for audio in takes(fsdd, digit):
            there = workers.recognize(audio, grammar, 8000, None)  # side by side
            assert there == here.recognize(audio, grammar, 8000, None)  # one after the other
            right += there.accepted and there.tokens == (digit,)
    assert right >= 6  # of 8: george's "three" here is read at a confidence under 0.5


def test_a_killed_worker_is_replaced_and_the_answer_still_read(
    workers: SpeechWorkers, fsdd: Path
) -> None:
    before = workers.pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and before[0] in workers.pids():
        time.sleep(0.05)  # until the pool has noticed
    heard = workers.recognize(takes(fsdd, "7")[0], named_grammar("digit"), 8000, None)
    assert heard.tokens == ("7",)
    assert before[0] not in workers.pids()


def said_once() -> Callable[[], bool]:
    """A `wanted` that says yes once (as the reading is sent) and no from then on: the
    picker spoke on while it was being read."""
    asked = iter([True])
    return lambda: next(asked, False)


def test_a_reading_no_longer_wanted_is_stopped_in_its_worker(
    workers: SpeechWorkers, fsdd: Path
) -> None:
    # eight digits: Whisper alone takes longer than the app waits before asking again
    audio = np.concatenate([take for digit in "3849" for take in takes(fsdd, digit)])
    grammar = named_grammar("digits").listening()
    with pytest.raises(NotWanted):
        workers.recognize(audio, grammar, 8000, None, said_once())
    heard = workers.recognize(takes(fsdd, "7")[0], named_grammar("digit"), 8000, None)
    assert heard.tokens == ("7",)  # the worker reads on after a stopped reading


def test_a_reading_in_this_process_stops_before_the_next_engine(speech_setup: SpeechSetup) -> None:
    asked: list[bool] = []

    def wanted() -> bool:
        asked.append(len(asked) < 2)  # yes as it is sent and to the first engine
        return asked[-1]

    here = LocalSpeech(speech_setup)
    audio = (np.random.default_rng(1).standard_normal(8000) * 3000).astype(np.int16)
    with pytest.raises(NotWanted):
        here.recognize(audio, named_grammar("check_digits").listening(), 8000, None, wanted)
    assert asked == [True, True, False]


APP = """
import sys, time
from pathlib import Path
from voice.workers import SpeechSetup, SpeechWorkers

if __name__ == "__main__":
    pool = SpeechWorkers(SpeechSetup(synthetic_dir=Path(sys.argv[1]), locales=("en-US",)), 2)
    pool.warm_up()
    print(*pool.pids(), flush=True)
    time.sleep(600)
"""


def test_workers_end_when_their_app_is_killed(speech_setup: SpeechSetup, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(APP)
    app = subprocess.Popen(
        [sys.executable, str(script), str(speech_setup.synthetic_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert app.stdout is not None
        pids = [int(pid) for pid in app.stdout.readline().split()]
        assert len(pids) == 2 and all(process_running(pid) for pid in pids)
        app.kill()
        app.wait()
        assert all_ended(pids)
    finally:
        app.kill()
