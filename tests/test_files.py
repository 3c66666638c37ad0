"""Files that hold secrets (the SQLite database, the generated token key) are created
readable by their owner only, never briefly by everyone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.config import Settings
from tests.conftest import ServerProcess


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The usual umask, under which a plain create gives 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_the_sqlite_file_of_a_real_server_is_private(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    server = ServerProcess(f"sqlite:///{database}", tmp_path)
    try:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()
    assert _mode(database) == 0o600
    for journal in tmp_path.glob("fresh.db-*"):
        assert _mode(journal) == 0o600, journal


def test_the_generated_secret_is_created_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created with its mode, not chmod-ed after: with chmod doing nothing it is still
    0600."""
    monkeypatch.setattr(Path, "chmod", lambda *args, **kwargs: None)
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    settings = Settings(data_dir=tmp_path / "data", secret_key=None)
    key = settings.signing_key
    assert len(key) >= 32
    assert _mode(tmp_path / "data" / "secret.key") == 0o600
    assert Settings(data_dir=tmp_path / "data", secret_key=None).signing_key == key
