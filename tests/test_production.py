"""Production mode: a weak secret or demo users refuse to start, the API docs come from
bundled assets (nothing from another origin, in a real Chromium), and every answer, page
or API, carries the security headers (HSTS when the request came over TLS)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.browser import CHROMIUM, require_chromium
from tests.conftest import REPO, ServerProcess

STRONG = "Zq3v9Lr2Wm8Xt6Ky1Hb5Nc7Pd4Fs0Gj-Ea"


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`wavepick serve`; one that starts instead of refusing fails the test (timeout)."""
    try:
        return subprocess.run(
            [sys.executable, "-c", "from server.cli import main; main()", "serve", *args],
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "WAVEPICK_DATA_DIR": str(tmp_path),
                "WAVEPICK_SPEECH_WARM_UP": "false",
                "WAVEPICK_PORT": "1",  # never reached when refused; unusable otherwise
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"wavepick serve did not refuse to start: {exc.stderr!r}")


@pytest.mark.parametrize("secret", ["x", "wavepick", "changeme" * 4, None])
def test_production_refuses_a_weak_or_missing_secret(tmp_path: Path, secret: str | None) -> None:
    env = {"WAVEPICK_ENVIRONMENT": "production"}
    if secret is not None:
        env["WAVEPICK_SECRET_KEY"] = secret
    result = _serve(tmp_path, **env)
    assert result.returncode == 2
    assert "WAVEPICK_SECRET_KEY" in result.stderr
    assert "at least 32 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_demo_users(tmp_path: Path) -> None:
    result = _serve(
        tmp_path, "--demo", WAVEPICK_ENVIRONMENT="production", WAVEPICK_SECRET_KEY=STRONG
    )
    assert result.returncode == 2
    assert "--demo refused" in result.stderr
    assert not (tmp_path / "wavepick.db").exists()  # nothing was seeded


def test_api_docs_pages_use_only_bundled_assets(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert not re.search(r"(src|href)=\"(https?:)?//", html), html
        for asset in re.findall(r"(?:src|href)=\"(/[^\"]+)\"", html):
            answer = client.get(asset)
            assert answer.status_code == 200, asset
            assert answer.headers["content-type"].startswith(("text/css", "text/javascript"))


def test_security_headers_on_pages_api_and_errors(client: TestClient) -> None:
    for path in ("/headset.html", "/docs", "/api/v1/users/me", "/openapi.json", "/nowhere"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, path
        assert headers["x-frame-options"] == "DENY", path
        assert "default-src 'self'" in policy, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert "strict-transport-security" not in headers, path  # plain http here
    # the call page alone may be framed, and by this server's own pages only (the headset
    # page holds it for the shelf camera)
    call = client.get("/call.html").headers
    assert "frame-ancestors 'self'" in call["content-security-policy"]
    assert call["x-frame-options"] == "SAMEORIGIN"


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(sqlite_url, tmp_path)
    yield process
    process.stop()


def test_hsts_only_behind_tls(server: ServerProcess) -> None:
    """A trusted proxy (loopback) that terminated TLS says so: HSTS is sent; not over
    plain HTTP."""
    over_tls = httpx.get(f"{server.url}/healthz", headers={"X-Forwarded-Proto": "https"})
    assert over_tls.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "strict-transport-security" not in httpx.get(f"{server.url}/healthz").headers


@pytest.mark.browser
def test_api_docs_render_offline_under_the_policy(server: ServerProcess) -> None:
    """Both docs pages render the API in a real Chromium with no request to another
    origin and no policy violation."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            for path, rendered in (("/docs", ".opblock"), ("/redoc", "[data-section-id]")):
                page = browser.new_page()
                errors: list[str] = []
                elsewhere: list[str] = []
                page.on(
                    "console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None
                )
                page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
                page.on(
                    "request",
                    lambda r, o=elsewhere: (
                        None
                        if r.url.startswith((server.url, "data:", "blob:"))
                        else o.append(r.url)
                    ),
                )
                page.goto(server.url + path)
                page.wait_for_selector(rendered, timeout=30_000)
                assert page.locator(rendered).count() > 3, path
                assert elsewhere == [], path
                assert errors == [], path
                page.close()
        finally:
            browser.close()
