"""The console's orders-and-waves and stock screens in real headless Chromium against a real
server process: a supervisor imports orders from CSV (a bad row is named, then a good
file goes in), allocates and reads why, releases a wave, makes it more urgent, gives an
assignment to a picker; finds stock by SKU and lot, reads who moved it when and why,
traces a lot, and renders printable location labels with their check digits and a
Code 128 barcode. What the pages show is checked against the API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from server.db import make_engine, make_session_factory, transaction
from tests import factories as f
from tests.browser import require_chromium
from tests.conftest import ServerProcess, serving
from tests.console_browser import ConsolePage, console_page, screenshot
from tests.factories import PASSWORD, auth

# what Chromium logs for the two refusals the test provokes (an unknown SKU, not a picker)
REFUSED = [
    "Failed to load resource: the server responded with a status of 404 (Not Found)",
    "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)",
]
BAD_CSV = "order,sku,quantity,country\nW-1,CASE,2,US\nW-2,NOPE,1,US\nW-2,CASE,1,US\n"
GOOD_CSV = (
    "order,sku,quantity,country,priority\nW-1,CASE,2,US,3\nW-2,CASE,3,US,5\nW-3,SERUM,1,DE,5\n"
)


@pytest.fixture
def ops_server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """LAX (Los Angeles) and FRA, six slots each with check digits and a staging area;
    CASE in both, lot L-2027 of SERUM and serials SN-1, SN-2 of WATCH in LAX; the seeded
    users work in both."""
    require_chromium()
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    f.seed_users(sessions)
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES, timezone="America/Los_Angeles")
        f.warehouse(session, "FRA", country="DE", at=f.FRANKFURT, timezone="Europe/Berlin")
        f.sku(session, "CASE")
        f.sku(session, "SERUM", lots=True)
        f.stock(session, "LAX", "A-01-01", "CASE", 20)
        f.stock(session, "FRA", "A-01-01", "CASE", 4)
        f.stock(session, "LAX", "A-01-02", "SERUM", 8, lot="L-2027", expiry=dt.date(2027, 3, 1))
        f.sku(session, "WATCH", serials=True)
        f.stock(session, "LAX", "A-01-04", "WATCH", 2, serials=("SN-1", "SN-2"))
    engine.dispose()
    with serving(sqlite_url, tmp_path) as server:
        yield server


def _api(server: ServerProcess, path: str, **params: Any) -> Any:
    with httpx.Client(base_url=server.url) as client:
        response = client.get(path, params=params, headers=auth(client, "supervisor"))
        assert response.status_code == 200, response.text
        return response.json()


def _upload(console: ConsolePage, name: str, text: str) -> None:
    console.page.set_input_files(
        "#orders-import-file",
        files=[{"name": name, "mimeType": "text/csv", "buffer": text.encode()}],
    )
    console.page.click("#orders-import-submit")


def _text(console: ConsolePage, selector: str) -> str:
    return console.page.text_content(selector) or ""


def _data(selector: str, name: str, value: str) -> str:
    """A condition: the element's data-`name` is `value`."""
    return f"document.querySelector({selector!r})?.dataset.{name} === {value!r}"


def _count(selector: str, count: int) -> str:
    """A condition: exactly `count` elements match."""
    return f"document.querySelectorAll({selector!r}).length === {count}"


def _shoot(console: ConsolePage, name: str) -> None:
    """A screenshot from the top of the page (the sticky bar where it belongs)."""
    console.page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(console, name)


def _buttons_are_big_enough(console: ConsolePage, screen: str) -> None:
    heights = console.page.eval_on_selector_all(
        f"#screen-{screen} button",
        "buttons => buttons.filter(b => b.offsetParent).map(b => b.getBoundingClientRect().height)",
    )
    assert heights and min(heights) >= 44, heights


