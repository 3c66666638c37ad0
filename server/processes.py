"""`wavepick serve --workers N`: N app processes on one listening socket, kept running.

The parent binds the socket once, then starts N processes (spawned: each builds its own
app from the same environment, as a fresh `wavepick serve` would) that accept on it; the
kernel spreads connections among them. A process that dies (a crash, the OOM killer,
`kill -9`) is logged and replaced; its headsets reconnect to the others meanwhile.

Video calls are hosted by the first process (its room forwards a call's media), which also
listens on a port of its own on 127.0.0.1; the others are told it (`WAVEPICK_ROOMS_URL`)
and forward the rooms' requests and sockets there (`server.rooms_forwarding`). SIGTERM
or SIGINT stops them all: each ends its open sockets the way `wavepick serve` does (an
`error` frame, then 1001) and the parent waits for them.

uvicorn's own `workers=` would do the supervising too, but it runs plain uvicorn servers,
which drop open sockets with 1012 at shutdown without telling the headsets why.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

from voice.workers import end_with_parent

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 15.0  # a worker's own shutdown waits up to 5 s for its sockets
BACKLOG = 2048  # uvicorn's own
QUICK_EXIT_S = 2.0  # a worker that dies sooner than this after starting is restarted later


class AppProcesses:
    """`target(sockets=[...])` in `count` processes, until SIGTERM/SIGINT: each on the
    listening socket, the first also on a loopback socket of its own."""

    def __init__(
        self,
        target: Callable[..., None],
        count: int,
        host: str,
        port: int,
        *,
        host_rooms: bool = True,
    ) -> None:
        """`host_rooms`: the first process hosts the video calls (False: they are hosted
        elsewhere, at the `WAVEPICK_ROOMS_URL` every process is given)."""
        self.target = target
        self.count = count
        self.host = host
        self.port = port
        self.host_rooms = host_rooms
        self._stop = threading.Event()
        self._context = multiprocessing.get_context("spawn")

    def run(self) -> None:
        listening = uvicorn.Config("server.app:create_app", host=self.host, port=self.port)
        sock = listening.bind_socket()
        own = _loopback_socket() if self.host_rooms else None  # the calls' process's own
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        started = [self._start(n, sock, own) for n in range(self.count)]
        try:
            while not self._stop.wait(0.5):
                for n, (process, at) in enumerate(started):
                    if process.is_alive():
                        continue
                    log.warning(
                        "worker %d (pid %s) exited with %s; starting another",
                        n,
                        process.pid,
                        process.exitcode,
                    )
                    if time.monotonic() - at < QUICK_EXIT_S and self._stop.wait(QUICK_EXIT_S):
                        break
                    started[n] = self._start(n, sock, own)
        finally:
            self._stop_all([process for process, _ in started])
            sock.close()
            if own is not None:
                own.close()

    def _start(
        self, n: int, sock: socket.socket, own: socket.socket | None
    ) -> tuple[BaseProcess, float]:
        """Start process `n` on `sock`; the first also on `own`, its own port, which the
        others are told as where calls are hosted."""
        sockets, env = [sock], {}
        if own is not None and n == 0:
            sockets.append(own)
        elif own is not None:
            env["WAVEPICK_ROOMS_URL"] = f"http://127.0.0.1:{own.getsockname()[1]}"
        process = self._context.Process(
            target=_child, args=(self.target, sockets, env), name=f"wavepick-worker-{n}"
        )
        process.start()
        log.info("worker %d started (pid %s)", n, process.pid)
        return process, time.monotonic()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _stop_all(self, processes: list[BaseProcess]) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker pid %s did not stop in time; killed", process.pid)
                process.kill()
                process.join()


def _child(target: Callable[..., None], sockets: list[socket.socket], env: dict[str, str]) -> None:
    """One app process: it ends with the parent, even when the parent is killed outright."""
    end_with_parent()
    os.environ.update(env)
    target(sockets=sockets)


def _loopback_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 at a free port: the rooms process's own. It listens
    from here on, so what the others forward while that process starts (or is replaced)
    waits in the backlog instead of being refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock
