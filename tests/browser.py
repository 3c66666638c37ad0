"""Real headless Chromium (Debian `chromium`, driven by Playwright) for the browser pages,
with a fake microphone fed from a WAV file (Chromium loops it).

`HeadsetPage` signs in on the headset page of a running server and drives its inputs (the
keypad, the command buttons, push-to-talk, hands-free) while recording every frame on the
page's /ws/headset sockets. `run_headset_page_check` goes through all of them against the
real pick dialog with the audio on the socket; `run_voice_pick` confirms the first pick of
an assignment by voice; `run_webrtc_audio_check` listens with the audio on WebRTC. Each
returns what it saw, so a test can assert on it and a person can read it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("WAVEPICK_CHROMIUM", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Records every WebSocket the page opens, so a check can drop the connection like a network
# would and watch the page reconnect. The page itself knows nothing about this.
_RECORD_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__wavepickSockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__wavepickSockets.push(this); }
  };
})();
"""

Frame = dict[str, Any]


def require_chromium() -> Path:
    """The Chromium binary and Playwright; skip when missing, fail when CI=true promised them."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} not found (apt-get install chromium, or set WAVEPICK_CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError as exc:
            problem = f"the playwright package is missing: {exc}"
    if problem:
        if IN_CI:
            pytest.fail(f"Chromium is required when CI=true: {problem}")
        pytest.skip(f"Chromium not available: {problem}")
    return CHROMIUM


def speak_to_wav(
    text: str,
    path: Path,
    *,
    trailing_silence_ms: int = 700,
    voice: str | None = None,
    speed: int | None = None,
) -> Path:
    """A WAV of `text` spoken by espeak-ng (optionally with `voice`, at `speed` words a
    minute), with some silence after it so a looping fake microphone leaves gaps for the
    server's endpointer."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        if IN_CI:
            pytest.fail("espeak-ng is required when CI=true")
        pytest.skip("espeak-ng not available")
    options = [*(["-v", voice] if voice else []), *(["-s", str(speed)] if speed else [])]
    subprocess.run([espeak, *options, "-w", str(path), text], check=True, capture_output=True)
    if trailing_silence_ms:
        import numpy as np
        import soundfile as sf

        samples, rate = sf.read(path, dtype="int16")
        pad = np.zeros(rate * trailing_silence_ms // 1000, dtype="int16")
        sf.write(path, np.concatenate([samples, pad]), rate, subtype="PCM_16")
    return path


def chromium_args(wav_path: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav_path}",
        "--autoplay-policy=no-user-gesture-required",
    ]