@pytest.mark.browser
def test_orders_and_waves(ops_server: ServerProcess, tmp_path: Path) -> None:
    with console_page(ops_server.url, tmp_path) as console:
        page = console.page
        console.sign_in("supervisor", PASSWORD)
        console.open("orders")

        # a file with an unknown SKU: nothing imported, the row named with its order and SKU
        _upload(console, "bad.csv", BAD_CSV)
        page.wait_for_selector("#orders-import-errors li")
        errors = page.eval_on_selector_all(
            "#orders-import-errors li", "items => items.map(i => i.textContent)"
        )
        assert len(errors) == 1
        assert "Row 3" in errors[0] and "order W-2" in errors[0] and "SKU NOPE" in errors[0]
        assert _api(ops_server, "/api/v1/orders")["total"] == 0

        _upload(console, "orders.csv", GOOD_CSV)
        page.wait_for_selector("#orders-import-done")
        assert "Imported 3 orders" in _text(console, "#orders-import-done")
        for number in ("W-1", "W-2", "W-3"):
            page.wait_for_selector(f"#orders-table tr[data-order='{number}'][data-status='open']")

        # allocate from the list: the order's allocation and the rule that chose it
        page.click("tr[data-order='W-1'] button.allocate")
        page.wait_for_selector("#order-explanation")
        order = _api(ops_server, "/api/v1/orders/W-1")
        why = order["allocation_explanation"]
        assert order["status"] == "allocated"
        rule = {"stock_first": "stock first", "nearest": "nearest", "cost_first": "cost first"}
        first = f"By “{rule[why['rules'][0]]}”, {why['ranking'][0]['warehouse']} ranks first."
        assert _text(console, "#order-first-rule") == first
        assert why["decision"] in _text(console, "#order-decision")
        shown = page.eval_on_selector_all(
            "#order-body tr.allocation", "rows => rows.map(r => r.dataset.warehouse)"
        )
        assert shown == [a["warehouse"] for a in order["allocations"]] == ["LAX"]
        console.wait_until(
            "document.querySelector(\"tr[data-order='W-1']\").dataset.status === 'allocated'"
        )
        page.click("tr[data-order='W-2'] button.allocate")
        console.wait_until(
            "document.querySelector(\"tr[data-order='W-2']\")?.dataset.status === 'allocated'"
        )
        page.click("tr[data-order='W-3'] button.details")
        console.wait_until("document.getElementById('order-title').textContent === 'Order W-3'")
        page.click("#order-allocate")
        page.wait_for_selector("#order-body tr.allocation")
        assert _api(ops_server, "/api/v1/orders/W-3")["status"] == "allocated"
        _buttons_are_big_enough(console, "orders")
        _shoot(console, "orders")

        # release a wave of LAX, one line per assignment
        page.select_option("#orders-release-warehouse", "LAX")
        page.fill("#orders-releaseLines", "1")
        page.click("#orders-release-submit")
        page.wait_for_selector("#waves-message:not([hidden])")
        waves = _api(ops_server, "/api/v1/waves")["items"]
        assert [w["warehouse"] for w in waves] == ["LAX"]
        wave = waves[0]["number"]
        assert f"Wave {wave} released" in _text(console, "#waves-message")
        page.wait_for_selector(f"#waves-table tr[data-wave='{wave}']")
        released = _api(ops_server, f"/api/v1/waves/{wave}")["assignments"]
        assert len(released) == waves[0]["assignments"] == 3  # W-1, W-2, W-3: a line each
        console.wait_until(
            "document.querySelectorAll('#wave-body tr[data-assignment]').length === 3"
        )

        # more urgent
        page.fill(f"#wave-priority-{wave}", "2")
        page.press(f"#wave-priority-{wave}", "Enter")  # from the keyboard
        console.wait_until(
            f"document.querySelector(\"tr[data-wave='{wave}']\")?.dataset.priority === '2'"
        )
        assert _api(ops_server, f"/api/v1/waves/{wave}")["assignments"][0]["priority"] == 2

        # the wave's assignments: the first goes to the picker
        page.wait_for_selector("#wave-panel:not([hidden]) tr[data-assignment]")
        assignment = _api(ops_server, f"/api/v1/waves/{wave}")["assignments"][0]["number"]
        page.fill(f"#assign-picker-{assignment}", "picker")
        page.click(f"tr[data-assignment='{assignment}'] button.assign")
        console.wait_until(_data(f"tr[data-assignment='{assignment}']", "picker", "picker"))
        assert _api(ops_server, f"/api/v1/assignments/{assignment}")["picker"] == "picker"
        assert "picker" in _text(console, "#wave-message")

        # someone who is no picker is refused, and the page says why
        other = _api(ops_server, f"/api/v1/waves/{wave}")["assignments"][1]["number"]
        page.fill(f"#assign-picker-{other}", "manager")
        page.click(f"tr[data-assignment='{other}'] button.assign")
        page.wait_for_selector("#wave-message[data-kind='error']")
        assert "not an active picker" in _text(console, "#wave-message")
        assert _api(ops_server, f"/api/v1/assignments/{other}")["picker"] is None
        _buttons_are_big_enough(console, "orders")
        _shoot(console, "waves")

        console.language("zh-CN")
        assert _text(console, "#waves-list-title") == "波次"
        assert "已导入 3 个订单" in _text(console, "#orders-import-done")
        assert _text(console, f"tr[data-wave='{wave}'] button.set-priority") == "设置优先级"
        console.language("en-US")
    assert console.page_errors == []
    assert console.console_errors == REFUSED  # nothing else went wrong


