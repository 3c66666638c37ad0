"""The console's live floor board and exceptions inbox in real headless Chromium against a
real server process: a supervisor watches a picker driven by the real `wavepick simulate
pickers` command (over the headset socket) and sees the card's picks rise with no reload;
an exception a picker reports over the API appears live with a chime, its "Join call"
link opens the call in a new tab that joins the room, and resolving it from the inbox
takes it out of the open list; both screens speak Chinese."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.headset.client import HeadsetClient
from tests.browser import require_chromium
from tests.conftest import REPO, ServerProcess, serving
from tests.console_browser import ConsolePage, console_page, screenshot
from tests.factories import PASSWORD, auth, pick_floor

pytestmark = pytest.mark.browser

MARKER = "window.__floorMarker === 'still the same page'"


@pytest.fixture
def floor_server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """LAX with one released assignment of three lines (`pick_floor`), on a real server."""
    require_chromium()
    pick_floor(sqlite_url)
    with serving(sqlite_url, tmp_path) as server:
        yield server


def field(console: ConsolePage, selector: str, name: str) -> str:
    return console.page.text_content(f"{selector} [data-field='{name}']") or ""


def card(picker: str) -> str:
    return f".picker-card[data-picker='{picker}']"


def wavepick(*args: str) -> list[str]:
    """The `wavepick` command of this environment."""
    script = Path(sys.executable).with_name("wavepick")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from server.cli import main; main()", *args]


def watch_an_empty_floor(console: ConsolePage) -> None:
    """Sign in as the supervisor and wait for the live board, with no picker on it yet."""
    console.sign_in("supervisor", PASSWORD)
    console.live()
    assert console.hook["screen"] == "board"
    console.wait_until("!document.querySelector('#board-empty').hidden")


def picker_headset(server: ServerProcess) -> HeadsetClient:
    """The headset of "picker", not connected yet."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        token = auth(http, "picker")["Authorization"].split()[1]
    url = f"{server.url.replace('http://', 'ws://', 1)}/ws/headset"
    return HeadsetClient(url, token, ticket=True)


def sign_on(http: httpx.Client, picker: str) -> dict[str, Any]:
    response = http.post(
        "/api/v1/assignments/sign-on", json={"warehouse": "LAX"}, headers=auth(http, picker)
    )
    assert response.status_code == 200, response.text
    assignment: dict[str, Any] = response.json()
    return assignment


def report_damage(http: httpx.Client, line: dict[str, Any], note: str) -> int:
    response = http.post(
        f"/api/v1/pick-lines/{line['id']}/exceptions",
        json={"kind": "damage", "note": note},
        headers=auth(http, "picker"),
    )
    assert response.status_code == 201, response.text
    exception_id: int = response.json()["id"]
    return exception_id


def test_the_board_follows_a_simulated_picker_live(
    floor_server: ServerProcess, tmp_path: Path
) -> None:
    with console_page(floor_server.url, tmp_path, viewport=(768, 1024)) as console:
        watch_an_empty_floor(console)
        console.page.evaluate("() => { window.__floorMarker = 'still the same page'; }")

        sim_log = (tmp_path / "simulate.err").open("w")
        simulation = subprocess.Popen(
            wavepick(
                "simulate",
                "pickers",
                *("--count", "1", "--duration", "120", "--think", "0.5"),
                *("--url", floor_server.url, "--admin", "admin", "--admin-password", PASSWORD),
            ),
            cwd=REPO,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=sim_log,
            text=True,
        )
        try:
            # the card appears when the headset signs on, and counts picks as they come
            console.page.wait_for_selector(card("sim-001"), timeout=60_000)
            console.page.wait_for_function(
                f"""() => {{
                  const card = document.querySelector("{card("sim-001")}");
                  const done = card && card.querySelector("[data-field='lines_done']");
                  return done && Number(done.textContent) >= 2;
                }}""",
                timeout=60_000,
            )
            # what the headset heard, typed answers being sure of themselves
            confidence = f"{card('sim-001')} [data-field='confidence']"
            console.page.wait_for_function(
                f"() => document.querySelector(\"{confidence}\")?.textContent === '100%'"
            )
            assert field(console, card("sim-001"), "heard").startswith("“")
            assert field(console, card("sim-001"), "dialog_state") != "–"
            assert field(console, card("sim-001"), "reprompts") == "0"
            assert console.page.evaluate(f"() => {MARKER}")
            assert console.hook["live"]["connects"] == 1  # no reconnection reloaded it
            seen = console.page.locator(card("sim-001"))
            lines = int(field(console, card("sim-001"), "lines"))
            assert 2 <= int(field(console, card("sim-001"), "lines_done")) <= lines
            assert field(console, card("sim-001"), "warehouse") == "LAX"
            assert field(console, card("sim-001"), "assignment").isdigit()
            assert int(field(console, card("sim-001"), "picks_per_hour")) >= 2
            assert seen.get_attribute("data-warn") == ""
            screenshot(console, "board")

            # the simulated picker finishes its work and signs off: the card goes
            out, _ = simulation.communicate(timeout=240)
        finally:
            if simulation.poll() is None:
                simulation.kill()
                simulation.wait()
            sim_log.close()
        assert simulation.returncode == 0, (tmp_path / "simulate.err").read_text()[-2000:]
        result = json.loads(out)
        assert result["errors"] == 0, result
        assert result["picks"] >= 2
        console.page.wait_for_selector(card("sim-001"), state="detached")
        assert console.page.evaluate(f"() => {MARKER}")
        assert console.hook["live"]["connects"] == 1
    assert console.page_errors == []
    assert console.console_errors == []


