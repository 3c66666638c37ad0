"""Rooms benchmark: what forwarding costs the server per stream and per participant, how
long a picture takes from camera to screen through it, and the largest room of 640×480
video that one core carries. Prints one JSON document.

    python bench/rooms.py [--participants 2 4 6 8 10 12 14 16] [--seconds 10]
                          [--transcoded 2 3] [--keep-going]

A real `wavepick serve` (its own SQLite file and demo users) hosts one room per size N:

- N−2 load participants, in one worker process, send pre-encoded 640×480 VP8 (about
  500 kbit/s at 30 fps, a keyframe every 2 s; made once with PyAV) and Opus (20 ms
  frames) from files (aiortc's MediaPlayer with `decode=False`: nothing is encoded on
  their side), and count what arrives by the RTP marker bit of each frame's last packet
  (nothing depacketized or decoded: their cost stays far below the server's);
- a probe sender, in this process, encodes live 640×480 VP8 frames that carry the moment
  they were made (`rtc.synthetic` stamps) and a tone;
- a probe receiver, sending the load media too, decodes the probe sender's video and
  reads the stamp: glass-to-glass latency from the frame being made to it being decoded
  (encode, the server, the receiver's jitter buffer and decode; no camera or screen), on
  one monotonic clock.

Per N, once every participant receives every other, for `--seconds`: the server
process's CPU time (user+system of all its threads, from /proc), the video frames every
participant received from the load senders against the 30 fps they send, and the probe's
latency. A size is sustained when 95 % of those frames arrive (90 % at the worst
participant), the latency p95 stays under 400 ms and the server stays under one core.
`largest_sustained` is the largest N that held; `fit` solves
cpu(N) = a·N(N−1) + b·N (forwarded streams, participants) over the sizes measured for the
N where it reaches one core. `--transcoded` sizes are run again with
WAVEPICK_ROOM_FORWARDING=transcoded (aiortc's MediaRelay: decoded once per sender,
encoded once per receiver) to compare. `machine` tells how busy the cores were with
anything else meanwhile; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: import this checkout's packages
    sys.path.insert(0, str(REPO))

import av  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

from bench._serve import ServeProcess  # noqa: E402
from bench.ledger import machine_cpu_seconds, process_tree_cpu_seconds  # noqa: E402
from rtc.client import RoomClient  # noqa: E402
from rtc.synthetic import ColorTrack, ToneTrack, now_ms, read_stamp  # noqa: E402

PASSWORD = "bench-rooms-password"
WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 500_000
MEDIA_SECONDS = 60  # longer than a size's run: the files do not loop mid-measurement
SETTLE_WITHIN = 90.0  # s for every participant to receive every other
DELIVERED_TARGET, WORST_TARGET = 0.95, 0.90
LATENCY_P95_TARGET_MS = 400
PARTICIPANTS_PER_CORE_TARGET = 8
COUNTING = 2  # load participants that count what they receive; the others only send


# ---- media ----------------------------------------------------------------------------


def make_media(folder: Path) -> tuple[Path, Path]:
    """640×480 VP8 of moving noise (enough detail to use its bitrate) and an Opus tone."""
    video, audio = folder / "load-640x480.webm", folder / "load-tone.ogg"
    if not video.exists():
        with av.open(str(video), "w") as out:
            stream: Any = out.add_stream("libvpx", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.bit_rate = VIDEO_BITRATE
            stream.codec_context.gop_size = 2 * FPS
            rate = str(VIDEO_BITRATE)  # constant bitrate, as aiortc's own VP8 encoder sets it
            stream.options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "lag-in-frames": "0",
                **{"minrate": rate, "maxrate": rate, "bufsize": rate},
            }
            scene = _Scene()
            for n in range(MEDIA_SECONDS * FPS):
                frame = av.VideoFrame.from_ndarray(scene.frame(n), format="yuv420p")
                frame.pts, frame.time_base = n, Fraction(1, FPS)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    if not audio.exists():
        with av.open(str(audio), "w") as out:
            sound: Any = out.add_stream("libopus", rate=48000)
            sound.layout, sound.bit_rate = "mono", 32_000
            t = np.arange(MEDIA_SECONDS * 48000) / 48000
            samples = (0.3 * 32767 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
            for start in range(0, len(samples), 960):
                chunk = av.AudioFrame.from_ndarray(
                    samples[start : start + 960].reshape(1, -1), format="s16", layout="mono"
                )
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return video, audio


class _Scene:
    """A camera-like scene: a lit gradient, grain, and a box moving over it."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        light = np.linspace(40, 200, WIDTH)[None, :] + np.linspace(0, 30, HEIGHT)[:, None]
        self.grain = [
            np.clip(light + rng.normal(0, 6, (HEIGHT, WIDTH)), 16, 235).astype(np.uint8)
            for _ in range(8)
        ]

    def frame(self, n: int) -> np.ndarray:
        planes = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
        planes[:HEIGHT] = self.grain[n % len(self.grain)]
        left = (n * 7) % (WIDTH - 120)
        top = int(HEIGHT / 2 + 120 * math.sin(n / 20)) - 60
        planes[top : top + 120, left : left + 120] = 220
        return planes


