"""`wavepick serve` in its own process, fresh, for benchmarks and slow tests that need a
whole server with warm speech: its own working directory, data dir and SQLite file (or a
database the caller has set up), so nothing of an earlier run (stock, assignments, a
generated secret) leaks into the figures.

It is ready when `/healthz` answers and the log says the speech models have warmed up: a
walk started earlier would time its first answers against model loading, not recognition.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parents[1]
WARMED_UP = "speech warmed up"
WARM_UP_FAILED = "speech warm-up failed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``with ServeProcess(folder, password=...) as server:`` serves the demo on
    ``server.url`` until the block ends; its log is ``folder / "server.log"``.

    With ``demo=False`` and a `database_url` it serves that database as it is (a test's
    own floor); `password` is then the admin's, for `admin`. `env` adds settings
    (`WAVEPICK_REDIS_URL` for several processes)."""

    def __init__(
        self,
        folder: Path,
        *,
        password: str,
        demo: bool = True,
        database_url: str | None = None,
        warm_up: bool = True,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.folder = folder
        self.password = password
        self.demo = demo
        self.database_url = database_url or f"sqlite:///{folder / 'wavepick.db'}"
        self.warm_up = warm_up
        self.env = env or {}
        self.args = args or []  # more `wavepick serve` options (`--workers 2`)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "server.log"
        self.warm_up_s: float | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def admin(self) -> tuple[str, str]:
        """The admin user, who sets up work and reads the ledger."""
        return ("admin", self.password)

    def start(self, timeout: float = 300.0) -> None:
        """Start the server and wait until it serves (and, with warm-up, until speech is
        warm); raises with the log's tail when it exits or takes longer than `timeout`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "WAVEPICK_DATABASE_URL": self.database_url,
            "WAVEPICK_DATA_DIR": str(self.folder),
            "WAVEPICK_DEMO_PASSWORD": self.password,
            "WAVEPICK_SPEECH_WARM_UP": "true" if self.warm_up else "false",
            "WAVEPICK_LOG_LEVEL": "INFO",  # the warm-up line is logged at INFO
        }
        env.pop("WAVEPICK_REDIS_URL", None)  # one process: no events from anyone else
        env.update(self.env)  # unless the caller asks for them
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *_wavepick(),
                    "serve",
                    *(["--demo"] if self.demo else []),
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until(self._serving, started + timeout, "answer /healthz")
        if self.warm_up:
            self._wait_until(self._warm, started + timeout, "warm up its speech")
            self.warm_up_s = round(time.monotonic() - started, 1)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)  # `--workers`: it waits 15 s for its processes
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> ServeProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _serving(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _warm(self) -> bool:
        text = self.log_path.read_text(errors="replace")
        if WARM_UP_FAILED in text:
            raise RuntimeError(f"the server's speech warm-up failed:\n{self.log_tail()}")
        return WARMED_UP in text

    def _wait_until(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        assert self.process is not None
        while not ready():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"wavepick serve exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not {what} in time:\n{self.log_tail()}")
            time.sleep(0.2)


def _wavepick() -> list[str]:
    """The `wavepick` console script of this interpreter's environment, or the same entry
    point through the interpreter when the script is not installed."""
    script = Path(sys.executable).with_name("wavepick")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from server.cli import main; main()"]