def _local_time(console: ConsolePage, iso: str) -> str:
    """An API time as the en-US console writes it, in the browser's own time zone."""
    zone = console.page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    at = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    hour = at.hour % 12 or 12
    return (
        f"{at.month}/{at.day}/{at.year % 100}, {hour}:{at:%M:%S} {'AM' if at.hour < 12 else 'PM'}"
    )


@pytest.mark.browser
def test_stock_ledger_and_labels_on_a_tablet(ops_server: ServerProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=ops_server.url) as client:
        moved = client.post(
            "/api/v1/movements",
            json={
                "warehouse": "LAX",
                "sku": "SERUM",
                "lot": "L-2027",
                "from_location": "A-01-02",
                "to_location": "A-01-03",
                "quantity": 3,
                "reason": "replenish",
                "reference": "REPLEN-7",
            },
            headers=auth(client, "supervisor"),
        )
        assert moved.status_code == 201, moved.text

    with console_page(ops_server.url, tmp_path, viewport=(768, 1024)) as console:
        page = console.page
        console.sign_in("supervisor", PASSWORD)
        console.open("stock")

        # by SKU: every row the API has, and the SKU's movements
        page.fill("#stock-sku", "CASE")
        page.click("#stock-search")
        page.wait_for_selector("#stock-result tr[data-sku='CASE']")
        stock = _api(ops_server, "/api/v1/stock", sku="CASE")["items"]
        rows = page.eval_on_selector_all(
            "#stock-result tbody tr",
            "rows => rows.map(r => r.dataset.location + '@' + r.cells[0].textContent)",
        )
        assert sorted(rows) == sorted(f"{s['location']}@{s['warehouse']}" for s in stock)
        movements = _api(ops_server, "/api/v1/movements", sku="CASE")
        console.wait_until(
            f"document.querySelectorAll('#ledger tr.movement').length === {movements['total']}"
        )
        first = movements["items"][0]
        when = page.get_attribute(f"#ledger tr.movement[data-id='{first['id']}'] time", "datetime")
        assert when == first["created_at"]
        shown = _text(console, f"#ledger tr.movement[data-id='{first['id']}'] td.when")
        assert shown == _local_time(console, first["created_at"])
        assert (
            _text(console, f"#ledger tr.movement[data-id='{first['id']}'] td.who") == first["actor"]
        )

        # by lot: where it is, and its full trace (received, then moved with a reference)
        page.click("button[data-i18n='stock.clear']")
        page.fill("#stock-sku", "SERUM")
        page.fill("#stock-lot", "L-2027")
        page.click("#stock-search")
        console.wait_until("document.getElementById('ledger').dataset.trace === 'lot'")
        assert _text(console, "#ledger-title") == "Full trace of lot L-2027 of SERUM"
        where = _api(ops_server, "/api/v1/stock", sku="SERUM", lot="L-2027")["items"]
        console.wait_until(
            f"document.querySelectorAll('#stock-result tbody tr').length === {len(where)}"
        )
        trace = _api(ops_server, "/api/v1/movements", sku="SERUM", lot="L-2027")["items"]
        assert [m["kind"] for m in trace] == ["move", "receipt"]
        kinds = page.eval_on_selector_all(
            "#ledger tr.movement", "rows => rows.map(r => r.dataset.kind)"
        )
        assert kinds == [m["kind"] for m in trace]
        move = f"#ledger tr.movement[data-id='{trace[0]['id']}']"
        assert _text(console, f"{move} td.who") == "supervisor"
        assert "replenish" in _text(console, f"{move} td.why")
        assert "REPLEN-7" in _text(console, f"{move} td.why")

        # by serial: where the unit is, and its trace
        page.click("button[data-i18n='stock.clear']")
        page.fill("#stock-serial", "SN-2")
        page.click("#stock-search")
        console.wait_until("document.getElementById('ledger').dataset.trace === 'serial'")
        page.wait_for_selector("#stock-result tr[data-serial='SN-2']")
        unit = _api(ops_server, "/api/v1/serials", serial="SN-2")["items"]
        assert [u["location"] for u in unit] == ["A-01-04"]
        assert "A-01-04" in _text(console, "#stock-result tr[data-serial='SN-2']")
        units = _api(ops_server, "/api/v1/movements", serial="SN-2")
        assert units["total"] >= 1
        console.wait_until(_count("#ledger tr.movement", units["total"]))
        assert _text(console, "#ledger-title") == "Full trace of serial SN-2"

        # back to the lot for the screenshot
        page.click("button[data-i18n='stock.clear']")
        page.fill("#stock-sku", "SERUM")
        page.fill("#stock-lot", "L-2027")
        page.click("#stock-search")
        console.wait_until("document.getElementById('ledger').dataset.trace === 'lot'")
        _buttons_are_big_enough(console, "stock")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        _shoot(console, "stock")

        # labels of LAX's aisle slots: check digits large, a Code 128 barcode with bars
        page.select_option("#labels-warehouse", "LAX")
        page.fill("#labels-prefix", "A-01")
        page.click("#labels-show")
        locations = [
            loc
            for loc in _api(ops_server, "/api/v1/warehouses/LAX/locations", limit=500)["items"]
            if loc["code"].startswith("A-01")
        ]
        assert len(locations) == 6
        console.wait_until(
            f"document.querySelectorAll('#labels .label').length === {len(locations)}"
        )
        for loc in locations:
            label = f"#labels .label[data-location='{loc['code']}']"
            assert _text(console, f"{label} .check-digits") == loc["check_digits"]
            assert _text(console, f"{label} .label-code") == loc["code"]
            bars = page.eval_on_selector_all(
                f"{label} svg.barcode rect",
                "rects => rects.filter(r => Number(r.getAttribute('width')) > 0).length",
            )
            assert bars > 10, (loc["code"], bars)
        digits_px = page.eval_on_selector(
            "#labels .check-digits", "e => parseFloat(getComputedStyle(e).fontSize)"
        )
        code_px = page.eval_on_selector(
            "#labels .label-code", "e => parseFloat(getComputedStyle(e).fontSize)"
        )
        assert digits_px >= 2 * code_px
        page.evaluate("() => { window.__printed = 0; window.print = () => window.__printed++; }")
        page.click("#labels-print")
        assert page.evaluate("window.__printed") == 1
        page.emulate_media(media="print")
        _shoot(console, "labels")
        page.emulate_media(media="screen")

        console.language("zh-CN")
        assert _text(console, "#labels-title") == "库位标签"
        assert _text(console, "#ledger-title") == "SERUM 批次 L-2027 的完整追溯"
        console.language("en-US")
    assert console.page_errors == []
    assert console.console_errors == []
