"""The headset page in a real headless Chromium against a real server process and the real
pick dialog: sign in, the first prompt shown and played, keypad and command buttons sent as
`say` frames, push-to-talk and hands-free audio streamed as PCM and recognised, a dropped
socket resumed, and a pick confirmed by voice end to end (stock moved in the ledger)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from server.headset.protocol import MAX_AUDIO_FRAME, SAMPLE_RATES
from tests.browser import require_chromium, run_headset_page_check, run_voice_pick, speak_to_wav
from tests.conftest import ServerProcess
from tests.factories import PASSWORD, FloorLine, auth, pick_floor, stock_at

FIRST_PROMPT = "Assignment 1. 3 picks. Say ready."


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()


@pytest.fixture
def floor(database_url: str) -> list[FloorLine]:
    """LAX with one released assignment of three lines for `picker` (A-01-01 check digits
    57 quantity 3, A-01-02 31 / 2, A-01-03 84 / 4), seeded before the server starts."""
    return pick_floor(database_url)


@pytest.fixture
def headset_server(
    chromium: Path, floor: list[FloorLine], server_process: ServerProcess
) -> Iterator[ServerProcess]:
    """A real server with one user per role (`picker` signs in with the test password) and
    the pick floor."""
    yield server_process


def test_static_pages_are_served(client: TestClient) -> None:
    for page in ("/", "/headset.html", "/headset.js", "/headset-audio.js", "/headset.css"):
        response = client.get(page)
        assert response.status_code == 200, page
    assert 'href="headset.html"' in client.get("/").text


@pytest.mark.browser
@pytest.mark.slow
def test_headset_page(
    headset_server: ServerProcess, floor: list[FloorLine], tmp_path: Path
) -> None:
    ready_wav = speak_to_wav("ready", tmp_path / "ready.wav")
    screenshot = tmp_path / "headset-360x640.png"
    result = run_headset_page_check(
        headset_server.url, "picker", PASSWORD, ready_wav, screenshot=screenshot
    )

    assert result["page_errors"] == []
    assert result["console_errors"] == []
    hello = result["hello"]
    assert hello["protocol"] == 1
    assert hello["device"].startswith("web-")
    assert hello["locale"] == "en-US"
    assert hello["audio"] == {"encoding": "pcm_s16le", "sample_rate": 16000}
    assert result["welcome"]["sample_rate"] in SAMPLE_RATES
    assert result["welcome"]["operator"] == "picker"

    # Sign-on: the assignment, shown and played.
    first = result["first_prompt"]
    assert first["state"] == "assignment"
    assert first["text"] == FIRST_PROMPT
    assert result["prompt_shown"] == first["text"]
    assert result["prompt_end"] is not None
    assert result["prompt_audio_bytes"] > 0

    # "say again" from the command buttons repeats the prompt, unchanged.
    heard, prompt = result["say_again"]["heard"], result["say_again"]["prompt"]
    assert heard is not None, "no heard frame for 'say again'"
    assert (heard["source"], heard["accepted"]) == ("text", True)
    assert prompt is not None, "'say again' did not repeat the prompt"
    assert (prompt["state"], prompt["text"]) == ("assignment", FIRST_PROMPT)

    # Hands-free: "ready" recognised from the microphone starts the assignment.
    hands_free = result["hands_free"]
    assert hands_free["audio_bytes"] > 0
    assert hands_free["heard"] is not None, (
        f"'ready' was never accepted hands-free; heard {hands_free['speech_heard']}"
    )
    assert hands_free["heard"]["text"] == "ready"
    assert hands_free["prompt"] is not None
    assert hands_free["prompt"]["state"] == "location"
    assert hands_free["prompt"]["text"] == "Aisle 01. Slot 01."
    assert hands_free["prompt"]["display"]["location"] == floor[0].location

    # Push-to-talk: silent with the button up; held, "ready" is streamed and heard, and
    # (not being check digits) does not move the dialog on.
    assert result["ptt_idle_bytes"] == 0, "push-to-talk streamed with the button up"
    assert result["ptt_bytes"] > 0
    ptt = result["ptt"]
    assert ptt["heard"] is not None, "nothing heard from push-to-talk"
    assert ptt["heard"]["source"] == "speech"
    assert ptt["prompt"] is not None and ptt["prompt"]["state"] == "location"

    # Keypad: the check digits lead to the quantity.
    keypad = result["keypad"]
    assert keypad["heard"] is not None, "no heard frame for the keypad entry"
    assert keypad["heard"]["text"] == "57"
    assert (keypad["heard"]["source"], keypad["heard"]["accepted"]) == ("text", True)
    assert keypad["prompt"] is not None
    assert (keypad["prompt"]["state"], keypad["prompt"]["text"]) == ("quantity", "Pick 3.")
    assert result["says"] == ["say again", "57"]

    # Reconnect: a new socket, one hello, and the dialog resumes at the same prompt.
    reconnect = result["reconnect"]
    assert result["sockets"] == 2
    assert reconnect["hellos"] == 1
    assert reconnect["welcome"] is not None
    resumed = reconnect["resumed_prompt"]
    assert resumed is not None, "the dialog did not resume after reconnect"
    assert (resumed["state"], resumed["text"]) == ("quantity", "Pick 3.")

    assert result["bye_sent"] is True
    assert result["signed_out_state"] == "signed_out"
    assert result["error_frames"] == []
    assert 0 < result["max_sent_audio_frame"] <= MAX_AUDIO_FRAME
    assert result["max_sent_audio_frame"] % 2 == 0
    assert screenshot.exists()


@pytest.mark.browser
@pytest.mark.slow
def test_a_pick_is_confirmed_by_voice(
    headset_server: ServerProcess, floor: list[FloorLine], tmp_path: Path
) -> None:
    """The acceptance point: signed in on the headset page, the picker confirms a pick by
    voice (a fake microphone saying "three"), and the stock moves."""
    line, second = floor[0], floor[1]
    assert (line.check_digits, line.quantity) == ("57", 3)
    three_wav = speak_to_wav(
        "three", tmp_path / "three.wav", voice="en-us", trailing_silence_ms=1000
    )
    result = run_voice_pick(headset_server.url, "picker", PASSWORD, line.check_digits, three_wav)

    assert result["page_errors"] == []
    assert result["console_errors"] == []
    assert result["first_prompt"]["state"] == "assignment"
    assert result["ready"]["prompt"]["state"] == "location"
    assert result["check_digits"]["prompt"]["state"] == "quantity"
    assert result["check_digits"]["prompt"]["text"] == "Pick 3."
    # Push-to-talk with the button up: the microphone said nothing before the quantity.
    assert result["audio_bytes_before_listening"] == 0

    voice = result["voice"]
    heard = voice["heard"]
    assert heard is not None, f"'three' was never accepted; heard {voice['speech_heard']}"
    assert heard["source"] == "speech"
    assert heard["accepted"] is True
    assert heard["text"] == "three"
    assert heard["confidence"] > 0
    assert voice["prompt"] is not None, "no prompt after the confirmed pick"
    assert voice["prompt"]["state"] == "location"
    assert voice["prompt"]["display"]["location"] == second.location
    assert voice["prompt"]["text"] == "Aisle 01. Slot 02."
    assert result["error_frames"] == []

    with httpx.Client(base_url=headset_server.url, timeout=10) as client:
        assert stock_at(client, "LAX", line.sku, line.location) == 10 - line.quantity
        assert stock_at(client, "LAX", line.sku, "STAGE-1") == line.quantity
        assert stock_at(client, "LAX", second.sku, second.location) == 10
        response = client.get("/api/v1/reconcile", headers=auth(client, "supervisor"))
        assert response.status_code == 200, response.text
        reconcile = response.json()
        assert reconcile["consistent"] is True, reconcile
        assert reconcile["discrepancies"] == []
        assert reconcile["rows_checked"] > 0
