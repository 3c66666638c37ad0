"""The supervisor console in real headless Chromium (Debian `chromium`, Playwright).

`console_page` opens console.html on a running server, signs in, and yields a
`ConsolePage`: the Playwright page, what the page reported as errors, and small steps
(open a screen, switch language, wait for the console's test hook). `screenshot` writes a
screen into docs/screenshots/ for the README.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.browser import CHROMIUM, chromium_args

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


@dataclass
class ConsolePage:
    page: Any  # playwright.sync_api.Page
    timeout_ms: float
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    @property
    def hook(self) -> dict[str, Any]:
        """`window.wavepickConsole`: the console's state, for tests."""
        hook: dict[str, Any] = self.page.evaluate("() => window.wavepickConsole")
        return hook

    def wait_until(self, expression: str) -> None:
        """Wait for a JavaScript expression on the page to be true."""
        self.page.wait_for_function(f"() => {expression}", timeout=self.timeout_ms)

    def sign_in(self, username: str, password: str) -> None:
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("#signin-button")
        self.wait_until("window.wavepickConsole.state === 'ready'")

    def open(self, screen: str) -> None:
        """Open a screen from the navigation, as a person would."""
        self.page.click(f"#nav a[href='#{screen}']")
        self.wait_until(f"window.wavepickConsole.screen === '{screen}'")

    def live(self) -> None:
        """Wait until the events socket is subscribed."""
        self.wait_until("window.wavepickConsole.live.state === 'open'")

    def language(self, locale: str) -> None:
        self.page.select_option("#app-locale", locale)
        self.wait_until(f"document.documentElement.lang === '{locale}'")

    def warehouse(self, code: str) -> None:
        self.page.select_option("#warehouse-select", code)
        self.wait_until(f"window.wavepickConsole.warehouse === '{code}'")


@contextmanager
def console_page(
    base_url: str,
    tmp_path: Path,
    *,
    viewport: tuple[int, int] = (1280, 900),
    timeout: float = 20.0,
) -> Iterator[ConsolePage]:
    """Chromium on `base_url`/console.html, not signed in yet. Page errors and console
    errors are collected on the `ConsolePage` (a test asserts they stay empty)."""
    from playwright.sync_api import sync_playwright

    silence = tmp_path / "silence.wav"  # for the call page's microphone
    with wave.open(str(silence), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(32000))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=chromium_args(silence), headless=True
        )
        try:
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, locale="en-US"
            )
            context.grant_permissions(["microphone", "camera"], origin=base_url)
            page = context.new_page()
            console = ConsolePage(page, timeout * 1000)
            page.on("pageerror", lambda exc: console.page_errors.append(str(exc)))
            page.on(
                "console",
                lambda message: (
                    message.type == "error" and console.console_errors.append(message.text)
                ),
            )
            page.goto(f"{base_url}/console.html")
            yield console
        finally:
            browser.close()


def screenshot(console: ConsolePage, name: str) -> Path:
    """Write the page as it is into docs/screenshots/`name`.png (linked from the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    console.page.screenshot(path=str(path), full_page=True)
    return path
