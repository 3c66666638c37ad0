"""`wavepick simulate pickers` against a real server: simulated pickers work through their
assignments, serialised SKUs included (they read the serials at the slot as a picker
reads the labels), and stock and ledger still agree afterwards."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server import simulate as simulation
from server.db import transaction
from server.headset.client import Exchange
from server.simulate import simulate
from server.tables import Movement, MovementKind
from tests.conftest import ServerProcess
from tests.factories import PASSWORD, pick_floor

PHONES = tuple(f"PH-{n}000-00{n}{n}" for n in range(1, 7))
PLAN = (("A-01-01", "57", "PHONE", 2), ("A-01-02", "31", "CASE", 1))


@pytest.fixture
def floor(database_url: str) -> None:
    pick_floor(database_url, PLAN, serials={"PHONE": PHONES})


@pytest.mark.usefixtures("floor")
def test_simulated_pickers_pick_serialised_skus(
    server_process: ServerProcess, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []  # pickers who asked the API where their assignment is
    ask = simulation._my_warehouse

    async def asking(http: object, token: str) -> str:
        asked.append(token)
        return await ask(http, token)  # type: ignore[arg-type]

    monkeypatch.setattr(simulation, "_my_warehouse", asking)
    result = asyncio.run(
        simulate(
            server_process.url,
            count=2,
            duration=60,
            audio=False,
            admin=("admin", PASSWORD),
            progress=lambda _text: None,
        )
    )

    assert result["errors"] == 0, result["error_samples"]
    assert result["stock_consistent"] is True
    with transaction(sessions) as session:
        phones = session.scalars(
            select(Movement).where(
                Movement.kind == MovementKind.pick, Movement.sku.has(code="PHONE")
            )
        ).all()
        picked = [serial for movement in phones for serial in movement.serials]
    # the floor's own assignment (2 phones, a case) and a phone and a case per simulated order
    assert len(picked) == len(set(picked)) == 4 and set(picked) <= set(PHONES)
    assert result["picks"] == 6
    # the waves the simulation released told it their warehouses: only the picker who got
    # the floor's own assignment, released before, had to ask
    assert len(asked) <= 1


class Refusing:
    """A headset client whose server says "try again later" `refusals` times, then
    prompts (the connection itself is what `_connect` isolates)."""

    def __init__(self, refusals: int, code: str = "store_unavailable") -> None:
        self.refusals, self.code = refusals, code
        self.prompt: dict[str, object] | None = None
        self.close_code: int | None = None
        self.connects = 0

    async def connect(self) -> Exchange:
        self.connects += 1
        if self.connects <= self.refusals:
            return Exchange(errors=[{"code": self.code, "message": "later"}])
        self.prompt = {"type": "prompt", "state": "assignment"}
        return Exchange(prompt=self.prompt)

    async def close(self) -> None:
        pass


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulation, "RECONNECT_WAIT_S", (0.0, 0.0))


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize("code", ["store_unavailable", "session_busy"])
def test_a_headset_told_to_try_again_later_connects_again(code: str) -> None:
    client, tally = Refusing(2, code), simulation.Tally()
    turn = asyncio.run(simulation._connect(client, tally))  # type: ignore[arg-type]
    assert turn.prompt is not None and client.connects == 3
    assert (tally.reconnects, tally.errors) == (2, [])


@pytest.mark.usefixtures("no_backoff")
def test_a_headset_refused_for_good_is_an_error_not_a_retry() -> None:
    client, tally = Refusing(1, "unauthorized"), simulation.Tally()
    asyncio.run(simulation._connect(client, tally))  # type: ignore[arg-type]
    assert client.connects == 1 and tally.reconnects == 0
    assert tally.errors == ["unauthorized: later"]


@pytest.mark.usefixtures("no_backoff")
def test_a_headset_still_refused_after_every_attempt_gives_up() -> None:
    client, tally = Refusing(99), simulation.Tally()
    with pytest.raises(ConnectionError):
        asyncio.run(simulation._connect(client, tally))  # type: ignore[arg-type]
    assert client.connects == simulation.RECONNECT_ATTEMPTS


def test_turn_latency_is_also_reported_window_by_window() -> None:
    """A shift's start (every picker signing on) and its steady state apart: turns heard
    in the first 15 s, none in the next, two in the third."""
    tally = simulation.Tally(latencies=[0.1, 0.2, 1.0, 0.05], heard_at=[100.5, 101, 131, 131.2])
    assert simulation._p95_by_window(tally, started=100.0, window=15.0) == [195.0, None, 952.5]
