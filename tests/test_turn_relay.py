"""A room call through a real TURN relay: coturn (Debian `turnserver`) with the TURN REST
API secret, a WavePick server that hands out credentials signed with it, and clients and
the server's own peer connections allowed relayed candidates only — so media flows
through coturn, or not at all."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rtc.client import RoomClient
from rtc.synthetic import ColorTrack, ToneTrack, dominant_frequency, mean_rgb
from server.db import make_engine, make_session_factory, transaction
from tests import factories as f
from tests.conftest import ServerProcess, free_port, require_service


@dataclass(frozen=True)
class Turn:
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[Turn]:
    """coturn on a free loopback port, with a fresh shared secret."""
    binary = shutil.which("turnserver")
    if binary is None:
        require_service("coturn (`turnserver`, Debian coturn)", "not installed")
        raise AssertionError("unreachable")
    port, secret, log = free_port(), secrets.token_urlsafe(32), tmp_path / "turn.log"
    process = subprocess.Popen(
        [
            binary,
            "-n",  # no configuration file: everything is on this line
            *("--listening-ip", "127.0.0.1", "--listening-port", str(port)),
            *("--relay-ip", "127.0.0.1", "--allow-loopback-peers"),
            *("--use-auth-secret", "--static-auth-secret", secret, "--realm", "wavepick.test"),
            *("--no-tls", "--no-dtls", "--no-cli", "--fingerprint"),
            *("--log-file", str(log), "--simple-log", "--verbose"),
            *("--pidfile", str(tmp_path / "turnserver.pid")),
            *("--userdb", str(tmp_path / "turndb")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while "UDP listener opened" not in (log.read_text() if log.exists() else ""):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"turnserver did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Turn(port, secret, log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def candidates(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


def test_a_call_through_a_turn_relay_only(turn: Turn, sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    f.seed_users(sessions)
    with transaction(sessions) as session:
        f.warehouse(session, "LAX", country="US", at=f.LOS_ANGELES)
    engine.dispose()
    server = ServerProcess(
        sqlite_url,
        tmp_path,
        {
            "WAVEPICK_TURN_URLS": turn.url,
            "WAVEPICK_TURN_SECRET": turn.secret,
            "WAVEPICK_RTC_RELAY_ONLY": "true",
        },
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            opened = http.post(
                "/api/v1/rooms", json={"warehouse": "LAX"}, headers=f.auth(http, "supervisor")
            )
            assert opened.status_code == 201, opened.text
            room = opened.json()["id"]
            tickets = []
            for user in ("manager", "supervisor"):
                issued = http.post("/api/v1/auth/ticket", headers=f.auth(http, user))
                tickets.append(issued.json()["ticket"])
        base = server.url.replace("http://", "ws://", 1)
        asyncio.run(call(f"{base}/ws/rooms/{room}", tickets, turn))
    finally:
        server.stop()
    # coturn relayed it: allocations for the users the server signed for, and the media's
    # bytes in the usage it logs as the released allocations close
    users = ("manager", "supervisor", "wavepick")
    deadline = time.monotonic() + 30
    while min(relayed(turn.log, u) for u in users) < 10_000 and time.monotonic() < deadline:
        time.sleep(0.5)
    log = turn.log.read_text()
    for user in users:
        assert re.search(rf"user <\d+:{user}>.*ALLOCATE processed, success", log), user
        assert relayed(turn.log, user) >= 10_000, (user, log[-3000:])


def relayed(log: Path, user: str) -> int:
    """The most bytes one closed allocation of `user` received, as coturn logs it."""
    usage = rf"\busage: realm=<[^>]*>, username=<\d+:{user}>, rp=\d+, rb=(\d+)"
    return max((int(n) for n in re.findall(usage, log.read_text())), default=0)


async def call(url: str, tickets: list[str], turn: Turn) -> None:
    ana = RoomClient(
        f"{url}?ticket={tickets[0]}",
        tracks=[ToneTrack(400), ColorTrack((200, 40, 40))],
        relay_only=True,
    )
    ben = RoomClient(
        f"{url}?ticket={tickets[1]}",
        tracks=[ToneTrack(1000), ColorTrack((40, 40, 200))],
        relay_only=True,
    )
    try:
        joined = await ana.join()
        assert joined["ice_servers"] == [
            {
                "urls": [turn.url],
                "username": joined["ice_servers"][0]["username"],
                "credential": joined["ice_servers"][0]["credential"],
            }
        ]
        assert re.fullmatch(r"\d+:manager", joined["ice_servers"][0]["username"])
        await ben.join()

        def hears_and_sees(client: RoomClient, other: RoomClient, tone: float) -> bool:
            assert other.participant is not None
            video = client.last_frame(other.participant, "video")
            audio = client.last_frame(other.participant, "audio")
            return (
                video is not None
                and audio is not None
                and client.received[(other.participant, "video")] >= 10
                and abs(dominant_frequency(audio) - tone) <= 60
                and max(mean_rgb(video)) > 150
            )

        await ana.until(
            lambda: hears_and_sees(ana, ben, 1000) and hears_and_sees(ben, ana, 400), 90
        )
        for client in (ana, ben):
            assert client.pc is not None
            for description in (client.pc.localDescription, client.pc.remoteDescription):
                found = candidates(description.sdp)
                assert found and all(" typ relay" in line for line in found), found
    finally:
        await ana.close()
        await ben.close()
