"""The headset page in a real headless Chromium against a real server process and the real
pick dialog: sign in, the first prompt shown and played, keypad and command buttons sent as
`say` frames, push-to-talk and hands-free audio streamed as PCM and recognised, a dropped
socket resumed, a pick confirmed by voice end to end (stock moved in the ledger), the same
listening with the audio on WebRTC, and every command button in every dialog state that
listens for it, in en-US and in zh-CN (with WebRTC audio up, as the page has it where it
can)."""

from __future__ import annotations

import wave
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server.headset.protocol import MAX_AUDIO_FRAME, SAMPLE_RATES
from tests.browser import (
    HeadsetPage,
    headset_page,
    require_chromium,
    run_headset_page_check,
    run_voice_pick,
    run_webrtc_audio_check,
    speak_to_wav,
)
from tests.conftest import ServerProcess
from tests.factories import (
    PASSWORD,
    FloorLine,
    auth,
    pick_floor,
    release_next_order,
    stock_at,
)
from voice.dialog.pick import PICK_WORKFLOW
from voice.dialog.prompts import load_prompts
from voice.grammar import COMMANDS

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
    assert result["says"] == ["say_again", "57"]  # buttons send canonical tokens

    # Reconnect: a new socket, one hello, and the dialog resumes at the same prompt.
    reconnect = result["reconnect"]
    assert result["sockets"] == 2
    # Each socket opened with its own one-use ticket; the bearer token never in a URL.
    urls = result["socket_urls"]
    assert all("?ticket=" in url and "token=" not in url for url in urls), urls
    assert len(set(urls)) == len(urls)
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


