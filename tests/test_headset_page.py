"""The headset page in a real headless Chromium against a real server process: sign in,
the first prompt shown and played, keypad and command buttons sent as `say` frames,
push-to-talk and hands-free audio streamed as PCM, and a dropped socket resumed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.headset.protocol import MAX_AUDIO_FRAME, SAMPLE_RATES
from tests.browser import require_chromium, run_headset_page_check, speak_to_wav
from tests.conftest import ServerProcess
from tests.factories import PASSWORD


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()


@pytest.fixture
def ready_wav(tmp_path: Path) -> Path:
    return speak_to_wav("ready", tmp_path / "ready.wav")


@pytest.fixture
def headset_server(chromium: Path, server_process: ServerProcess) -> Iterator[ServerProcess]:
    """A real server with one user per role (`picker` signs in with the test password)."""
    yield server_process


def test_static_pages_are_served(client: TestClient) -> None:
    for page in ("/", "/headset.html", "/headset.js", "/headset-audio.js", "/headset.css"):
        response = client.get(page)
        assert response.status_code == 200, page
    assert 'href="headset.html"' in client.get("/").text


@pytest.mark.browser
@pytest.mark.slow
def test_headset_page(headset_server: ServerProcess, ready_wav: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "headset-360x640.png"
    result = run_headset_page_check(
        headset_server.url, "picker", PASSWORD, ready_wav, screenshot=screenshot
    )

    assert result["page_errors"] == []
    hello = result["hello"]
    assert hello["protocol"] == 1
    assert hello["device"].startswith("web-")
    assert hello["locale"] == "en-US"
    assert hello["audio"] == {"encoding": "pcm_s16le", "sample_rate": 16000}
    assert result["welcome"]["sample_rate"] in SAMPLE_RATES

    first = result["first_prompt"]
    assert first["text"]
    assert result["prompt_shown"] == first["text"]
    assert result["prompt_end"] is not None
    assert result["prompt_audio_bytes"] > 0

    assert result["says"] == ["57", "say again"]
    assert result["keypad_heard"] is not None, "no heard frame for the keypad entry"
    assert result["keypad_heard"]["source"] != "speech"
    assert result["command_heard"] is not None, "no heard frame for 'say again'"
    assert result["command_heard"]["accepted"] is True
    assert result["reprompt"] is not None, "'say again' did not repeat the prompt"

    assert result["ptt_idle_bytes"] == 0, "push-to-talk streamed with the button up"
    assert result["ptt_bytes"] > 0
    assert result["hands_free_bytes"] > 0
    assert result["speech_heard"] is not None, "nothing heard from the hands-free microphone"

    reconnect = result["reconnect"]
    assert reconnect["hellos"] == 1
    assert reconnect["welcome"] is not None
    assert reconnect["resumed_prompt"] is not None, "the dialog did not resume after reconnect"

    assert result["bye_sent"] is True
    assert result["signed_out_state"] == "signed_out"
    assert all(f["code"] != "frame_too_large" for f in result["error_frames"])
    assert 0 < result["max_sent_audio_frame"] <= MAX_AUDIO_FRAME
    assert result["max_sent_audio_frame"] % 2 == 0
    assert screenshot.exists()
