"""Speech read by workers found through Redis hears what the same speech in this process
does, with the operator's enrolled profile too; a reading nobody takes fails in time
instead of holding the answer, one the app no longer wants is skipped, one whose worker
dies is read by another, and a worker that dies is replaced."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import redis

from voice.audio import load
from voice.broker import BrokeredSpeech, Keys, ReadingRequest, _profile, pack_profile
from voice.enroll import Profile
from voice.grammar import named_grammar
from voice.stt import NotWanted
from voice.workers import LocalSpeech, SpeechSetup, SpeechUnavailable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def brokered(
    speech_setup: SpeechSetup, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokeredSpeech]:
    from tests.conftest import forget_keys

    prefix = f"wavepick-test-broker-{os.getpid()}"
    speech = BrokeredSpeech(
        speech_setup,
        redis_url,
        prefix,
        local_workers=1,
        received_profiles=tmp_path_factory.mktemp("received"),
        deadline_s=120,  # a replaced worker warms up before it reads
    )
    speech.warm_up()
    yield speech
    speech.close()
    forget_keys(redis_url, prefix)


def take(fsdd: Path, digit: str, speaker: str, n: int = 30) -> np.ndarray:
    return load(fsdd / f"{digit}_{speaker}_{n}.wav", 8000)


def test_a_worker_found_through_redis_hears_what_this_process_hears(
    brokered: BrokeredSpeech, speech_setup: SpeechSetup, fsdd: Path
) -> None:
    assert len(brokered.pids()) == 1 and os.getpid() not in brokered.pids()
    assert len(brokered.workers()) == 1  # it says it is there once warmed up
    here = LocalSpeech(speech_setup)
    grammar = named_grammar("check_digits").listening()
    right = 0
    for digit in "3849":
        for speaker in ("george", "lucas"):
            audio = take(fsdd, digit, speaker)
            there = brokered.recognize(audio, grammar, 8000, None)
            assert there == here.recognize(audio, grammar, 8000, None)
            right += there.accepted and there.tokens == (digit,)
    assert right >= 6  # of 8, as in this process


def enroll(path: Path, fsdd: Path, speaker: str, takes: range) -> Profile:
    profile = Profile.open(path, create=True)
    for digit in "0123456789":
        for n in takes:
            profile.add_file(digit, fsdd / f"{digit}_{speaker}_{n}.wav")
    return profile


def test_an_enrolled_profile_travels_to_the_worker_once_per_version(
    brokered: BrokeredSpeech, speech_setup: SpeechSetup, fsdd: Path, tmp_path: Path
) -> None:
    profile = enroll(tmp_path / "ana", fsdd, "jackson", range(3))
    here = LocalSpeech(speech_setup)
    grammar = named_grammar("digits")
    for digit in "27":
        audio = take(fsdd, digit, "jackson", 40)
        assert brokered.recognize(audio, grammar, 8000, profile.path) == here.recognize(
            audio, grammar, 8000, profile.path
        )
    digest = brokered.profiles.digest(profile.path)
    assert (brokered.received_profiles / digest / "manifest.json").is_file()
    assert pack_profile(brokered.received_profiles / digest) == pack_profile(profile.path)

    profile.add_file("4", fsdd / "4_jackson_3.wav")  # enrolled again: a new version
    assert brokered.profiles.digest(profile.path) != digest


def said_once() -> Iterator[bool]:
    yield True


def test_a_reading_no_longer_wanted_is_given_up_and_the_worker_reads_on(
    brokered: BrokeredSpeech, fsdd: Path
) -> None:
    asked = said_once()
    audio = np.concatenate([take(fsdd, digit, "lucas") for digit in "38493849"])
    with pytest.raises(NotWanted):
        brokered.recognize(
            audio, named_grammar("digits").listening(), 8000, None, lambda: next(asked, False)
        )
    heard = brokered.recognize(take(fsdd, "7", "george"), named_grammar("digit"), 8000, None)
    assert heard.tokens == ("7",)


def test_a_killed_worker_is_replaced_and_the_next_answer_read(
    brokered: BrokeredSpeech, fsdd: Path
) -> None:
    [before] = brokered.pids()
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and before in brokered.pids():
        time.sleep(0.05)
    heard = brokered.recognize(take(fsdd, "5", "lucas"), named_grammar("digit"), 8000, None)
    assert heard.tokens == ("5",)
    assert len(brokered.pids()) == 1 and before not in brokered.pids()


def test_a_reading_whose_worker_dies_is_put_back_for_another(
    speech_setup: SpeechSetup,
    redis_url: str,
    prefix: str,
    fsdd: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    speech = BrokeredSpeech(
        speech_setup, redis_url, prefix, local_workers=2, received_profiles=tmp_path, deadline_s=60
    )
    speech.warm_up()
    try:
        audio = np.concatenate([take(fsdd, digit, "lucas", 31) for digit in "3849"])
        reading = ThreadPoolExecutor(1).submit(
            speech.recognize, audio, named_grammar("digits"), 8000, None
        )
        deadline = time.monotonic() + 10
        while not (taken := [p.taken_by for p in speech._waiting.values() if p.taken_by]):
            assert time.monotonic() < deadline and not reading.done(), "no worker took it"
            time.sleep(0.005)
        os.kill(int(taken[0].rsplit(":", 1)[1]), signal.SIGKILL)  # mid-reading
        assert reading.result(timeout=30).tokens == tuple("3849")
        assert f"speech worker {taken[0]} went with a reading" in caplog.text
        assert len(speech.workers()) == 1  # the other one read it
    finally:
        speech.close()


def test_a_message_that_is_not_a_reading_is_dropped_and_the_worker_reads_on(
    brokered: BrokeredSpeech, fsdd: Path
) -> None:
    pids = brokered.pids()
    brokered.client.lpush(brokered.keys.readings, b"\x00\x00\x00\x05junk!", b"")
    heard = brokered.recognize(take(fsdd, "9", "lucas"), named_grammar("digit"), 8000, None)
    assert heard.tokens == ("9",) and brokered.pids() == pids
    assert brokered.client.llen(brokered.keys.readings) == 0


def test_with_no_worker_a_reading_fails_in_time_and_is_left_for_nobody(
    speech_setup: SpeechSetup, redis_url: str, prefix: str, fsdd: Path
) -> None:
    speech = BrokeredSpeech(speech_setup, redis_url, prefix, deadline_s=0.5)
    started = time.monotonic()
    with pytest.raises(SpeechUnavailable, match=r"within 0\.5 s \(0 workers running"):
        speech.recognize(take(fsdd, "1", "george"), named_grammar("digit"), 8000, None)
    assert time.monotonic() - started < 2
    client = redis.Redis.from_url(redis_url)
    [queued] = client.lrange(Keys(prefix).readings, 0, -1)
    assert client.exists(
        Keys(prefix).unwanted(ReadingRequest.decode(queued).id)
    )  # a worker skips it
    speech.close()


def test_an_unreachable_broker_is_speech_unavailable(speech_setup: SpeechSetup, fsdd: Path) -> None:
    speech = BrokeredSpeech(speech_setup, "redis://127.0.0.1:1/0", "wavepick-test")
    with pytest.raises(SpeechUnavailable, match="cannot be reached"):
        speech.recognize(take(fsdd, "1", "george"), named_grammar("digit"), 8000, None)
    speech.close()


def test_a_reading_travels_whole() -> None:
    audio = (np.random.default_rng(2).standard_normal(4000) * 2000).astype(np.int16)
    grammar = named_grammar("check_digits").listening()
    sent = ReadingRequest("r1", "wavepick:speech:replies:app", grammar, 16000, "ab" * 32, audio)
    received = ReadingRequest.decode(sent.encode())
    assert received.grammar == grammar and received.sample_rate == 16000
    assert received.reply_to == sent.reply_to
    assert received.profile == sent.profile and received.audio.dtype == np.int16
    assert np.array_equal(received.audio, audio) and received.audio.flags.writeable


def test_a_reading_names_a_profile_only_by_its_digest(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(ValueError, match="not a profile digest"):
        _profile(client, Keys("wavepick-test"), tmp_path / "received", "../../profiles/ana")
    assert _profile(client, Keys("wavepick-test"), tmp_path, "0" * 64) is None  # not shared
