"""`wavepick simulate pickers`: N simulated pickers working a running server over real
WebSockets, to measure pick throughput and turn latency (answer sent → first audio byte of
the next prompt) and to check that stock and ledger still agree afterwards.

The simulation sets up its own work through the HTTP API, as a supervisor would: picker
users `sim-NNN`, one order per picker from stock on hand, and waves of assignments. Each
picker answers what its prompt asks — "ready", the check digits of the slot (from the
supervisor's location list, as printed on the labels), the quantity, and for a serialised
SKU the last digits of each unit's serial (from the supervisor's serial list for the slot,
as a picker reads them off the units) — typed (`say`) or, with `audio`, spoken by the
server's own speech synthesizer.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from server.headset.client import Exchange, HeadsetClient
from server.services.serials import digits_of

SIM_PASSWORD = "simulated-picker-pw"


@dataclass
class Tally:
    picks: int = 0
    turns: int = 0
    not_understood: int = 0
    reconnects: int = 0  # connections the server asked to retry later (1013, session_busy)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    heard_at: list[float] = field(default_factory=list)  # when each latency ended (monotonic)


# what tells a headset to connect again in a moment rather than give up: these error
# codes, or a close with code 1013 (try again later)
RETRY_CODES = ("store_unavailable", "session_busy")
TRY_AGAIN_LATER = 1013
RECONNECT_WAIT_S = (1.0, 8.0)  # first and longest wait, doubling
RECONNECT_ATTEMPTS = 6
LATENCY_WINDOW_S = 15.0  # the run's time cut into windows of this for `p95 by window`
SERIALS_IN_SIGHT = 20  # the units at a slot a picker may take, and read the label of


@dataclass(frozen=True)
class Floor:
    """What the simulated pickers know: their tokens, every slot's check digits, the
    warehouse of each assignment released (what its pick list's header says), and the
    admin's headers, which read the serials at a slot (what the units' labels say)."""

    tokens: list[str]
    check_digits: dict[tuple[str, str], str]
    admin_headers: dict[str, str]
    warehouse_of: dict[str, str] = field(default_factory=dict)  # assignment number -> code


@dataclass
class Hands:
    """A simulated picker's line in hand: the serials read off its units so far (taken or
    refused, each is read once), and how many units it had when it said "short"."""

    read: list[str] = field(default_factory=list)
    short_of: int | None = None


async def prepare(
    base_url: str, admin: tuple[str, str], count: int, progress: Callable[[str], None] = print
) -> Floor:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        headers = await _login(http, *admin)
        warehouses = [
            w["code"]
            for w in (await http.get("/api/v1/warehouses", headers=headers))
            .raise_for_status()
            .json()["items"]
        ]
        digits: dict[tuple[str, str], str] = {}
        available: dict[str, list[dict[str, Any]]] = {}
        for code in warehouses:
            for page in range(0, 10_000, 500):
                locations = (
                    await http.get(
                        f"/api/v1/warehouses/{code}/locations",
                        params={"limit": 500, "offset": page},
                        headers=headers,
                    )
                ).json()
                digits.update(
                    {(code, loc["code"]): loc["check_digits"] for loc in locations["items"]}
                )
                if page + 500 >= locations["total"]:
                    break
            stock = (
                await http.get(
                    "/api/v1/stock", params={"warehouse": code, "limit": 500}, headers=headers
                )
            ).json()["items"]
            available[code] = [s for s in stock if s["available"] > 0 and not s["lot"]]
        names = [f"sim-{n:03d}" for n in range(1, count + 1)]
        progress(f"creating {count} picker users")
        for name in names:
            response = await http.post(
                "/api/v1/users",
                headers=headers,
                json={
                    "username": name,
                    "password": SIM_PASSWORD,
                    "role": "picker",
                    "warehouses": warehouses,
                },
            )
            if response.status_code == 409:  # from an earlier run: working where we work now
                response = await http.put(
                    f"/api/v1/users/{name}/warehouses",
                    headers=headers,
                    json={"warehouses": warehouses},
                )
            response.raise_for_status()
        progress("creating orders and releasing waves")
        rng = random.Random(count)
        stamp = int(time.time())
        for n in range(count):
            code = warehouses[n % len(warehouses)]
            lines = rng.sample(available[code], min(6, len(available[code])))
            await http.post(
                "/api/v1/orders",
                params={"allocate": "true"},
                headers=headers,
                json={
                    "number": f"SIM-{stamp}-{n:04d}",
                    "country": _country(code),
                    "lines": [{"sku": s["sku"], "quantity": 1} for s in lines],
                },
            )
        warehouse_of: dict[str, str] = {}
        for code in warehouses:
            wave = await http.post(
                "/api/v1/waves",
                headers=headers,
                json={"warehouse": code, "lines_per_assignment": 6},
            )
            if wave.is_success:
                numbers = [str(a["number"]) for a in wave.json()["assignments"]]
                warehouse_of.update(dict.fromkeys(numbers, code))
        progress("signing the pickers in")
        tokens = [
            (await _login(http, name, SIM_PASSWORD))["Authorization"].split()[1] for name in names
        ]
        return Floor(
            tokens=tokens, check_digits=digits, admin_headers=headers, warehouse_of=warehouse_of
        )


def _country(warehouse: str) -> str:
    return {"SZX": "CN", "LAX": "US", "FRA": "DE"}.get(warehouse, "US")


async def _login(http: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await http.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class SpokenAnswers:
    """Spoken answers, synthesized once per text (a picker says the same words all day)."""

    def __init__(self, sample_rate: int) -> None:
        from voice.grammar import load_vocabulary
        from voice.tts import Synthesizer

        self.sample_rate = sample_rate
        self.vocabulary = load_vocabulary("en-US")
        self.synthesizer = Synthesizer()

    def words(self, answer: str) -> np.ndarray:
        spoken = " ".join(self.vocabulary.spoken(c) for c in answer) if answer.isdigit() else answer
        pcm = self.synthesizer.synthesize(spoken, locale="en-US", sample_rate=self.sample_rate)
        return _sound_only(np.frombuffer(pcm, dtype="<i2"))


def _sound_only(samples: np.ndarray) -> np.ndarray:
    """The synthesized answer without the silence the synthesizer puts around it, so the
    turn is timed from where the voice stops."""
    audible = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    return samples[audible[0] : audible[-1] + 1] if len(audible) else samples


async def run_picker(
    http: httpx.AsyncClient,
    token: str,
    floor: Floor,
    deadline: float,
    tally: Tally,
    voice: SpokenAnswers | None,
    think: float,
) -> None:
    url = str(http.base_url).rstrip("/").replace("http", "ws", 1) + "/ws/headset"
    client = HeadsetClient(url, token, turn_timeout=60)
    warehouse = ""
    hands = Hands()
    try:
        turn = await _connect(client, tally)
        while time.monotonic() < deadline and not turn.closed:
            prompt = client.prompt or {}
            if prompt.get("state") == "location":
                hands = Hands()  # a new line
                warehouse = warehouse or await _my_warehouse(http, token)
            elif prompt.get("state") == "assignment":  # each may be in another warehouse
                number = str(prompt.get("display", {}).get("assignment", ""))
                warehouse = floor.warehouse_of.get(number, "")
            if prompt.get("state") == "serial":
                answer = await _read_serial(http, floor, warehouse, prompt, hands)
            else:
                answer = _answer(prompt, floor, warehouse, hands)
            if think:  # walking to the slot, reading the label, reaching for the item
                await asyncio.sleep(random.uniform(0.5, 1.5) * think)
            if voice is not None:
                audio = await asyncio.to_thread(voice.words, answer)
                turn = await client.speak(audio, realtime=True)
            else:
                turn = await client.say(answer)
            _count(tally, prompt, turn)
            if prompt.get("state") == "no_work" and answer == "sign off":
                turn = await client.say("yes")
                break
    except Exception as exc:  # a failed picker is a figure in the report, not a crash
        tally.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        await client.close()


async def _connect(client: HeadsetClient, tally: Tally) -> Exchange:
    """Connect and get the first prompt; when the server says to try again in a moment
    (its shared store did not answer in time, or the operator's session elsewhere is
    still letting go), wait and connect again, as the headset page does."""
    wait = RECONNECT_WAIT_S[0]
    for _ in range(RECONNECT_ATTEMPTS):
        turn = await client.connect()
        codes = {str(error.get("code")) for error in turn.errors}
        try_again = bool(codes & set(RETRY_CODES)) or client.close_code == TRY_AGAIN_LATER
        if client.prompt is not None or not try_again:
            tally.errors.extend(f"{e['code']}: {e['message']}" for e in turn.errors)
            if turn.closed and client.prompt is None:
                tally.errors.append(f"closed before the first prompt: {client.close_code}")
            return turn
        tally.reconnects += 1
        await client.close()
        await asyncio.sleep(random.uniform(0.5, 1.0) * wait)
        wait = min(wait * 2, RECONNECT_WAIT_S[1])
    raise ConnectionError(f"the server kept asking to try again later: {sorted(codes)}")


async def _my_warehouse(http: httpx.AsyncClient, token: str) -> str:
    """The warehouse of the picker's assignment in progress (what the picker can see), for
    a picker whose headset resumed past the assignment's first prompt."""
    response = await http.get(
        "/api/v1/assignments",
        params={"status": "in_progress"},
        headers={"Authorization": f"Bearer {token}"},
    )
    items = response.raise_for_status().json()["items"]
    return str(items[0]["warehouse"]) if items else ""