def test_an_exception_arrives_live_is_joined_by_call_and_resolved(
    floor_server: ServerProcess, tmp_path: Path
) -> None:
    with httpx.Client(base_url=floor_server.url, timeout=30) as http:
        assignment = sign_on(http, "picker")
        with console_page(floor_server.url, tmp_path, viewport=(768, 1024)) as console:
            console.sign_in("supervisor", PASSWORD)
            console.live()
            console.open("exceptions")
            console.wait_until("!document.querySelector('#exceptions-empty').hidden")
            console.page.evaluate("() => { window.__floorMarker = 'still the same page'; }")
            assert console.hook["sounds"] == 0

            line = assignment["lines"][0]
            exception_id = report_damage(http, line, "Carton crushed on arrival")
            row = f".exception-item[data-exception='{exception_id}']"
            console.page.wait_for_selector(row)
            console.wait_until("window.wavepickConsole.sounds === 1")
            assert console.page.evaluate(f"() => {MARKER}")
            assert console.page.get_attribute(row, "data-new") == "true"
            assert field(console, row, "kind") == "Damage"
            assert field(console, row, "picker") == "picker"
            assert field(console, row, "sku") == line["sku"]
            assert field(console, row, "location") == line["location"]
            assert field(console, row, "note") == "Carton crushed on arrival"
            assert field(console, row, "opened_at")
            screenshot(console, "exceptions")

            # "Join call" opens the call page of the exception in a new tab, signed in
            with console.page.context.expect_page() as opened:
                console.page.click(f"{row} a.button-link")
            call = opened.value
            call.wait_for_load_state()
            assert f"call.html?exception={exception_id}" in call.url or "room=" in call.url
            call.wait_for_function(
                "() => window.wavepickCall && window.wavepickCall.state === 'joined'",
                timeout=30_000,
            )
            room = call.evaluate("() => window.wavepickCall.room")
            rooms = http.get(f"/api/v1/rooms/{room}", headers=auth(http, "supervisor"))
            assert rooms.status_code == 200, rooms.text
            assert rooms.json()["exception_id"] == exception_id
            call.close()

            # no reason: refused on the page; an adjustment without a quantity: the
            # server's problem is shown in the row
            console.page.click(f"{row} button[type='submit']")
            console.page.wait_for_selector(f"{row} .exception-error:not([hidden])")
            assert "decided" in field_text(console, f"{row} .exception-error")
            console.page.fill(f"{row} input[name='resolution']", "Checked on camera")
            console.page.select_option(f"{row} select[name='outcome']", "adjusted")
            console.page.click(f"{row} button[type='submit']")
            console.page.wait_for_function(
                f"""() => (document.querySelector("{row} .exception-error")?.textContent || "")
                            .includes("quantity")"""
            )
            console.page.select_option(f"{row} select[name='outcome']", "noted")
            console.page.click(f"{row} button[type='submit']")
            console.page.wait_for_selector(row, state="detached")
            console.wait_until("!document.querySelector('#exceptions-empty').hidden")

            resolved = http.get(
                "/api/v1/exceptions",
                params={"status": "resolved", "warehouse": "LAX"},
                headers=auth(http, "manager"),
            ).json()["items"]
            (settled,) = [e for e in resolved if e["id"] == exception_id]
            assert settled["resolution"] == "Checked on camera"
            assert (settled["resolved_by"], settled["outcome"]) == ("supervisor", "noted")
            assert str(settled["room"]) == str(room)

            # the resolved filter shows it
            console.page.select_option("#exceptions-filter", "resolved")
            console.page.wait_for_selector(row)
            assert field(console, row, "resolution") == "Checked on camera"
            assert console.page.evaluate(f"() => {MARKER}")
        assert console.page_errors == []
        # the one refusal asked for: Chromium logs the 422 answer itself
        assert all("422" in message for message in console.console_errors)
        assert len(console.console_errors) <= 1


