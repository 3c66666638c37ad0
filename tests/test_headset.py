"""The headset end to end: a real server process, a client speaking protocol v1 with real
audio (espeak-ng and the human digit recordings in ../shared/speech), a whole assignment
picked — wrong check digits, "say again", a short, a reconnect in the middle, a duplicated
confirmation — and afterwards stock and ledger exactly right (SQLite and PostgreSQL).

Recognition accuracy is measured in bench/recognition.py; here an answer that is not
understood is answered with a re-prompt (as the dialog promises) and the client says it
again with another take, as a picker would.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from server.headset.client import Exchange, HeadsetClient
from tests.conftest import FSDD, ServerProcess, require_service
from tests.factories import FloorLine, auth, pick_floor, stock_at
from voice.audio import load

RATE = 16000
SPEAKERS = ("jackson", "george", "lucas")


def espeak(text: str, tmp: Path, voice: str = "en-us", speed: int = 150) -> np.ndarray:
    binary = shutil.which("espeak-ng")
    if binary is None:
        require_service("espeak-ng", "not installed")
    path = tmp / f"{text.replace(' ', '_')}-{voice.replace('+', '_')}-{speed}.wav"
    subprocess.run([binary, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return load(path, RATE)


def human_digits(digits: str, take: int) -> np.ndarray:
    """A digit string spoken by people: one recording per digit, with short pauses."""
    if not FSDD.is_dir():
        require_service("the human recordings of fsdd-dev", f"not found at {FSDD}")
    gap = np.zeros(RATE * 120 // 1000, np.int16)
    parts = []
    for n, digit in enumerate(digits):
        speaker = SPEAKERS[(take + n) % len(SPEAKERS)]
        parts += [load(FSDD / f"{digit}_{speaker}_{(take * 7 + n) % 50}.wav", RATE), gap]
    return np.concatenate(parts)


async def say_until(client: HeadsetClient, takes: list[np.ndarray], state: str) -> Exchange:
    """Speak takes of one answer until the dialog takes it and is in `state` (a picker
    repeats what the headset did not understand; the dialog re-prompts and stays put)."""
    before = client.prompt["state"] if client.prompt else None
    turn = Exchange()
    for audio in takes:
        turn = await client.speak(audio)
        assert turn.heard is not None and turn.heard["source"] == "speech"
        assert turn.prompt is not None, turn
        if turn.heard["accepted"] and turn.prompt["state"] == state:
            return turn
        assert turn.prompt["state"] == before, "an answer not taken must change nothing"
    pytest.fail(f"none of {len(takes)} takes was taken in state {before}: {turn}")


def spoken(text: str, tmp: Path) -> list[np.ndarray]:
    """Takes of a command word by several synthetic voices and speeds."""
    return [
        espeak(text, tmp, voice, speed)
        for voice in ("en-us", "en", "en-us+m3", "en-us+f2")
        for speed in (150, 125)
    ]


@pytest.fixture
def floor(database_url: str) -> list[FloorLine]:
    return pick_floor(database_url)


@pytest.fixture
def headset_url(floor: list[FloorLine], server_process: ServerProcess) -> Iterator[str]:
    yield server_process.url.replace("http://", "ws://") + "/ws/headset"


def test_a_whole_assignment_by_voice(
    floor: list[FloorLine], server_process: ServerProcess, headset_url: str, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server_process.url, timeout=30) as http:
        token = auth(http, "picker")["Authorization"].split()[1]
        asyncio.run(_pick_the_assignment(headset_url, token, floor, tmp_path))
        _check_the_books(http, floor)


async def _pick_the_assignment(url: str, token: str, floor: list[FloorLine], tmp: Path) -> None:
    first, second, third = floor
    headset = HeadsetClient(url, token)
    start = await headset.connect()
    assert headset.welcome and headset.welcome["operator"] == "picker"
    assert start.prompt and start.prompt["state"] == "assignment"
    assert start.audio_bytes > 0

    turn = await say_until(headset, spoken("ready", tmp), "location")
    assert turn.prompt and turn.prompt["display"]["location"] == first.location

    wrong = await headset.say("12")  # typed and spoken answers take the same path
    assert wrong.prompt and wrong.prompt["state"] == "location"
    assert "Wrong check digits" in wrong.prompt["text"]
    assert first.check_digits not in wrong.prompt["text"].replace(" ", "")
    assert "five" not in wrong.prompt["text"].lower()

    repeat = await say_until(headset, spoken("say again", tmp), "location")
    assert repeat.prompt and repeat.prompt["text"].startswith("Aisle")

    digits = [human_digits(first.check_digits, take) for take in range(10)]
    turn = await say_until(headset, digits, "quantity")
    assert turn.prompt and turn.prompt["display"]["quantity"] == first.quantity

    quantity = [human_digits(str(first.quantity), take) for take in range(10)]
    turn = await say_until(headset, quantity, "location")
    assert turn.prompt and turn.prompt["display"]["location"] == second.location

    await headset.say(second.check_digits)
    turn = await say_until(headset, spoken("short", tmp), "short")
    picked = [human_digits("1", take) for take in range(10)]
    turn = await say_until(headset, picked, "location")
    assert turn.prompt and turn.prompt["display"]["location"] == third.location

    await headset.drop()  # the picker walks out of Wi-Fi coverage
    headset = HeadsetClient(url, token)
    resumed = await headset.connect()
    assert resumed.prompt and resumed.prompt["state"] == "location"
    assert resumed.prompt["display"]["location"] == third.location

    await headset.say(third.check_digits)
    answer = str(third.quantity)
    await headset.send_json({"type": "say", "text": answer})  # the same answer, twice
    confirmed = await headset.say(answer)
    assert confirmed.prompt and confirmed.prompt["state"] in {"deliver", "quantity"}
    while headset.prompt and headset.prompt["state"] != "deliver":
        await headset.say("say again")
    delivered = await headset.say("ready")
    assert delivered.prompt and delivered.prompt["state"] == "no_work"
    await headset.say("sign off")
    bye = await headset.say("yes")
    assert bye.closed and headset.close_code == 1000


def _check_the_books(http: httpx.Client, floor: list[FloorLine]) -> None:
    first, second, third = floor
    picked = {first.sku: first.quantity, second.sku: 1, third.sku: third.quantity}
    for line in floor:
        assert stock_at(http, "LAX", line.sku, line.location) == 10 - picked[line.sku]
        assert stock_at(http, "LAX", line.sku, "STAGE-1") == picked[line.sku]
    supervisor = auth(http, "supervisor")
    ledger = http.get(
        "/api/v1/movements", params={"warehouse": "LAX", "limit": 100}, headers=supervisor
    ).json()["items"]
    assert sorted((m["sku"], m["quantity"]) for m in ledger if m["kind"] == "pick") == sorted(
        picked.items()
    )
    assert http.get("/api/v1/reconcile", headers=supervisor).json()["consistent"] is True
    exceptions = http.get("/api/v1/exceptions", headers=supervisor).json()["items"]
    assert [(e["kind"], e["quantity"]) for e in exceptions] == [("short", 1)]


def test_after_warm_up_no_word_is_synthesised_while_a_picker_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import voice.stt.synthetic
    from server.headset.speech import make_speech_services
    from tests.conftest import make_settings
    from voice.grammar import named_grammar
    from voice.workers import LocalSpeech

    speech = make_speech_services(make_settings("sqlite://", tmp_path))
    speech.warm_up()
    local = speech.speech
    assert isinstance(local, LocalSpeech)

    def synthesising(*_: object) -> None:
        raise AssertionError("a word was synthesised after the warm-up")

    monkeypatch.setattr(voice.stt.synthetic, "synthetic_takes", synthesising)
    for locale in ("en-US", "zh-CN"):
        for grammar in ("digit", "check_digits", "commands"):
            assert local.engines.synthetic(named_grammar(grammar, locale)) is not None
    heard = speech.recognize(human_digits("7", 30), named_grammar("digit"), RATE, "nobody")
    assert heard.tokens == ("7",)