async def _read_serial(
    http: httpx.AsyncClient, floor: Floor, warehouse: str, prompt: dict[str, Any], hands: Hands
) -> str:
    """The last digits the prompt asks for of a unit at the slot not read yet; "short"
    when every unit there has been read (other pickers took the rest)."""
    display = prompt.get("display", {})
    response = await http.get(
        "/api/v1/serials",
        params={
            "warehouse": warehouse,
            "location": display["location"],
            "sku": display["sku"],
            "limit": SERIALS_IN_SIGHT,
        },
        headers=floor.admin_headers,
    )
    here = [item["serial"] for item in response.raise_for_status().json()["items"]]
    unread = [serial for serial in here if serial not in hands.read]
    if not unread:
        hands.short_of = int(display["serial"]) - 1
        return "short"
    serial = random.choice(unread)  # not the first: pickers at one slot would all take it
    hands.read.append(serial)
    return digits_of(serial)[-int(display["serial_digits"]) :]


def _answer(prompt: dict[str, Any], floor: Floor, warehouse: str, hands: Hands) -> str:
    state, display = prompt.get("state"), prompt.get("display", {})
    if state == "location":
        return floor.check_digits.get((warehouse, display.get("location", "")), "00")
    if state == "quantity":
        return str(display.get("quantity", 1))
    if state == "short" and hands.short_of is not None:
        return str(hands.short_of)
    return {"no_work": "sign off", "short": "cancel", "sign_off": "no"}.get(str(state), "ready")


