"""A serialised SKU picked over the real headset socket with typed `say` frames (keypad
input, handled exactly like speech), against a real server process on SQLite and
PostgreSQL: each unit's serial by its last digits, a wrong and an ambiguous suffix, the
last serial sent twice and a reconnect right after it — and afterwards the serials are at
the staging location and the ledger moved the units exactly once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db import transaction
from server.headset.client import HeadsetClient
from server.tables import Location, Movement, MovementKind, Serial
from tests.conftest import ServerProcess
from tests.factories import FloorLine, auth, pick_floor

# Two phones end in 0012 at the slot; the picker takes PH-2000-0012 and PH-1000-0013.
PHONES = ("PH-1000-0012", "PH-2000-0012", "PH-1000-0013", "PH-1000-0014")
PLAN = (("A-01-01", "57", "PHONE", 2), ("A-01-02", "31", "CASE", 1))


@pytest.fixture
def floor(database_url: str) -> list[FloorLine]:
    return pick_floor(database_url, PLAN, serials={"PHONE": PHONES})


def test_a_serialised_line_picked_by_typed_serial_suffixes(
    floor: list[FloorLine], server_process: ServerProcess, sessions: sessionmaker[Session]
) -> None:
    url = server_process.url.replace("http://", "ws://") + "/ws/headset"
    with httpx.Client(base_url=server_process.url, timeout=30) as http:
        token = auth(http, "picker")["Authorization"].split()[1]
        supervisor = auth(http, "supervisor")
        asyncio.run(_pick(url, token, sessions))
        reconcile = http.get("/api/v1/reconcile", headers=supervisor).json()
        assert reconcile["consistent"] is True

    assert _where_the_phones_are(sessions) == {
        "PH-1000-0012": "A-01-01",
        "PH-2000-0012": "STAGE-1",
        "PH-1000-0013": "STAGE-1",
        "PH-1000-0014": "A-01-01",
    }
    assert _picks(sessions) == [("PHONE", 2, ["PH-2000-0012", "PH-1000-0013"]), ("CASE", 1, [])]


async def _pick(url: str, token: str, sessions: sessionmaker[Session]) -> None:
    headset = HeadsetClient(url, token)
    await headset.connect()
    await headset.say("ready")
    await headset.say("57")
    turn = await headset.say("2")
    assert turn.prompt and turn.prompt["text"] == "Serial 1 of 2. Say the last 4 digits."
    assert turn.prompt["state"] == "serial"

    wrong = await headset.say("9999")
    assert wrong.heard and wrong.heard["accepted"]  # heard, then refused by the warehouse
    assert wrong.prompt and wrong.prompt["text"] == (
        "No serial here ends in those digits. Serial 1 of 2. Say the last 4 digits."
    )
    assert _where_the_phones_are(sessions)["PH-1000-0013"] == "A-01-01"
    assert _picks(sessions) == []

    ambiguous = await headset.say("0012")
    assert ambiguous.prompt and ambiguous.prompt["text"] == (
        "More than one serial here ends in those digits. Serial 1 of 2. Say the last 8 digits."
    )
    assert not any(p[-6:] in ambiguous.prompt["text"].replace(" ", "") for p in PHONES)
    turn = await headset.say("20000012")
    assert turn.prompt and turn.prompt["text"] == "Serial 2 of 2. Say the last 4 digits."
    assert _picks(sessions) == []  # nothing moves until every serial is given

    await headset.send_json({"type": "say", "text": "0013"})  # the last serial, twice,
    await headset.say("0013")
    await headset.drop()  # and the picker walks out of coverage
    headset = HeadsetClient(url, token)
    resumed = await headset.connect()
    assert resumed.prompt is not None
    if resumed.prompt["state"] == "serial":  # the drop came before the answer was handled
        await headset.say("0013")
    else:
        assert resumed.prompt["state"] == "location"
        replayed = await headset.say("0013")  # a replay: no serial is asked for any more
        assert replayed.heard and not replayed.heard["accepted"]
    assert headset.prompt and headset.prompt["display"]["location"] == "A-01-02"

    await headset.say("31")
    delivered = await headset.say("1")
    assert delivered.prompt and delivered.prompt["state"] == "deliver"
    await headset.close()


def _where_the_phones_are(sessions: sessionmaker[Session]) -> dict[str, str]:
    with transaction(sessions) as session:
        rows = session.execute(
            select(Serial.serial, Location.code).join(Location, Location.id == Serial.location_id)
        ).all()
        return {serial: location for serial, location in rows}


def _picks(sessions: sessionmaker[Session]) -> list[tuple[str, int, list[str]]]:
    with transaction(sessions) as session:
        movements = session.scalars(
            select(Movement).where(Movement.kind == MovementKind.pick).order_by(Movement.id)
        ).all()
        return [(m.sku.code, m.quantity, list(m.serials)) for m in movements]
