"""The `wavepick` command line: serve, database, reconcile, users (and the voice and model
commands from their own packages)."""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from models import cli as models_cli
from server.config import Settings
from server.db import make_engine, make_session_factory, transaction
from server.sockets import SocketRegistry
from voice import cli as voice_cli

app = typer.Typer(
    help="WavePick: voice-directed picking for cross-border warehouses.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(models_cli.app, name="models")
app.add_typer(voice_cli.app, name="voice")
err = Console(stderr=True, soft_wrap=True)


class _Server(uvicorn.Server):
    """uvicorn, but at shutdown the app first ends its open sockets itself (an `error`
    frame saying why, then 1001), before uvicorn drops what is left with 1012."""

    def __init__(self, config: uvicorn.Config, registry: SocketRegistry) -> None:
        super().__init__(config)
        self.registry = registry

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.registry.close_all()
        await super().shutdown(sockets)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            err.print(f"[red]invalid settings:[/red] {where + ': ' if where else ''}{message}")
        raise typer.Exit(2) from exc


def _uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "ws_per_message_deflate": False,  # deflating PCM costs CPU and saves next to nothing
        "ws_max_size": settings.ws_max_message_bytes,  # refused before it is buffered
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def _serve_one(
    options: dict[str, Any],
    sockets: list[socket.socket] | None = None,
    *,
    settings: Settings | None = None,
) -> None:
    """One app process: this one, or one started by `AppProcesses` (on `sockets`, bound
    by the parent; its settings are read again from the same environment)."""
    from server.app import create_app
    from server.requestlog import configure_logging

    settings = settings or Settings()
    configure_logging(settings.log_level)
    web = create_app(settings)
    _Server(uvicorn.Config(web, **options), web.state.sockets).run(sockets=sockets)


def _refuse_workers(settings: Settings, workers: int) -> str | None:
    """Why `workers` app processes cannot run with these settings, if they cannot."""
    if workers == 1:
        return None
    if settings.is_sqlite:
        return (
            "several processes need PostgreSQL (WAVEPICK_DATABASE_URL=postgresql+psycopg://...): "
            "SQLite takes one writer at a time, and only this process would know its turns"
        )
    if not settings.redis_url:
        return (
            "several processes need Redis (WAVEPICK_REDIS_URL=redis://host:6379/0): headset "
            "dialog snapshots, one session per operator and live events are shared through "
            "it; without it a picker who reconnects to another process would start over, "
            "the same operator could be live on two processes, and consoles would miss the "
            "events of the others"
        )
    return None


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Seed demo warehouses, stock and users.")] = False,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="App processes on the one port (more than 1 needs PostgreSQL and Redis).",
        ),
    ] = 1,
) -> None:
    """Upgrade the database, then serve the API and pages."""
    from server.migrate import upgrade

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    refused = _refuse_workers(settings, workers)
    if refused is not None:
        err.print(f"[red]--workers {workers} refused:[/red] {refused}")
        raise typer.Exit(2)
    if demo and settings.is_production:
        err.print(
            "[red]--demo refused:[/red] it seeds users whose password is known; "
            "not with WAVEPICK_ENVIRONMENT=production (add users with `wavepick users add`)"
        )
        raise typer.Exit(2)
    upgrade(settings.database_url)
    if demo:
        from server.demo import seed

        sessions = make_session_factory(make_engine(settings.database_url))
        with transaction(sessions) as session:
            summary = seed(session, password=settings.demo_password)
        err.print(
            f"Demo data {'seeded' if summary.seeded else 'already present'}. "
            f"Users: {', '.join(summary.users)} — password: {settings.demo_password}"
        )
    processes = f" in {workers} processes" if workers > 1 else ""
    err.print(
        f"WavePick serving on http://{host}:{port}{processes}  "
        f"(API docs: http://{host}:{port}/docs)"
    )
    options = _uvicorn_options(settings, host, port)
    if workers == 1:
        _serve_one(options, settings=settings)
    else:
        from server.processes import AppProcesses
        from server.requestlog import configure_logging
        from voice.workers import default_processes

        configure_logging(settings.log_level)
        if settings.speech_workers is None:  # the cores shared out, not N times all of them
            os.environ["WAVEPICK_SPEECH_WORKERS"] = str(max(1, default_processes() // workers))
        AppProcesses(
            functools.partial(_serve_one, options),
            workers,
            host,
            port,
            host_rooms=settings.rooms_url is None,
        ).run()


@app.command("speech-worker")
def speech_worker(
    processes: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Worker processes (default: one per core)."),
    ] = None,
) -> None:
    """Read answers for the app processes sharing WAVEPICK_REDIS_URL (theirs set
    WAVEPICK_SPEECH_BROKERED=true), on this host or another, until stopped (Ctrl-C,
    SIGTERM). Each process loads the speech models (about half a gigabyte) and warms up
    before it takes an answer."""
    import signal
    import threading

    import redis

    from server.headset.speech import received_profiles, speech_setup
    from voice.broker import Keys, await_workers, start_worker
    from voice.workers import default_processes

    settings = _settings()
    if settings.redis_url is None:
        err.print("[red]a speech worker needs WAVEPICK_REDIS_URL:[/red] the apps' Redis")
        raise typer.Exit(2)
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        err.print(f"[red]cannot reach Redis at {settings.redis_url}:[/red] {exc}")
        raise typer.Exit(1) from exc
    count = processes or default_processes()
    worker_args = (
        speech_setup(settings),
        settings.redis_url,
        settings.redis_prefix,
        received_profiles(settings),
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    workers = [start_worker(*worker_args) for _ in range(count)]
    try:
        with err.status(f"warming up {count} speech worker{'s' if count > 1 else ''}..."):
            await_workers(client, Keys(settings.redis_prefix), workers, stop=stop)
        if stop.is_set():  # stopped while warming up
            return
        pids = ", ".join(str(worker.pid) for worker in workers)
        err.print(f"speech workers reading for {settings.redis_prefix}: {pids}")
        while not stop.wait(1.0):
            for n, worker in enumerate(workers):
                if not worker.is_alive():
                    err.print(f"speech worker {worker.pid} ended ({worker.exitcode}); restarting")
                    workers[n] = start_worker(*worker_args)
    except RuntimeError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=10)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply schema migrations up to REVISION (default: the newest)."""
    from server.migrate import upgrade

    upgrade(_settings().database_url, revision)
    err.print("database is up to date")


@app.command()
def reconcile(
    warehouse: Annotated[str | None, typer.Option(help="Only this warehouse code.")] = None,
) -> None:
    """Check that stock equals the sum of the ledger; exit 1 when it does not."""
    from server.api.views import reconciliation_view
    from server.problems import Problem
    from server.services import inventory

    sessions = make_session_factory(make_engine(_settings().database_url))
    try:
        with transaction(sessions) as session:
            result = reconciliation_view(session, inventory.reconcile(session, warehouse))
    except Problem as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from exc
    print(json.dumps(result.model_dump(), indent=2))
    if not result.consistent:
        raise typer.Exit(1)


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="picker, supervisor, manager or admin")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    full_name: str = "",
    warehouse: Annotated[
        list[str] | None,
        typer.Option(help="A warehouse code the user works in (repeat for several)."),
    ] = None,
) -> None:
    """Create a user (the first admin of a new installation, for instance)."""
    from server import schemas
    from server.problems import Problem
    from server.services import audit, membership, users

    sessions = make_session_factory(make_engine(_settings().database_url))
    try:
        body = schemas.UserCreate(
            username=username,
            password=password,
            role=role,
            full_name=full_name,
            warehouses=warehouse or [],
        )
        with transaction(sessions) as session:
            user = users.create_user(session, body)
            membership.set_warehouses(session, user, body.warehouses)
            audit.user_created(session, user, actor=None, client="cli")
    except ValidationError as exc:
        err.print(f"[red]invalid user:[/red] {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    except Problem as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    err.print(f"user {username} created with role {role}")


simulate_app = typer.Typer(
    help="Load: simulated pickers on a running server.", no_args_is_help=True
)
app.add_typer(simulate_app, name="simulate")


@simulate_app.command("pickers")
def simulate_pickers(
    count: Annotated[int, typer.Option(min=1, max=2000, help="Simulated pickers.")] = 10,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of work.")] = 60,
    audio: Annotated[bool, typer.Option(help="Speak answers instead of typing them.")] = False,
    think: Annotated[
        float,
        typer.Option(
            min=0, help="Mean seconds a picker takes before answering (0: as fast as possible)."
        ),
    ] = 1.0,
    ramp: Annotated[
        float,
        typer.Option(min=0, help="Seconds over which the pickers sign on (0: all at once)."),
    ] = 0.0,
    url: Annotated[str, typer.Option(help="The server.")] = "http://127.0.0.1:8000",
    admin: Annotated[str, typer.Option(help="Admin user that sets up the work.")] = "admin",
    admin_password: Annotated[
        str | None, typer.Option(help="Defaults to WAVEPICK_DEMO_PASSWORD.")
    ] = None,
) -> None:
    """Drive COUNT pickers through real assignments over the headset protocol and print
    JSON: picks/s, turn latency p50/p95/p99, errors, and stock/ledger consistency."""
    import asyncio

    import httpx

    from server.simulate import simulate

    password = admin_password or _settings().demo_password
    try:
        result = asyncio.run(
            simulate(
                url,
                count=count,
                duration=duration,
                audio=audio,
                think=think,
                ramp=ramp,
                admin=(admin, password),
                progress=lambda text: err.print(f"[dim]{text}[/dim]"),
            )
        )
    except httpx.HTTPError as exc:
        err.print(f"[red]cannot drive {url}:[/red] {exc}")
        raise typer.Exit(1) from exc
    print(json.dumps(result, indent=2))


def main() -> None:
    sys.exit(app())