def file_tracks(video: Path, audio: Path) -> list[Any]:
    return [
        MediaPlayer(str(audio), decode=False).audio,
        MediaPlayer(str(video), decode=False).video,
    ]


# ---- participants ---------------------------------------------------------------------


def ssrc_sources(sdp: str) -> dict[int, tuple[str, str]]:
    """SSRC -> (participant, kind) of every m-section the server sends on."""
    sources: dict[int, tuple[str, str]] = {}
    kind = stream = None
    for line in [*sdp.splitlines(), "m=end"]:
        if line.startswith("m="):
            kind, stream = line[2:].split(" ", 1)[0], None
        elif line.startswith("a=msid:"):
            stream = line[7:].split()[0]
        elif line.startswith("a=ssrc:") and stream is not None and kind is not None:
            sources.setdefault(int(line[7:].split()[0]), (stream, kind))
    return sources


@dataclass
class CountingClient(RoomClient):
    """A participant that counts the frames it receives by the marker bit of their last
    RTP packet, without depacketizing or decoding (but tracks of `decode_from` go through
    aiortc as usual: the probe decodes one)."""

    counted: Counter[tuple[str, str]] = field(default_factory=Counter)

    def negotiated(self) -> None:
        assert self.pc is not None and self.pc.remoteDescription is not None
        sources = ssrc_sources(self.pc.remoteDescription.sdp)
        for transceiver in self.pc.getTransceivers():
            self._count_on(transceiver.receiver.transport, sources)

    def _count_on(self, transport: Any, sources: dict[int, tuple[str, str]]) -> None:
        handle = getattr(transport, "_bench_original", None) or transport._handle_rtp_data
        transport._bench_original = handle
        decoded = set(self.decode_from or ())

        async def count(data: bytes, arrival_time_ms: int) -> None:
            if len(data) < 12:
                return
            source = sources.get(int.from_bytes(data[8:12], "big"))
            if source is not None and source[0] in decoded:
                await handle(data, arrival_time_ms=arrival_time_ms)
            elif source is not None and data[1] & 0x80:
                self.counted[source] += 1

        transport._handle_rtp_data = count  # the bench only: skips aiortc's RTP path


def set_reading(client: RoomClient, reading: bool) -> None:
    """Stop (or resume) reading the client's UDP sockets: what the server sends it is
    dropped by the kernel, at no cost to this process (the bench only)."""
    assert client.pc is not None
    for transceiver in client.pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        for protocol in connection._protocols:
            transport: Any = protocol.transport  # a selector transport: it can pause
            if reading:
                transport.resume_reading()
            else:
                transport.pause_reading()


def load_worker(conn: Connection, urls: list[str], video: str, audio: str) -> None:
    """A process of load participants; answers "count", "quiet", "listen" and "stop" on
    `conn`. The first `COUNTING` count what they receive; while "quiet", the others stop
    reading (the server's work is the same, the machine's spare)."""
    asyncio.run(_load(conn, urls, Path(video), Path(audio)))


