"""A whole assignment walked by a person with a headset (bench/walk.py) against a real
`wavepick serve` with warm speech: the microphone streams in real time over a -60 dBFS
floor, and every digit answer (check digits of two and three digits, a two-digit quantity,
the last four digits of two serials) is spoken by a human voice of fsdd-dev, 25 dB quieter
than recorded, with 300 ms between digits, as pickers read digits off a label one by one.
Each answer must be heard as one answer and never acted on as a command, the walk must end
at staging, and stock must still equal the ledger. A second assignment is walked the same
way with the headset's audio on WebRTC (Opus both ways) instead of binary socket frames.

The floor is small and fixed (two assignments of three lines in LAX) so that each walk,
paced by the clock like a person, takes well under a minute; one server (its speech warmed
up once) serves both; bench/walk.py walks the demo's assignments."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench._walk_score import HeardFrame, WalkedAnswer
from bench._walker import Earpiece, PromptSeen, time_the_answers
from bench.walk import ServeProcess, WalkReport, walk
from server.migrate import upgrade
from server.simulate import Floor
from tests.conftest import FSDD, require_service
from tests.factories import PASSWORD, FloorLine, pick_floor, release_next_order

pytestmark = pytest.mark.slow

SPEAKER = "jackson"
PHONES = ("SN-4471-0912", "SN-4471-3385", "SN-5520-7046")
WATCHES = ("WA-2210-5531", "WA-2210-6084")
PLAN = (
    ("A-01-01", "57", "PHONE", 2),
    ("A-01-02", "31", "CASE", 10),
    ("A-01-03", "846", "LAMP", 3),
)
WEBRTC_PLAN = (  # the second assignment, walked with WebRTC audio
    ("A-01-04", "62", "CABLE", 4),
    ("A-01-05", "19", "WATCH", 1),
    ("A-01-06", "703", "MUG", 12),
)


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[FloorLine]]:
    """LAX with the two assignments (the first released) on SQLite: its URL and lines."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('walk-db') / 'wavepick.db'}"
    upgrade(database_url)
    serials = {"PHONE": PHONES, "WATCH": WATCHES}
    lines = pick_floor(database_url, PLAN + WEBRTC_PLAN, serials=serials, orders=2)
    return database_url, lines


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, floor: tuple[str, list[FloorLine]]
) -> Iterator[ServeProcess]:
    """`wavepick serve` on the floor, speech warmed up."""
    folder = tmp_path_factory.mktemp("walk")
    with ServeProcess(folder, password=PASSWORD, demo=False, database_url=floor[0]) as server:
        yield server


@pytest.fixture
def fsdd() -> Path:
    if not FSDD.is_dir():
        require_service("the human recordings of fsdd-dev", f"not found at {FSDD}")
    return FSDD


@pytest.mark.timeout(420)
def test_a_whole_assignment_walked_with_a_human_voice(
    server: ServeProcess, floor: tuple[str, list[FloorLine]], fsdd: Path
) -> None:
    report = asyncio.run(_walk(server.url, floor[1], fsdd, "socket"))
    _check(report, len(PLAN), serials=2)


@pytest.mark.timeout(420)
def test_a_whole_assignment_walked_with_a_human_voice_on_webrtc_audio(
    server: ServeProcess, floor: tuple[str, list[FloorLine]], fsdd: Path
) -> None:
    """The same walk with the microphone and the prompts on a WebRTC track (Opus at 48 kHz
    both ways, resampled to the session's 8 kHz) once the peer connection is up."""
    release_next_order(floor[0])
    report = asyncio.run(_walk(server.url, floor[1], fsdd, "webrtc"))
    _check(report, len(WEBRTC_PLAN), serials=1)
    summary = json.dumps(report.to_json(), indent=1)
    assert report.webrtc is not None
    assert report.webrtc["states"] == ["connected"], summary
    assert report.webrtc["microphone_s"] > 0, summary
    assert report.webrtc["prompt_audio_s"] > 0, summary


def test_an_answer_is_timed_to_the_prompt_its_reading_brought() -> None:
    """The server may end an answer before its last trimmed sample is sent (a quiet word's
    tail under the floor): the prompt it brought then starts first, and the answer is timed
    0 ms, not to the next prompt after its last sample (the typed "sign off", seconds on).
    The rest of it, heard later and dropped as said to an earlier prompt, brings none."""
    ear = Earpiece()
    report = WalkReport("jackson", 8000, 300, -25.0, -60.0, seed=1)
    report.answers = [
        WalkedAnswer("quantity", "3", (4,), 45.0, started=10.0, ended=10.5),
        WalkedAnswer("serial", "0246", (5, 6, 7, 8), 45.0, started=12.0, ended=15.0),
    ]
    ear.heard = [
        HeardFrame(10.7, "three", True, 1.0, "speech", "quantity"),
        HeardFrame(14.99, "zero two four six", True, 1.0, "speech", "serial"),
        HeardFrame(15.2, "six", False, 0.0, "speech", "deliver"),  # dropped
        HeardFrame(18.99, "sign off", True, 1.0, "text", "deliver"),
    ]
    ear.prompts = [
        PromptSeen(1, "serial", "Serial 1 of 1.", {}, at=10.71, first_audio_at=10.72),
        PromptSeen(2, "deliver", "Assignment complete.", {}, at=14.99, first_audio_at=14.995),
        PromptSeen(3, "sign_off", "Sign off?", {}, at=19.0, first_audio_at=19.01),
    ]

    time_the_answers(ear, report)

    assert [a.latency_s for a in report.answers] == [pytest.approx(0.22), 0.0]


def _check(report: WalkReport, lines: int, *, serials: int) -> None:
    figures = report.counts()
    summary = json.dumps(report.to_json(detail=True), indent=1)

    assert report.finished, summary
    assert report.line_status == {"picked": lines}, summary
    assert figures["answers"] >= 2 * lines + serials, summary  # a serial for each unit
    assert figures["fragments"] == 0, summary
    assert figures["false_commands"] == 0, summary
    assert report.stock_consistent is True, summary


async def _walk(url: str, lines: list[FloorLine], fsdd: Path, transport: str) -> WalkReport:
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
        transport=transport,
    )


async def _token(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post(
        "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    response.raise_for_status()
    return f"Bearer {response.json()['access_token']}"