def _count(tally: Tally, prompt: dict[str, Any], turn: Exchange) -> None:
    tally.turns += 1
    tally.errors.extend(f"{e['code']}: {e['message']}" for e in turn.errors)
    if turn.latency_s is not None:
        tally.latencies.append(turn.latency_s)
        tally.heard_at.append(time.monotonic())
    if turn.heard is not None and not turn.heard.get("accepted"):
        tally.not_understood += 1
    elif _line_confirmed(prompt, turn):
        tally.picks += 1


def _line_confirmed(prompt: dict[str, Any], turn: Exchange) -> bool:
    """The answer to a quantity (or a line's last serial) moved the dialog on to the next
    line or to staging."""
    moved_to = turn.prompt["state"] if turn.prompt else None
    return prompt.get("state") in ("quantity", "serial") and moved_to in ("location", "deliver")


def _p95_by_window(tally: Tally, started: float, window: float) -> list[float | None]:
    """Turn latency p95 in each `window` seconds of the run: whether a high p95 is the
    shift's start (sign-ons) or the steady state."""
    windows: list[list[float]] = []
    for at, latency in zip(tally.heard_at, tally.latencies, strict=True):
        n = max(0, int((at - started) // window))
        windows.extend([] for _ in range(n + 1 - len(windows)))
        windows[n].append(latency)
    return [_percentile(latencies, 95) for latencies in windows]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(float(np.percentile(values, q)) * 1000, 1)


async def simulate(
    base_url: str,
    *,
    count: int,
    duration: float,
    audio: bool,
    think: float = 0.0,
    ramp: float = 0.0,
    admin: tuple[str, str],
    progress: Callable[[str], None] = print,
    floor: Floor | None = None,
) -> dict[str, Any]:
    """`ramp`: seconds over which the pickers sign on, one after the other, as a shift
    starts (0: all at once); the `duration` counts from the first. `floor`: the work
    `prepare` already set up for `count` pickers (a bench that measures the picking alone)."""
    if floor is None:
        floor = await prepare(base_url, admin, count, progress)
    voice = SpokenAnswers(16000) if audio else None
    tally = Tally()
    progress(f"{count} pickers working for {duration:g} s")
    started = time.monotonic()

    async def picker(n: int, token: str, http: httpx.AsyncClient) -> None:
        await asyncio.sleep(ramp * n / count)
        await run_picker(http, token, floor, started + duration, tally, voice, think)

    # one pool of connections for the pickers' lookups, not a client (and TLS context) each;
    # an idle one is let go well before the server's keep-alive (uvicorn: 5 s) closes it,
    # or a lookup sent on it as it closes fails (ReadError)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(picker(n, token, http) for n, token in enumerate(floor.tokens)))
    elapsed = time.monotonic() - started
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        headers = await _login(http, *admin)
        reconcile = (await http.get("/api/v1/reconcile", headers=headers)).json()
    return {
        "pickers": count,
        "mode": "audio" if audio else "text",
        "think_s": think,
        "ramp_s": ramp,
        "duration_s": round(elapsed, 1),
        "picks": tally.picks,
        "picks_per_s": round(tally.picks / elapsed, 2),
        "turns": tally.turns,
        "not_understood": tally.not_understood,
        "turn_latency_ms": {
            "p50": _percentile(tally.latencies, 50),
            "p95": _percentile(tally.latencies, 95),
            "p99": _percentile(tally.latencies, 99),
            "mean": round(statistics.fmean(tally.latencies) * 1000, 1) if tally.latencies else None,
        },
        "turn_latency_p95_ms_by_window": {
            "window_s": LATENCY_WINDOW_S,
            "p95": _p95_by_window(tally, started, LATENCY_WINDOW_S),
        },
        "reconnects": tally.reconnects,
        "errors": len(tally.errors),
        "error_samples": sorted(set(tally.errors))[:10],
        "stock_consistent": reconcile.get("consistent"),
        "ledger_rows_checked": reconcile.get("rows_checked"),
    }