async def _load(conn: Connection, urls: list[str], video: Path, audio: Path) -> None:
    clients = []
    for url in urls:
        client = CountingClient(url, tracks=file_tracks(video, audio), decode=())
        await client.join()
        clients.append(client)
    conn.send({"participants": [c.participant for c in clients]})
    silent = clients[COUNTING:]
    while (command := await asyncio.to_thread(conn.recv)) != "stop":
        if command in ("quiet", "listen"):
            for client in silent:
                set_reading(client, command == "listen")
            conn.send("ok")
            continue
        assert command == "count"
        conn.send(
            {
                "counts": [_plain(c.counted) for c in clients[:COUNTING]],
                "cpu": resource.getrusage(resource.RUSAGE_SELF),
            }
        )
    for client in clients:
        await client.close()
    conn.send("stopped")


def _plain(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    return {f"{source}|{kind}": n for (source, kind), n in counts.items()}


# ---- a server per forwarding mode -----------------------------------------------------


class BenchServer(ServeProcess):
    def cpu(self) -> float:
        assert self.process is not None
        return process_tree_cpu_seconds(self.process.pid)


# ---- one room size --------------------------------------------------------------------


@dataclass
class MeasuredRoom:
    """The room of the size being measured, on the server, opened as the supervisor."""

    server: BenchServer
    http: httpx.AsyncClient
    token: str
    number: int = 0

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def server_cpu(self) -> float:
        return self.server.cpu()

    async def open(self) -> int:
        opened = await self.http.post(
            "/api/v1/rooms", json={"warehouse": "LAX"}, headers=self.bearer
        )
        opened.raise_for_status()
        self.number = opened.json()["id"]
        return self.number

    async def close(self) -> None:
        await self.http.post(f"/api/v1/rooms/{self.number}/close", headers=self.bearer)

    async def url(self) -> str:
        """Where one participant joins, with a ticket of its own."""
        issued = await self.http.post("/api/v1/auth/ticket", headers=self.bearer)
        base = self.server.url.replace("http://", "ws://", 1)
        return f"{base}/ws/rooms/{self.number}?ticket={issued.json()['ticket']}"


def _cpu_of_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _ask(conn: Connection, command: str) -> Any:
    conn.send(command)
    return await asyncio.to_thread(conn.recv)


async def measure_size(
    room: MeasuredRoom, n: int, seconds: float, media: tuple[Path, Path], idle_cores: float
) -> dict[str, Any]:
    await room.open()
    urls = [await room.url() for _ in range(n - 2)]
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    worker = context.Process(
        target=load_worker, args=(child, urls, str(media[0]), str(media[1])), daemon=True
    )
    worker.start()
    probe_sender = CountingClient(
        await room.url(),
        tracks=[
            ToneTrack(440),
            ColorTrack((90, 90, 90), width=WIDTH, height=HEIGHT, fps=FPS, stamped=True),
        ],
        decode=(),
    )
    latencies: list[int] = []
    measuring = False

    def on_frame(source: str, kind: str, frame: Any) -> None:
        if measuring and kind == "video":
            latencies.append((now_ms() - read_stamp(frame)) % (1 << 32))

    probe_receiver: CountingClient | None = None
    try:
        load_ids: list[str] = (await asyncio.wait_for(asyncio.to_thread(parent.recv), 120))[
            "participants"
        ]
        await probe_sender.join()
        assert probe_sender.participant is not None
        probe_receiver = CountingClient(
            await room.url(),
            tracks=file_tracks(*media),
            decode_from={probe_sender.participant},
            on_frame=on_frame,
        )
        await probe_receiver.join()
        everyone = [*load_ids, probe_sender.participant, probe_receiver.participant]
        counting = [*load_ids[:COUNTING], probe_sender.participant, probe_receiver.participant]
        probes = (probe_sender, probe_receiver)

        async def counts() -> tuple[list[dict[str, int]], Any]:
            answer = await _ask(parent, "count")
            mine = [_plain(p.counted + p.received) for p in probes]
            return [*answer["counts"], *mine], answer["cpu"]

        def receives_everyone(table: list[dict[str, int]]) -> bool:
            for me, got in zip(counting, table, strict=True):
                for other in everyone:
                    if other != me and got.get(f"{other}|video", 0) < 5:
                        return False
            return True

        settled = time.monotonic() + SETTLE_WITHIN
        while not receives_everyone((await counts())[0]):
            if time.monotonic() > settled:
                return {"participants": n, "sustained": False, "error": "did not settle"}
            await asyncio.sleep(1)
        await asyncio.sleep(2)  # past the first keyframes' bursts

        await _ask(parent, "quiet")
        before, worker_before = await counts()
        server_before, self_before = room.server_cpu(), _cpu_of_self()
        busy_before, total_before = machine_cpu_seconds()
        started = time.monotonic()
        measuring = True
        await asyncio.sleep(seconds)
        measuring = False
        wall = time.monotonic() - started
        after, worker_after = await counts()
        await _ask(parent, "listen")
        server_cores = (room.server_cpu() - server_before) / wall
        busy_after, total_after = machine_cpu_seconds()
        ours = (
            server_cores * wall
            + (_cpu_of_self() - self_before)
            + _rusage_seconds(worker_after)
            - _rusage_seconds(worker_before)
        )
        machine_busy = busy_after - busy_before
        cores = (total_after - total_before) / wall

        ratios = []
        for me, got_before, got_after in zip(counting, before, after, strict=True):
            senders = [s for s in load_ids if s != me]
            received = sum(
                got_after.get(f"{s}|video", 0) - got_before.get(f"{s}|video", 0) for s in senders
            )
            ratios.append(received / (len(senders) * FPS * wall) if senders else 1.0)
        forwarding_cores = max(server_cores - idle_cores, 0.0)
        streams = 2 * n * (n - 1)
        latency = sorted(latencies)
        p95 = latency[int(0.95 * (len(latency) - 1))] if latency else None
        result: dict[str, Any] = {
            "participants": n,
            "forwarded_streams": streams,
            "server_cores": round(server_cores, 3),
            "cpu_per_participant_pct": round(100 * forwarding_cores / n, 2),
            "cpu_per_forwarded_stream_pct": round(100 * forwarding_cores / streams, 3),
            "video_delivered": round(statistics.mean(ratios), 3),
            "video_delivered_worst": round(min(ratios), 3),
            "latency_ms": {
                "p50": statistics.median(latency) if latency else None,
                "p95": p95,
                "max": latency[-1] if latency else None,
                "frames": len(latency),
            },
            "machine_other_cores": round(max(machine_busy - ours, 0.0) / wall, 2),
            "machine_cores": round(cores, 1),
        }
        result["sustained"] = (
            result["video_delivered"] >= DELIVERED_TARGET
            and result["video_delivered_worst"] >= WORST_TARGET
            and p95 is not None
            and p95 <= LATENCY_P95_TARGET_MS
            and server_cores <= 1.0
        )
        return result
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_ask(parent, "stop"), 30)
        worker.join(timeout=10)
        if worker.is_alive():
            worker.kill()
        for client in (probe_sender, probe_receiver):
            if client is not None:
                await client.close()
        await room.close()
        await asyncio.sleep(1)


