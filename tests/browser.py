"""Real headless Chromium (Debian `chromium`, driven by Playwright) for the browser pages,
with a fake microphone fed from a WAV file.

`run_headset_page_check` signs in on the headset page of a running server, follows the
first prompt with the keypad, the command buttons, push-to-talk and hands-free speech, drops
and resumes the socket, and returns what it saw (frames both ways, the page's test hook), so
a test can assert on it and a person can read it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
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


def speak_to_wav(text: str, path: Path, *, trailing_silence_ms: int = 700) -> Path:
    """A WAV of `text` spoken by espeak-ng, with a little silence so a looping fake
    microphone leaves gaps for the server's endpointer."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        if IN_CI:
            pytest.fail("espeak-ng is required when CI=true")
        pytest.skip("espeak-ng not available")
    subprocess.run([espeak, "-w", str(path), text], check=True, capture_output=True)
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
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.sent_audio_bytes = 0
        self.max_sent_audio_frame = 0
        self.received_audio_bytes = 0
        self.sockets = 0

    def attach(self, ws: Any) -> None:
        if "/ws/headset" not in ws.url:
            return
        self.sockets += 1
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

    def received_of(self, kind: str, after: int = 0) -> list[dict[str, Any]]:
        return [f for f in self.received[after:] if f.get("type") == kind]


def _wait(page: Any, condition: Callable[[], Any], timeout: float) -> Any:
    """Poll `condition` while Playwright delivers events; its value, or None at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value or None
        page.wait_for_timeout(50)


def _hook(page: Any) -> dict[str, Any]:
    hook: dict[str, Any] = page.evaluate("() => JSON.parse(JSON.stringify(window.wavepick))")
    return hook


def run_headset_page_check(
    base_url: str,
    username: str,
    password: str,
    wav_path: Path,
    *,
    timeout: float = 30.0,
    screenshot: Path | None = None,
) -> dict[str, Any]:
    """Sign in on `base_url`/headset.html and go through the page's inputs against the real
    dialog. Every step records what came back; nothing here asserts."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {"page_errors": [], "console_errors": []}
    frames = _Frames()
    page = None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=chromium_args(wav_path), headless=True
        )
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
            ms = timeout * 1000

            # Sign in and wait for the first prompt with its audio.
            page.goto(f"{base_url.rstrip('/')}/headset.html")
            page.fill("#username", username)
            page.fill("#password", password)
            page.click("#signin-button")
            page.wait_for_function(
                "() => window.wavepick.connected && window.wavepick.lastPrompt", timeout=ms
            )
            result["hello"] = next((f for f in frames.sent if f.get("type") == "hello"), None)
            result["welcome"] = next(iter(frames.received_of("welcome")), None)
            first = _hook(page)["lastPrompt"]
            result["first_prompt"] = first
            result["prompt_end"] = _wait(
                page,
                lambda: next(
                    (f for f in frames.received_of("prompt_end") if f.get("id") == first.get("id")),
                    None,
                ),
                timeout,
            )
            result["prompt_audio_bytes"] = frames.received_audio_bytes
            result["prompt_shown"] = page.text_content("#prompt-text")

            def say_and_wait(click: Callable[[], None]) -> tuple[Any, Any]:
                mark = len(frames.received)
                click()
                heard = _wait(
                    page, lambda: next(iter(frames.received_of("heard", mark)), None), timeout
                )
                prompt = _wait(
                    page, lambda: next(iter(frames.received_of("prompt", mark)), None), timeout / 3
                )
                return heard, prompt

            # Keypad: digits build a string, Send sends it as a `say`.
            page.click("#tab-keypad")

            def type_57() -> None:
                for digit in "57":
                    page.click(f'#keypad button[data-digit="{digit}"]')
                page.click("#keypad-send")

            result["keypad_heard"], _ = say_and_wait(type_57)

            # Command buttons: "say again" makes sense in every dialog state.
            page.click("#tab-commands")
            result["command_heard"], result["reprompt"] = say_and_wait(
                lambda: page.click('#commands button[data-say="say again"]')
            )
            result["says"] = [f["text"] for f in frames.sent if f.get("type") == "say"]

            # Push-to-talk: nothing streams while the button is up, audio while it is held.
            page.click("#tab-voice")
            page.check('input[name="mode"][value="ptt"]', force=True)
            page.wait_for_timeout(1500)  # any hangover from before settles
            before = frames.sent_audio_bytes
            page.wait_for_timeout(1000)
            result["ptt_idle_bytes"] = frames.sent_audio_bytes - before
            mark = len(frames.received)
            box = page.locator("#talk-button").bounding_box()
            assert box is not None, "the talk button is not on screen"
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            before = frames.sent_audio_bytes
            page.mouse.down()
            page.wait_for_timeout(2500)
            page.mouse.up()
            page.wait_for_timeout(1200)  # hangover and the trailing silence
            result["ptt_bytes"] = frames.sent_audio_bytes - before
            result["ptt_heard"] = _wait(
                page, lambda: next(iter(frames.received_of("heard", mark)), None), timeout / 3
            )

            # Hands-free: the microphone streams continuously; the server endpoints speech.
            mark = len(frames.received)
            before = frames.sent_audio_bytes
            page.check('input[name="mode"][value="handsfree"]', force=True)
            result["speech_heard"] = _wait(
                page,
                lambda: next(
                    (f for f in frames.received_of("heard", mark) if f.get("source") == "speech"),
                    None,
                ),
                timeout,
            )
            page.wait_for_timeout(500)
            result["hands_free_bytes"] = frames.sent_audio_bytes - before
            page.check('input[name="mode"][value="ptt"]', force=True)

            # Reconnect: drop the socket as a network would; the page reconnects and the
            # server resumes the dialog.
            hellos = sum(1 for f in frames.sent if f.get("type") == "hello")
            mark = len(frames.received)
            page.evaluate("() => window.__wavepickSockets.at(-1).close(4000, 'test drop')")
            page.wait_for_function("() => window.wavepick.state === 'reconnecting'", timeout=ms)
            page.wait_for_function("() => window.wavepick.connected", timeout=ms)
            resumed = _wait(
                page, lambda: next(iter(frames.received_of("prompt", mark)), None), timeout
            )
            result["reconnect"] = {
                "hellos": sum(1 for f in frames.sent if f.get("type") == "hello") - hellos,
                "welcome": next(iter(frames.received_of("welcome", mark)), None),
                "resumed_prompt": resumed,
            }

            if screenshot is not None:
                page.screenshot(path=str(screenshot))
                result["screenshot"] = str(screenshot)
            result["hook"] = _hook(page)

            page.click("#signout-button")
            page.wait_for_selector("#signin-view:not([hidden])", timeout=ms)
            result["bye_sent"] = any(f.get("type") == "bye" for f in frames.sent)
            result["signed_out_state"] = _hook(page)["state"]
        except PlaywrightError as exc:
            # Say where the page got stuck: the last frames and the page's own view.
            try:
                result["hook"] = _hook(page) if page is not None else None
            except PlaywrightError:
                result["hook"] = None
            result["last_frames"] = frames.received[-6:]
            raise AssertionError(f"headset page check stopped: {exc}\nso far: {result}") from exc
        finally:
            browser.close()
    result["error_frames"] = frames.received_of("error")
    result["heard_frames"] = frames.received_of("heard")
    result["sent_audio_bytes"] = frames.sent_audio_bytes
    result["max_sent_audio_frame"] = frames.max_sent_audio_frame
    result["sockets"] = frames.sockets
    return result
