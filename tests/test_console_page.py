"""The supervisor console's frame in real headless Chromium against a real server process:
sign in with the same accounts as the headset, every screen opens, the live events socket
subscribes, the language switches to Chinese, and a picker is kept out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.browser import require_chromium
from tests.conftest import ServerProcess, serving
from tests.console_browser import console_page
from tests.factories import PASSWORD

SCREENS = ("board", "orders", "exceptions", "stock", "kpis")


@pytest.fixture
def console_server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    require_chromium()
    with serving(sqlite_url, tmp_path) as server:
        yield server


def test_the_console_and_its_libraries_are_served_from_the_server(client: TestClient) -> None:
    for path in (
        "/console.html",
        "/console.css",
        "/console/app.js",
        "/console/core.js",
        *(f"/console/{screen}.js" for screen in SCREENS),
        "/vendor/chart.umd.min.js",
        "/vendor/JsBarcode.all.min.js",
    ):
        assert client.get(path).status_code == 200, path
    assert 'href="console.html"' in client.get("/").text


@pytest.mark.browser
def test_a_supervisor_signs_in_and_opens_every_screen(
    console_server: ServerProcess, tmp_path: Path
) -> None:
    with console_page(console_server.url, tmp_path) as console:
        console.sign_in("supervisor", PASSWORD)
        console.live()
        assert console.hook["user"]["role"] == "supervisor"
        for screen in SCREENS:
            console.open(screen)
            assert console.page.is_visible(f"#screen-{screen}")
            assert console.page.is_hidden(f"#screen-{'kpis' if screen != 'kpis' else 'board'}")

        console.language("zh-CN")
        assert console.page.text_content("#signout") == "退出"
        assert console.page.text_content("#live") == "实时"
        console.language("en-US")
        assert console.page.text_content("#signout") == "Sign out"

        console.page.click("#signout")
        console.wait_until("window.wavepickConsole.state === 'signed_out'")
        assert console.hook["live"]["state"] == "closed"
    assert console.page_errors == []
    assert console.console_errors == []


@pytest.mark.browser
def test_a_picker_is_kept_out_of_the_console(console_server: ServerProcess, tmp_path: Path) -> None:
    with console_page(console_server.url, tmp_path) as console:
        console.page.fill("#username", "picker")
        console.page.fill("#password", PASSWORD)
        console.page.click("#signin-button")
        console.page.wait_for_selector("#signin-message:not([hidden])")
        assert "supervisors" in (console.page.text_content("#signin-message") or "")
        assert console.hook["state"] == "signed_out"
        assert console.page.is_hidden("#app-view")
    assert console.page_errors == []
