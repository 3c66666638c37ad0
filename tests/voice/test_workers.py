"""Speech in worker processes hears what the same speech in this process does, a
worker that dies is replaced without failing the answer it was reading, and workers end
with the app that started them, even when it is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, all_ended, process_running, warm_speech_cache
from voice.audio import load
from voice.grammar import named_grammar
from voice.workers import LocalSpeech, SpeechSetup, SpeechWorkers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> SpeechSetup:
    warm_speech_cache()  # the words in synthetic voices, computed once for the run
    return SpeechSetup(
        synthetic_dir=Path(os.environ["WAVEPICK_SPEECH_CACHE_DIR"]),
        prompt_cache_dir=tmp_path_factory.mktemp("prompts"),
        locales=("en-US",),
    )


@pytest.fixture(scope="module")
def workers(setup: SpeechSetup) -> Iterator[SpeechWorkers]:
    pool = SpeechWorkers(setup, processes=2)
    pool.warm_up()
    yield pool
    pool.close()


def takes(fsdd: Path, digit: str) -> list[np.ndarray]:
    return [load(fsdd / f"{digit}_{speaker}_30.wav", 8000) for speaker in ("george", "lucas")]


def test_warm_up_starts_every_worker(workers: SpeechWorkers) -> None:
    pids = workers.pids()
    assert len(pids) == 2 and os.getpid() not in pids


def test_workers_hear_what_this_process_hears(
    workers: SpeechWorkers, setup: SpeechSetup, fsdd: Path
) -> None:
    here = LocalSpeech(setup)
    grammar = named_grammar("check_digits").listening()  # every engine, PocketSphinx too
    right = 0
    for digit in "3849":
        for audio in takes(fsdd, digit):
            there = workers.recognize(audio, grammar, 8000, None)
            assert there == here.recognize(audio, grammar, 8000, None)
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


def test_workers_end_when_their_app_is_killed(setup: SpeechSetup, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(APP)
    app = subprocess.Popen(
        [sys.executable, str(script), str(setup.synthetic_dir)],
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