class _Frames:
    """Frames on the page's /ws/headset sockets, in order, both directions."""

    def __init__(self) -> None:
        self.sent: list[Frame] = []
        self.received: list[Frame] = []
        self.sent_audio_bytes = 0
        self.max_sent_audio_frame = 0
        self.received_audio_bytes = 0
        self.sockets = 0
        self.urls: list[str] = []

    def attach(self, ws: Any) -> None:
        if "/ws/headset" not in ws.url:
            return
        self.sockets += 1
        self.urls.append(ws.url)
        ws.on("framesent", self._on_sent)
        ws.on("framereceived", self._on_received)

    def _on_sent(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.sent_audio_bytes += len(payload)
            self.max_sent_audio_frame = max(self.max_sent_audio_frame, len(payload))
        else:
            self.sent.append(json.loads(payload))

    def _on_received(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.received_audio_bytes += len(payload)
        else:
            self.received.append(json.loads(payload))

    def received_of(self, kind: str, after: int = 0) -> list[Frame]:
        return [f for f in self.received[after:] if f.get("type") == kind]

    def find(
        self, kind: str, after: int = 0, where: Callable[[Frame], bool] = lambda f: True
    ) -> tuple[int, Frame] | None:
        """The first received frame of `kind` at index `after` or later that `where`
        accepts, with its index."""
        for index in range(after, len(self.received)):
            frame = self.received[index]
            if frame.get("type") == kind and where(frame):
                return index, frame
        return None

    def said(self) -> list[str]:
        return [f["text"] for f in self.sent if f.get("type") == "say"]


def _hook(page: Any) -> dict[str, Any]:
    hook: dict[str, Any] = page.evaluate("() => JSON.parse(JSON.stringify(window.wavepick))")
    return hook


def _turn(heard: Frame | None, prompt: Frame | None) -> dict[str, Any]:
    return {"heard": heard, "prompt": prompt}


class HeadsetPage:
    """The headset page signed in as one user, with its frames recorded."""

    def __init__(self, page: Any, frames: _Frames, timeout: float) -> None:
        self.page = page
        self.frames = frames
        self.timeout = timeout

    @property
    def hook(self) -> dict[str, Any]:
        return _hook(self.page)

    def wait(self, condition: Callable[[], Any], timeout: float | None = None) -> Any:
        """Poll `condition` while Playwright delivers events; its value, or None at the
        timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            value = condition()
            if value or time.monotonic() > deadline:
                return value or None
            self.page.wait_for_timeout(50)

    def sign_in(
        self,
        base_url: str,
        username: str,
        password: str,
        locale: str | None = None,
        *,
        audio: str | None = None,
    ) -> Frame:
        """Sign in (in `locale`, chosen on the sign-in form, when given) and wait for the
        first prompt; returns it. `audio="socket"` keeps the page's audio off WebRTC."""
        page = self.page
        query = f"?audio={audio}" if audio else ""
        page.goto(f"{base_url.rstrip('/')}/headset.html{query}")
        if locale is not None:
            page.select_option("#locale", locale)
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("#signin-button")
        page.wait_for_function(
            "() => window.wavepick.connected && window.wavepick.lastPrompt",
            timeout=self.timeout * 1000,
        )
        prompt: Frame = self.hook["lastPrompt"]
        return prompt

    def prompt_end(self, prompt_id: int) -> Frame | None:
        found = self.wait(
            lambda: self.frames.find("prompt_end", where=lambda f: f["id"] == prompt_id)
        )
        return found[1] if found else None

    def next_turn(
        self, mark: int, where: Callable[[Frame], bool], timeout: float | None = None
    ) -> dict[str, Any]:
        """The first `heard` frame after `mark` that `where` accepts, and the prompt that
        answered it."""
        found = self.wait(lambda: self.frames.find("heard", mark, where), timeout)
        if found is None:
            return _turn(None, None)
        index, heard = found
        prompt = self.wait(lambda: self.frames.find("prompt", index + 1), self.timeout / 3)
        return _turn(heard, prompt[1] if prompt else None)

    def typed(self, action: Callable[[], None]) -> dict[str, Any]:
        """Do `action` (keypad or command buttons) and wait for the typed answer's turn."""
        mark = len(self.frames.received)
        action()
        return self.next_turn(mark, lambda f: f.get("source") == "text")

    def keypad(self, digits: str) -> dict[str, Any]:
        def type_digits() -> None:
            self.page.click("#tab-keypad")
            for digit in digits:
                self.page.click(f'#keypad button[data-digit="{digit}"]')
            self.page.click("#keypad-send")

        return self.typed(type_digits)

    def command(self, token: str) -> dict[str, Any]:
        """Press the command button that sends `token` ("say_again")."""

        def press() -> None:
            self.page.click("#tab-commands")
            self.page.click(f'#commands button[data-say="{token}"]')

        return self.typed(press)

    def command_buttons(self) -> dict[str, str]:
        """The command buttons on the page: the token each sends → its label."""
        buttons: dict[str, str] = self.page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll("#commands button")]
                   .map((b) => [b.dataset.say, b.textContent]))"""
        )
        return buttons

    def mode(self, mode: str) -> None:
        self.page.click("#tab-voice")
        self.page.check(f'input[name="mode"][value="{mode}"]', force=True)

    def hold_talk(self, ms: int) -> None:
        box = self.page.locator("#talk-button").bounding_box()
        assert box is not None, "the talk button is not on screen"
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        self.page.mouse.down()
        self.page.wait_for_timeout(ms)
        self.page.mouse.up()

    def hands_free_until_accepted(self, timeout: float) -> dict[str, Any]:
        """Listen hands-free until the server accepts something it heard by speech (the
        fake microphone loops), then go back to push-to-talk. Returns that turn, every
        speech `heard` frame meanwhile and the audio bytes sent."""
        mark = len(self.frames.received)
        before = self.frames.sent_audio_bytes
        self.mode("handsfree")
        found = self.wait(
            lambda: self.frames.find(
                "heard", mark, lambda f: f.get("source") == "speech" and f.get("accepted") is True
            ),
            timeout,
        )
        self.mode("ptt")
        turn = self.next_turn(found[0], lambda f: True) if found else _turn(None, None)
        turn["audio_bytes"] = self.frames.sent_audio_bytes - before
        turn["speech_heard"] = [
            f for f in self.frames.received_of("heard", mark) if f.get("source") == "speech"
        ]
        return turn

    def settle(self, quiet_ms: int = 1500) -> None:
        """Wait until no frame has come in for `quiet_ms` (answers still queued on the
        server are heard and prompted), at most the timeout."""
        deadline = time.monotonic() + self.timeout
        seen = -1
        while time.monotonic() < deadline and seen != len(self.frames.received):
            seen = len(self.frames.received)
            self.page.wait_for_timeout(quiet_ms)

    def sign_out(self) -> dict[str, Any]:
        self.page.click("#signout-button")
        self.page.wait_for_selector("#signin-view:not([hidden])", timeout=self.timeout * 1000)
        return {
            "bye_sent": any(f.get("type") == "bye" for f in self.frames.sent),
            "signed_out_state": self.hook["state"],
        }


@contextmanager
def headset_page(
    base_url: str, wav_path: Path, result: dict[str, Any], *, timeout: float
) -> Iterator[HeadsetPage]:
    """Chromium on the headset page with `wav_path` as its microphone. Page errors and
    frames go into `result`; a Playwright error becomes an AssertionError saying where the
    page got stuck."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    result.setdefault("page_errors", [])
    result.setdefault("console_errors", [])
    frames = _Frames()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=chromium_args(wav_path), headless=True
        )
        page = None
        try:
            context = browser.new_context(viewport={"width": 360, "height": 640}, has_touch=True)
            context.grant_permissions(["microphone"], origin=base_url)
            context.add_init_script(_RECORD_SOCKETS)
            page = context.new_page()
            page.on("pageerror", lambda exc: result["page_errors"].append(str(exc)))

            def on_console(message: Any) -> None:
                if message.type == "error":
                    result["console_errors"].append(message.text)

            page.on("console", on_console)
            page.on("websocket", frames.attach)
            yield HeadsetPage(page, frames, timeout)
        except PlaywrightError as exc:
            try:
                result["hook"] = _hook(page) if page is not None else None
            except PlaywrightError:
                result["hook"] = None
            result["last_frames"] = frames.received[-6:]
            raise AssertionError(f"headset page stopped: {exc}\nso far: {result}") from exc
        finally:
            browser.close()
            result["says"] = frames.said()
            result["error_frames"] = frames.received_of("error")
            result["heard_frames"] = frames.received_of("heard")
            result["prompts"] = [(f["state"], f["text"]) for f in frames.received_of("prompt")]
            result["sent_audio_bytes"] = frames.sent_audio_bytes
            result["max_sent_audio_frame"] = frames.max_sent_audio_frame
            result["sockets"] = frames.sockets
            result["socket_urls"] = frames.urls


