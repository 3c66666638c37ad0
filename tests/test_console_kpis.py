"""The console's KPI screen in real headless Chromium against a real server process: a
morning of real picking (a full pick, a short settled by a recount that matched the books)
and answers heard on a headset, then every chart drawn with data, in English and Chinese,
and a table exported as CSV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.db import make_engine, make_session_factory, transaction
from server.services.answers import AnswerJudged, record_answer
from tests.browser import require_chromium
from tests.conftest import ServerProcess, serving
from tests.console_browser import console_page, screenshot
from tests.factories import PASSWORD, auth, pick_floor

CHARTS = (
    "picker-rate",
    "warehouse-rate",
    "hourly",
    "accuracy",
    "recognition",
    "inventory",
    "cycle",
    "slow",
)
PLAN = (
    ("A-01-01", "57", "CASE", 3),
    ("A-01-02", "31", "CABLE", 2),
    ("A-01-03", "84", "LAMP", 4),
    ("A-01-04", "62", "MUG", 1),
)


@pytest.fixture
def picked(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server where `picker` picked HS-1 (CASE in full, CABLE one short), a manager had
    the short slot recounted and the count matched, and the headset heard answers."""
    require_chromium()
    pick_floor(sqlite_url, PLAN, orders=2)
    with serving(sqlite_url, tmp_path) as server, httpx.Client(base_url=server.url) as http:
        picker, manager = auth(http, "picker"), auth(http, "manager")
        work = http.post(
            "/api/v1/assignments/sign-on", json={"warehouse": "LAX"}, headers=picker
        ).json()
        first, second = sorted(work["lines"], key=lambda line: line["sequence"])
        confirm = {"quantity": 3, "token": "kpi-1"}
        http.post(f"/api/v1/pick-lines/{first['id']}/confirm", json=confirm, headers=picker)
        recorded = answers(sqlite_url)  # while the assignment is in progress
        short = {"picked": 1, "token": "kpi-2"}
        http.post(f"/api/v1/pick-lines/{second['id']}/short", json=short, headers=picker)
        http.post(f"/api/v1/assignments/{work['number']}/complete", headers=picker)
        (opened,) = http.get("/api/v1/exceptions", headers=manager).json()["items"]
        decide = {"resolution": "count it again", "outcome": "recount"}
        http.post(f"/api/v1/exceptions/{opened['id']}/resolve", json=decide, headers=manager)
        recount = next(
            e
            for e in http.get("/api/v1/exceptions", headers=manager).json()["items"]
            if e["kind"] == "recount"
        )
        matched = {"resolution": "one on the shelf, as the books say"}
        response = http.post(
            f"/api/v1/exceptions/{recount['id']}/resolve", json=matched, headers=manager
        )
        assert response.status_code == 200, response.text
        assert recorded == 3
        yield server


def answers(database_url: str) -> int:
    """What a headset reports as it hears the picker (see server/headset/floor.py): the
    check digits refused once, then taken; the quantity taken at once."""
    engine = make_engine(database_url)
    heard = [("location", False, 0), ("location", True, 1), ("quantity", True, 0)]
    with transaction(make_session_factory(engine)) as session:
        for state, accepted, reprompts in heard:
            judged = AnswerJudged(state, "speech", "five seven", 0.7, accepted, reprompts)
            record_answer(session, "picker", judged)
    engine.dispose()
    return len(heard)


@pytest.mark.browser
def test_every_kpi_chart_is_drawn_with_data_and_a_table_exports(
    picked: ServerProcess, tmp_path: Path
) -> None:
    with console_page(picked.url, tmp_path, viewport=(1280, 1400)) as console:
        console.sign_in("supervisor", PASSWORD)
        console.open("kpis")
        page = console.page
        for chart in CHARTS:
            page.wait_for_selector(f"[data-chart='{chart}']:not([data-points='0'])")
            drawn = page.evaluate(
                """(id) => {
                  const canvas = document.querySelector(`[data-chart='${id}'] canvas`);
                  const pixels = canvas.getContext('2d')
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                  let ink = 0;
                  for (let i = 3; i < pixels.length; i += 4) ink += pixels[i] > 0;
                  return {ink, chart: !!Chart.getChart(canvas)};
                }""",
                chart,
            )
            assert drawn["chart"] and drawn["ink"] > 500, (chart, drawn)
        screenshot(console, "kpis")

        with page.expect_download() as download:
            page.click("[aria-describedby='kpi-recognition-title']")
        exported = Path(download.value.path()).read_text().splitlines()
        assert exported[0].startswith("warehouse,picker,answers,refused")
        assert exported[1].startswith("LAX,picker,3,1,2,1,0.5,")

        console.language("zh-CN")
        assert page.text_content("#screen-kpis-title") == "指标"
        assert page.text_content("#kpi-recognition-title") == "每位拣货员的语音识别"
        page.wait_for_selector("[data-chart='recognition']:not([data-points='0'])")
        screenshot(console, "kpis-zh")
    assert console.page_errors == []
    assert console.console_errors == []
