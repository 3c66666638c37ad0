"""A whole assignment walked by a person with a headset (bench/walk.py) against a real
`wavepick serve` with warm speech: the microphone streams in real time over a -60 dBFS
floor, and every digit answer (check digits of two and three digits, a two-digit quantity,
the last four digits of two serials) is spoken by a human voice of fsdd-dev, 25 dB quieter
than recorded, with 300 ms between digits, as pickers read digits off a label one by one.
Each answer must be heard as one answer and never acted on as a command, the walk must end
at staging, and stock must still equal the ledger.

The floor is small and fixed (three lines in LAX) so that the walk, paced by the clock like
a person, takes well under a minute; bench/walk.py walks the demo's assignments."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from bench.walk import FSDD, ServeProcess, WalkReport, walk
from server.simulate import Floor
from tests.conftest import require_service
from tests.factories import PASSWORD, FloorLine, pick_floor

pytestmark = pytest.mark.slow

SPEAKER = "jackson"
PHONES = ("SN-4471-0912", "SN-4471-3385", "SN-5520-7046")
PLAN = (
    ("A-01-01", "57", "PHONE", 2),
    ("A-01-02", "31", "CASE", 10),
    ("A-01-03", "846", "LAMP", 3),
)


@pytest.fixture
def fsdd() -> Path:
    if not FSDD.is_dir():
        require_service("the human recordings of fsdd-dev", f"not found at {FSDD}")
    return FSDD


@pytest.mark.timeout(420)
def test_a_whole_assignment_walked_with_a_human_voice(
    tmp_path: Path, sqlite_url: str, fsdd: Path
) -> None:
    lines = pick_floor(sqlite_url, PLAN, serials={"PHONE": PHONES})
    with ServeProcess(tmp_path, password=PASSWORD, demo=False, database_url=sqlite_url) as server:
        report = asyncio.run(_walk(server.url, lines, fsdd))
    figures = report.counts()
    summary = json.dumps(report.to_json(detail=True), indent=1)

    assert report.finished, summary
    assert report.line_status == {"picked": len(PLAN)}, summary
    assert figures["answers"] >= 2 * len(PLAN) + 2, summary  # + a serial for each phone
    assert figures["fragments"] == 0, summary
    assert figures["false_commands"] == 0, summary
    assert report.stock_consistent is True, summary


async def _walk(url: str, lines: list[FloorLine], fsdd: Path) -> WalkReport:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        token = (await _token(http, "picker")).split()[1]
        admin = {"Authorization": await _token(http, "admin")}
    floor = Floor(
        tokens=[token],
        check_digits={("LAX", line.location): line.check_digits for line in lines},
        admin_headers=admin,
    )
    return await walk(
        url,
        token,
        floor,
        speaker=SPEAKER,
        rate=8000,
        gap_ms=300,
        gain_db=-25.0,
        floor_dbfs=-60.0,
        seed=7,
        fsdd=fsdd,
        max_turns=40,  # about four times what the three lines need: report, do not time out
    )


async def _token(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post(
        "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    response.raise_for_status()
    return f"Bearer {response.json()['access_token']}"