def run_headset_page_check(
    base_url: str,
    username: str,
    password: str,
    wav_path: Path,
    *,
    timeout: float = 30.0,
    screenshot: Path | None = None,
) -> dict[str, Any]:
    """Sign in on `base_url`/headset.html at the start of an assignment and go through the
    page's inputs against the real dialog, the audio on the socket: "say_again" from the
    command buttons, "ready" spoken hands-free (`wav_path` says it), push-to-talk (streams
    only while held), check digits from the keypad, a dropped and resumed socket,
    sign-out. Every step records what came back; nothing here asserts."""
    result: dict[str, Any] = {}
    with headset_page(base_url, wav_path, result, timeout=timeout) as headset:
        frames = headset.frames
        first = headset.sign_in(base_url, username, password, audio="socket")
        result["hello"] = next((f for f in frames.sent if f.get("type") == "hello"), None)
        result["welcome"] = next(iter(frames.received_of("welcome")), None)
        result["first_prompt"] = first
        result["prompt_end"] = headset.prompt_end(first["id"])
        result["prompt_audio_bytes"] = frames.received_audio_bytes
        result["prompt_shown"] = headset.page.text_content("#prompt-text")

        # Command buttons: "say again" repeats the prompt and changes nothing.
        result["say_again"] = headset.command("say_again")

        # Hands-free: the microphone streams continuously, the server endpoints and
        # recognises "ready" (the fake microphone repeats it until it is accepted).
        result["hands_free"] = headset.hands_free_until_accepted(timeout)

        # Push-to-talk: nothing streams while the button is up, audio while it is held.
        headset.settle()  # "ready"s still queued from hands-free are heard first
        before = frames.sent_audio_bytes
        headset.page.wait_for_timeout(1000)
        result["ptt_idle_bytes"] = frames.sent_audio_bytes - before
        mark = len(frames.received)
        before = frames.sent_audio_bytes
        headset.hold_talk(2500)
        headset.page.wait_for_timeout(1200)  # hangover and the trailing silence
        result["ptt_bytes"] = frames.sent_audio_bytes - before
        result["ptt"] = headset.next_turn(mark, lambda f: f.get("source") == "speech", timeout / 3)
        headset.settle()

        # Keypad: digits build a string, Send sends it as a `say`: the check digits.
        result["keypad"] = headset.keypad("57")

        # Reconnect: drop the socket as a network would; the page reconnects and the
        # server resumes the dialog where it was.
        hellos = sum(1 for f in frames.sent if f.get("type") == "hello")
        mark = len(frames.received)
        page = headset.page
        page.evaluate("() => window.__wavepickSockets.at(-1).close(4000, 'test drop')")
        page.wait_for_function(
            "() => window.wavepick.state === 'reconnecting'", timeout=timeout * 1000
        )
        page.wait_for_function("() => window.wavepick.connected", timeout=timeout * 1000)
        resumed = headset.wait(lambda: frames.find("prompt", mark))
        result["reconnect"] = {
            "hellos": sum(1 for f in frames.sent if f.get("type") == "hello") - hellos,
            "welcome": next(iter(frames.received_of("welcome", mark)), None),
            "resumed_prompt": resumed[1] if resumed else None,
        }

        if screenshot is not None:
            page.screenshot(path=str(screenshot))
            result["screenshot"] = str(screenshot)
        result["hook"] = headset.hook
        result.update(headset.sign_out())
    return result