@contextmanager
def a_loop() -> Iterator[Callable[[Coroutine[Any, Any, Any]], Any]]:
    """An event loop in a thread of its own (Playwright's sync API holds this thread's),
    and a call that runs a coroutine on it to its end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield lambda work: asyncio.run_coroutine_threadsafe(work, loop).result(timeout=120)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_a_quiet_picker_is_idle_and_a_lost_headset_offline(
    floor_server: ServerProcess, tmp_path: Path
) -> None:
    """No event for two minutes (the page's clock moved on): idle; the headset's socket
    dropped without a sign-off: offline."""
    headset = picker_headset(floor_server)
    with console_page(floor_server.url, tmp_path) as console, a_loop() as run:
        console.page.clock.install()
        watch_an_empty_floor(console)

        async def sign_on_by_voice() -> None:
            await headset.connect()
            await headset.say("ready")

        run(sign_on_by_voice())
        picker = card("picker")
        console.page.wait_for_selector(f"{picker}[data-status='picking']")
        console.page.wait_for_function(
            f"""() => document.querySelector("{picker} [data-field='dialog_state']")
                        ?.textContent === 'Going to slot'"""
        )
        assert console.page.get_attribute(picker, "data-warn") == ""
        assert console.page.is_hidden(f"{picker} .picker-warning")

        console.page.clock.fast_forward("02:10")
        console.page.wait_for_selector(f"{picker}[data-warn='idle']")
        assert field(console, picker, "warning") == "Idle: nothing for 2 minutes"

        run(headset.drop())
        console.page.wait_for_selector(f"{picker}[data-warn='offline']")
        assert field(console, picker, "warning") == "Offline: the headset went away"
        assert field(console, picker, "status") == "Offline"
        assert field(console, picker, "lines_done") == "0"
    assert console.page_errors == []
    assert console.console_errors == []


def test_a_headset_frame_from_before_the_sign_off_does_not_bring_the_card_back(
    floor_server: ServerProcess, tmp_path: Path
) -> None:
    """A headset's `heard` is published once its answer is kept, so on a busy server it can
    reach the board after the sign-off that followed it. Here the events socket holds every
    `heard` back until the `signed_off` has passed, then lets them through."""
    from playwright.sync_api import WebSocketRoute

    headset = picker_headset(floor_server)
    held: list[str] = []  # the `heard` frames kept back
    released = threading.Event()  # set once the `signed_off` has passed

    def hold_heard_until_signed_off(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def from_server(message: str | bytes) -> None:
            status = json.loads(message).get("status")
            if status == "heard" and not released.is_set():
                held.append(str(message))
                return
            ws.send(message)
            if status == "signed_off":
                released.set()
                for frame in held:
                    ws.send(frame)

        server.on_message(from_server)

    with console_page(floor_server.url, tmp_path) as console, a_loop() as run:
        console.page.route_web_socket("**/ws/events*", hold_heard_until_signed_off)
        watch_an_empty_floor(console)

        async def sign_on_then_off() -> None:
            await headset.connect()
            await headset.say("ready")
            await headset.say("sign off")
            await headset.say("yes")

        run(sign_on_then_off())
        # the last of the frames held back has been applied
        console.wait_until("window.wavepickConsole.live.lastEvent?.status === 'heard'")
        assert released.is_set() and len(held) >= 2
        assert console.page.query_selector(card("picker")) is None
        assert console.page.is_visible("#board-empty")
    assert console.page_errors == []
    assert console.console_errors == []


def field_text(console: ConsolePage, selector: str) -> str:
    return console.page.text_content(selector) or ""


def test_the_board_and_inbox_speak_chinese(floor_server: ServerProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=floor_server.url, timeout=30) as http:
        assignment = sign_on(http, "picker")
        report_damage(http, assignment["lines"][1], "包装破损")
    with console_page(floor_server.url, tmp_path, viewport=(768, 1024)) as console:
        console.sign_in("supervisor", PASSWORD)
        console.live()
        console.page.wait_for_selector(card("picker"))
        console.language("zh-CN")
        assert console.page.text_content("#screen-board-title") == "实时现场"
        labels = console.page.locator(f"{card('picker')} dt").all_text_contents()
        assert labels[:3] == ["任务", "已拣", "每小时拣货数"]
        assert field(console, card("picker"), "status") == "拣货中"
        assert console.page.text_content("label[for='board-view']") == "视图"
        screenshot(console, "board-zh")
        console.page.select_option("#board-view", "table")
        console.page.wait_for_selector("#board-table tr[data-row-picker='picker']")
        headers = console.page.locator("#board-table th[scope='col']").all_text_contents()
        assert headers[:4] == ["拣货员", "任务", "仓库", "已拣"]
        assert console.page.is_hidden("#board-cards")
        console.page.select_option("#board-view", "cards")
        console.page.wait_for_selector(card("picker"))

        console.open("exceptions")
        console.page.wait_for_selector(".exception-item")
        assert console.page.text_content("#screen-exceptions-title") == "异常收件箱"
        assert field(console, ".exception-item", "kind") == "破损"
        assert console.page.text_content(".exception-item a.button-link") == "加入通话"
        assert console.page.text_content(".exception-item button[type='submit']") == "处理"
        form_labels = console.page.locator(".exception-item form label").all_text_contents()
        assert "处理结果（原因）" in form_labels and "处理方式" in form_labels
        assert console.page.text_content("#nav a[href='#exceptions']") == "异常"
    assert console.page_errors == []
    assert console.console_errors == []