def _rusage_seconds(usage: Any) -> float:
    return float(usage.ru_utime + usage.ru_stime)


async def ramp(
    mode: str,
    sizes: list[int],
    seconds: float,
    media: tuple[Path, Path],
    folder: Path,
    keep_going: bool,
) -> dict[str, Any]:
    os.environ.update(
        {
            "WAVEPICK_ROOM_FORWARDING": mode,
            "WAVEPICK_ROOM_MAX_PARTICIPANTS": "64",
            "WAVEPICK_TICKET_TTL_SECONDS": "300",
        }
    )
    server = BenchServer(folder / mode, password=PASSWORD, warm_up=False)
    await asyncio.to_thread(server.start)
    sizes_measured: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            answer = await http.post(
                "/api/v1/auth/token", data={"username": "supervisor", "password": PASSWORD}
            )
            answer.raise_for_status()
            room = MeasuredRoom(server, http, answer.json()["access_token"])
            idle_before = server.cpu()
            await asyncio.sleep(3)
            idle = (server.cpu() - idle_before) / 3
            for n in sizes:
                result = await measure_size(room, n, seconds, media, idle)
                sizes_measured.append(result)
                print(json.dumps({mode: result}), file=sys.stderr, flush=True)
                if not result["sustained"] and not keep_going:
                    break
    finally:
        await asyncio.to_thread(server.stop)
    sustained = [r["participants"] for r in sizes_measured if r["sustained"]]
    return {
        "idle_server_cores": round(idle, 3),
        "sizes": sizes_measured,
        "largest_sustained": max(sustained, default=None),
        "fit": fit(sizes_measured),
    }