@pytest.fixture
def sqlite_server(chromium: Path, sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """One real server on SQLite with the pick floor (WebRTC does not depend on the
    database)."""
    pick_floor(sqlite_url)
    server = ServerProcess(sqlite_url, tmp_path)
    yield server
    server.stop()


@pytest.mark.browser
@pytest.mark.slow
def test_the_headset_page_listens_over_webrtc_audio(
    sqlite_server: ServerProcess, tmp_path: Path
) -> None:
    """Where the network allows, the page moves its audio to WebRTC: it offers after the
    welcome, the server answers and says the connection is up, and from then on "ready"
    said hands-free is heard from the Opus track and the prompts are played from it; the
    socket carries no audio either way. Push-to-talk sends nothing with the button up."""
    # "ready" every 3.5 s: while the server loads its models for the first answer, the
    # answers waiting stay fewer than the queue holds
    ready_wav = speak_to_wav("ready", tmp_path / "ready.wav", trailing_silence_ms=3000)
    result = run_webrtc_audio_check(sqlite_server.url, "picker", PASSWORD, ready_wav)

    assert result["page_errors"] == []
    assert result["console_errors"] == []
    assert result["error_frames"] == []
    assert len(result["offers"]) == 1 and "m=audio" in result["offers"][0]["sdp"]
    assert len(result["answers"]) == 1
    assert result["states"] == ["connected"]

    hands_free = result["hands_free"]
    assert hands_free["heard"] is not None, (
        f"'ready' was never accepted over WebRTC; heard {hands_free['speech_heard']}"
    )
    assert (hands_free["heard"]["text"], hands_free["heard"]["source"]) == ("ready", "speech")
    assert hands_free["prompt"] is not None and hands_free["prompt"]["state"] == "location"
    assert result["ptt_idle_heard"] == [], "push-to-talk was heard with the button up"
    ptt = result["ptt"]
    assert ptt["heard"] is not None, "nothing heard from push-to-talk over WebRTC"
    assert ptt["prompt"] is not None and ptt["prompt"]["state"] == "location"

    assert result["socket_audio_sent"] == 0, "the microphone went on the socket"
    assert result["socket_audio_received"] == 0, "prompt audio came on the socket"
    rtc = result["hook"]["rtc"]
    assert result["hook"]["audioPath"] == "webrtc", result["hook"]
    assert rtc["bytesSent"] > 0 and rtc["bytesReceived"] > 0, rtc
    assert rtc["audioEnergy"] > 0, f"no prompt was heard from the track: {rtc}"
    assert result["hook"]["micBytesSent"] == 0
    assert result["bye_sent"] is True


# -- every command button, in both locales ----------------------------------------------

# Two orders of four lines, one assignment per locale; the fourth line of each is a
# serialised SKU (one unit), so the walk reaches the "serial" state too.
COMMAND_PLAN = (
    ("A-01-01", "57", "CASE", 2),
    ("A-01-02", "31", "CABLE", 3),
    ("A-01-03", "84", "LAMP", 2),
    ("A-01-04", "26", "PHONE", 1),
    ("A-01-05", "63", "MUG", 2),
    ("A-01-06", "48", "BAG", 3),
    ("A-01-07", "92", "PEN", 2),
    ("A-01-08", "15", "WATCH", 1),
)
COMMAND_SERIALS: dict[str, tuple[str, ...]] = {
    "PHONE": ("PH-1000-0041", "PH-1000-0042"),
    "WATCH": ("WA-2000-0081", "WA-2000-0082"),
}
SIGNED_OFF = {"en-US": "You are signed off.", "zh-CN": "您已退出。"}


@pytest.fixture
def command_server(chromium: Path, sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """One real server on SQLite (the buttons do not depend on the database) with the
    two-order floor, HS-1 released."""
    pick_floor(sqlite_url, COMMAND_PLAN, serials=COMMAND_SERIALS, orders=2)
    server = ServerProcess(sqlite_url, tmp_path)
    yield server
    server.stop()


class ButtonWalk:
    """Walks the pick dialog of one assignment with the command buttons (and the keypad for
    digits) in one locale, checking every answer: heard as sent and accepted, shown with
    the button's label, and followed by the prompt of the expected state."""

    def __init__(self, headset: HeadsetPage, locale: str, first: dict[str, Any]) -> None:
        self.headset = headset
        self.locale = locale
        self.prompts = load_prompts("pick", locale)
        self.labels = headset.command_buttons()
        self.prompt = first
        self.pressed: dict[str, set[str]] = {}  # state -> command buttons accepted there
        self.lines = {loc: (digits, sku, qty) for loc, digits, sku, qty in COMMAND_PLAN}

    @property
    def state(self) -> str:
        return str(self.prompt["state"])

    def _check(
        self, what: str, turn: dict[str, Any], state: str | tuple[str, ...], lead: str | None
    ) -> None:
        heard, prompt = turn["heard"], turn["prompt"]
        where = f"{self.locale}: {what!r} in {self.state!r}"
        assert heard is not None, f"{where}: no heard frame"
        assert (heard["text"], heard["source"]) == (what, "text"), where
        assert heard["accepted"] is True, f"{where}: not understood ({prompt})"
        assert prompt is not None, f"{where}: no prompt after it"
        states = (state,) if isinstance(state, str) else state
        assert prompt["state"] in states, f"{where}: went to {prompt['state']!r}: {prompt}"
        if lead is not None:
            text = self.prompts.render(lead, {})
            assert prompt["text"].startswith(text), f"{where}: {prompt['text']!r}"
        self.prompt = prompt

    def press(self, token: str, state: str | None = None, lead: str | None = None) -> None:
        """Press the button for `token`; the dialog goes to `state` (default: stays)."""
        before = self.state
        turn = self.headset.command(token)
        self._check(token, turn, state or before, lead)
        if not PICK_WORKFLOW.state(self.state).final:  # signed off, the page is signed out
            shown = self.headset.page.text_content("#heard") or ""
            assert self.labels[token] in shown, f"{self.locale}: {token!r} shown as {shown!r}"
        self.pressed.setdefault(before, set()).add(token)

    def keypad(self, digits: str, state: str | tuple[str, ...]) -> None:
        self._check(digits, self.headset.keypad(digits), state, None)

    def stays(self, *tokens: str) -> None:
        for token in tokens:
            self.press(token)

    def sign_off_and_stay(self, answer: str = "no") -> None:
        """Say "sign off", then change your mind: back where you were."""
        state = self.state
        self.press("sign_off", "sign_off")
        self.press(answer, state)

    def line(self) -> tuple[str, str, int]:
        """(check digits, SKU, quantity) of the line the location prompt is at."""
        check_digits, sku, quantity = self.lines[self.prompt["display"]["location"]]
        return check_digits, sku, quantity

    def pick(self) -> None:
        """At a location: the check digits, the quantity, the serial if any; then the next
        line, or the delivery after the last."""
        check_digits, sku, quantity = self.line()
        self.keypad(check_digits, "quantity")
        serials = COMMAND_SERIALS.get(sku)
        if serials is not None:
            self.keypad(str(quantity), "serial")
        self.keypad(serials[0][-4:] if serials else str(quantity), ("location", "deliver"))

    def walk(self) -> None:
        """Every word of every state, from the assignment to signed off."""
        assert self.state == "assignment"
        self.stays("say_again", "help", "how_much_more")
        self.press("call_supervisor", lead="supervisor_called")
        self.press("sign_off", "sign_off")
        self.stays("say_again", "help")
        self.press("no", "assignment")
        self.sign_off_and_stay("cancel")
        self.press("ready", "location")

        # line 1: everything a location listens for; skipped (it comes back at the end)
        self.stays("say_again", "help", "location", "description", "how_much_more")
        self.press("call_supervisor", lead="supervisor_called")
        self.sign_off_and_stay()
        self.press("skip_slot", "location", lead="slot_skipped")

        # line 2: everything the quantity listens for, the short state, then a short
        check_digits, _sku, _quantity = self.line()
        self.keypad(check_digits, "quantity")
        self.stays("say_again", "help", "location", "description", "how_much_more")
        self.press("call_supervisor", lead="supervisor_called")
        self.press("damaged", lead="damage_reported")
        self.sign_off_and_stay()
        self.press("short", "short")
        self.stays("say_again", "help")
        self.press("call_supervisor", lead="supervisor_called")
        self.press("cancel", "quantity")
        self.press("short", "short")
        self.keypad("1", "location")

        # line 3: skipped at the quantity
        check_digits, _sku, _quantity = self.line()
        self.keypad(check_digits, "quantity")
        self.press("skip_slot", "location", lead="slot_skipped")

        # line 4 (serialised): everything the serial state listens for
        check_digits, sku, quantity = self.line()
        assert sku in COMMAND_SERIALS
        self.keypad(check_digits, "quantity")
        self.keypad(str(quantity), "serial")
        self.stays("say_again", "help", "location", "description", "how_much_more")
        self.press("call_supervisor", lead="supervisor_called")
        self.sign_off_and_stay()
        self.press("short", "short")
        self.press("cancel", "serial")
        self.press("cancel", "quantity", lead="serials_dropped")
        self.keypad(str(quantity), "serial")
        self.press("damaged", "quantity", lead="damage_reported")
        self.keypad(str(quantity), "serial")
        self.press("skip_slot", "location", lead="slot_skipped")

        # the skipped lines come back; picked, the assignment is complete
        while self.state == "location":
            self.pick()
        assert self.state == "deliver", self.prompt
        self.stays("say_again", "help", "location")
        self.press("call_supervisor", lead="supervisor_called")
        self.sign_off_and_stay()
        self.press("ready", "no_work")
        self.stays("say_again", "help", "ready")
        self.sign_off_and_stay()
        self.press("sign_off", "sign_off")
        self.press("yes", "signed_off")


@pytest.mark.browser
@pytest.mark.slow
def test_every_command_button_in_both_locales(
    command_server: ServerProcess, sqlite_url: str, tmp_path: Path
) -> None:
    """Each command button the page shows, in each dialog state that listens for it, in
    en-US and then zh-CN: heard as sent, accepted, and the dialog does what the word
    means. "Yes" to "Sign off?" signs the page out."""
    silence = tmp_path / "silence.wav"  # the microphone: nothing is said
    with wave.open(str(silence), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(32000))
    result: dict[str, Any] = {}
    walks: dict[str, ButtonWalk] = {}
    with headset_page(command_server.url, silence, result, timeout=30) as headset:
        for locale in ("en-US", "zh-CN"):
            if locale != "en-US":
                release_next_order(sqlite_url)  # the next assignment, for this locale
            first = headset.sign_in(command_server.url, "picker", PASSWORD, locale)
            headset.mode("ptt")  # the microphone sends nothing
            assert headset.hook["state"] == "ready"
            assert [f["locale"] for f in headset.frames.sent if f["type"] == "hello"][-1] == locale
            walk = walks[locale] = ButtonWalk(headset, locale, first)
            assert list(walk.labels) == list(COMMANDS), "a button for every command word"
            walk.walk()
            # the dialog ended: the page signs out and says so, and does not reconnect
            sockets = headset.frames.sockets
            headset.page.wait_for_selector("#signin-view:not([hidden])", timeout=10_000)
            assert headset.page.text_content("#signin-message") == SIGNED_OFF[locale]
            headset.page.wait_for_timeout(1000)
            assert headset.frames.sockets == sockets
            assert headset.hook["state"] == "signed_out"

    assert result["page_errors"] == []
    assert result["console_errors"] == []
    assert result["error_frames"] == []
    assert walks["zh-CN"].labels["say_again"] == "再说一遍"
    for locale, walk in walks.items():
        for state in PICK_WORKFLOW.states:
            missed = set(state.words) - walk.pressed.get(state.name, set())
            assert not missed, f"{locale}: buttons never pressed in {state.name!r}: {missed}"

    # What the buttons opened, per assignment (one per locale): "call supervisor" in each of
    # the six states that listen for it (at the delivery too), "damaged" twice, one short.
    with httpx.Client(base_url=command_server.url, timeout=10) as client:
        response = client.get(
            "/api/v1/exceptions", params={"limit": 100}, headers=auth(client, "supervisor")
        )
        assert response.status_code == 200, response.text
    opened: dict[int, Counter[str]] = {}
    for exception in response.json()["items"]:
        opened.setdefault(exception["assignment"], Counter())[exception["kind"]] += 1
    assert list(opened.values()) == [Counter(help=6, damage=2, short=1)] * 2, opened