def run_voice_pick(
    base_url: str,
    username: str,
    password: str,
    check_digits: str,
    wav_path: Path,
    *,
    timeout: float = 30.0,
    listen_timeout: float = 60.0,
) -> dict[str, Any]:
    """Sign in at the start of an assignment, say "ready" with the command button and the
    first slot's `check_digits` with the keypad (push-to-talk, so the microphone sends
    nothing meanwhile), then listen hands-free at the quantity prompt until the server
    accepts what `wav_path` says (the fake microphone loops it for up to
    `listen_timeout` seconds)."""
    result: dict[str, Any] = {}
    with headset_page(base_url, wav_path, result, timeout=timeout) as headset:
        result["first_prompt"] = headset.sign_in(base_url, username, password, audio="socket")
        headset.mode("ptt")
        before = headset.frames.sent_audio_bytes
        result["ready"] = headset.command("ready")
        result["check_digits"] = headset.keypad(check_digits)
        result["audio_bytes_before_listening"] = headset.frames.sent_audio_bytes - before
        result["voice"] = headset.hands_free_until_accepted(listen_timeout)
        result["hook"] = headset.hook
        result.update(headset.sign_out())
    return result


def run_webrtc_audio_check(
    base_url: str,
    username: str,
    password: str,
    wav_path: Path,
    *,
    timeout: float = 30.0,
    listen_timeout: float = 60.0,
) -> dict[str, Any]:
    """Sign in at the start of an assignment with the page's audio on WebRTC where it can
    be: once the server says the peer connection is up, listen hands-free until "ready"
    (`wav_path` says it, over and over) is accepted, then push-to-talk: quiet with the
    button up, heard while it is held. Records the WebRTC frames, the audio on the socket
    both ways, and the page's own view (`window.wavepick.rtc`); nothing here asserts."""
    result: dict[str, Any] = {}
    with headset_page(base_url, wav_path, result, timeout=timeout) as headset:
        frames, page = headset.frames, headset.page
        first = headset.sign_in(base_url, username, password)
        page.wait_for_function(
            "() => window.wavepick.audioPath === 'webrtc'", timeout=timeout * 1000
        )
        headset.prompt_end(first["id"])  # its audio may have begun on the socket
        result["offers"] = [f for f in frames.sent if f.get("type") == "rtc_offer"]
        result["answers"] = frames.received_of("rtc_answer")
        result["states"] = [f["state"] for f in frames.received_of("rtc_state")]
        sent, received = frames.sent_audio_bytes, frames.received_audio_bytes

        result["hands_free"] = headset.hands_free_until_accepted(listen_timeout)
        headset.settle()  # answers still queued from hands-free are heard first
        idle = len(frames.received)
        page.wait_for_timeout(2000)  # the fake microphone goes on saying "ready"
        result["ptt_idle_heard"] = [
            f for f in frames.received_of("heard", idle) if f.get("source") == "speech"
        ]
        mark = len(frames.received)
        headset.hold_talk(4000)  # longer than a loop of the microphone's file
        result["ptt"] = headset.next_turn(mark, lambda f: f.get("source") == "speech", timeout)
        headset.settle()
        page.wait_for_timeout(1500)  # the page reads WebRTC stats every second
        result["socket_audio_sent"] = frames.sent_audio_bytes - sent
        result["socket_audio_received"] = frames.received_audio_bytes - received
        result["hook"] = headset.hook
        result.update(headset.sign_out())
    return result