def fit(sizes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Least squares of forwarding cores = a·N(N−1) + b·N, and the N at one core."""
    points = [
        (r["participants"], r["cpu_per_participant_pct"] * r["participants"] / 100)
        for r in sizes
        if "server_cores" in r
    ]
    if len(points) < 2:
        return None
    rows = np.array([[n * (n - 1), n] for n, _ in points], dtype=float)
    a, b = np.linalg.lstsq(rows, np.array([c for _, c in points]), rcond=None)[0]
    n = 2.0
    while a * n * (n - 1) + b * n < 1.0 and n < 200:
        n += 0.1
    return {
        "per_forwarded_pair_pct": round(100 * a, 3),  # one sender to one receiver, A+V
        "per_participant_pct": round(100 * b, 3),
        "participants_at_one_core": round(n, 1),
    }


async def main_async(
    args: argparse.Namespace, folder: Path, media: tuple[Path, Path]
) -> dict[str, Any]:
    started = time.monotonic()
    busy_before, _ = machine_cpu_seconds()
    await asyncio.sleep(3)
    busy_after, _ = machine_cpu_seconds()
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "busy_before_cores": round((busy_after - busy_before) / 3, 2),
            "load_average": os.getloadavg(),
        },
        "media": {
            "video": f"VP8 {WIDTH}x{HEIGHT} {FPS} fps ~{VIDEO_BITRATE // 1000} kbit/s",
            "audio": "Opus 48 kHz mono 20 ms",
            "probe": "live VP8 640x480 from aiortc's encoder, time-stamped",
        },
        "encoded": await ramp(
            "encoded", args.participants, args.seconds, media, folder, args.keep_going
        ),
    }
    if args.transcoded:
        report["transcoded"] = await ramp(
            "transcoded", args.transcoded, args.seconds, media, folder, keep_going=True
        )
    largest = report["encoded"]["largest_sustained"] or 0
    report["targets"] = {
        "no_transcoding": "encoded forwarding never decodes or encodes (tests/test_rtc.py)",
        "participants_per_core": PARTICIPANTS_PER_CORE_TARGET,
        "met": largest >= PARTICIPANTS_PER_CORE_TARGET,
    }
    report["machine"]["load_average_after"] = os.getloadavg()
    report["seconds"] = round(time.monotonic() - started)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, nargs="+", default=[2, 4, 6, 8, 10, 12, 14, 16])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per size")
    parser.add_argument(
        "--transcoded", type=int, nargs="*", default=[2, 3], help="sizes to compare with"
    )
    parser.add_argument("--keep-going", action="store_true", help="past the first failure")
    parser.add_argument("--workdir", help="where the media and the servers' files go")
    args = parser.parse_args(argv)
    if min(args.participants + (args.transcoded or [])) < 2:
        parser.error("a room size is at least 2 (the two probes)")
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="wavepick-rooms-"))
    folder.mkdir(parents=True, exist_ok=True)
    media = make_media(folder)
    print(json.dumps(asyncio.run(main_async(args, folder, media)), indent=2))


if __name__ == "__main__":
    main()
