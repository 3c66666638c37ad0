"""schemathesis against `/openapi.json` with a valid admin token, on a real server process
(SQLite and PostgreSQL): no 5xx, and every response matches the documented schema, status
codes and content type."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ServerProcess
from tests.factories import auth, make_warehouse, receive

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


def test_api_conforms_to_its_schema(server_process: ServerProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=server_process.url) as client:
        make_warehouse(client)
        receive(client, "LAX", "SKU-1", "A-01", 50)
        token = auth(client, "admin")["Authorization"]
    schemathesis = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{server_process.url}/openapi.json",
            "--header",
            f"Authorization:{token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--seed",
            "20261125",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "30",
            "--continue-on-failure",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
