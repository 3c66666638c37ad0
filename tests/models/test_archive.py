"""Model archives unpack into their directory and nowhere else."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from models.archive import UnsafeArchive, extract_zip
from tests.models.conftest import VOSK_LAYOUT, build_zip


def write(tmp_path: Path, data: bytes) -> Path:
    archive = tmp_path / "model.zip"
    archive.write_bytes(data)
    return archive


def test_the_wrapping_directory_is_dropped(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()

    files = extract_zip(write(tmp_path, build_zip(VOSK_LAYOUT)), target)

    assert files == sorted(VOSK_LAYOUT)
    assert (target / "am" / "final.mdl").read_bytes() == VOSK_LAYOUT["am/final.mdl"]


def test_an_archive_without_a_wrapping_directory_is_kept_as_is(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()

    extract_zip(write(tmp_path, build_zip(VOSK_LAYOUT, top="")), target)

    assert (target / "conf" / "model.conf").is_file()


@pytest.mark.parametrize("name", ["../escaped.txt", "model/../../escaped.txt", "/tmp/escaped.txt"])
def test_entries_escaping_the_target_are_refused_before_anything_is_written(
    tmp_path: Path, name: str
) -> None:
    target = tmp_path / "store" / "model"
    target.mkdir(parents=True)
    data = build_zip({"am/final.mdl": b"ok", name: b"gotcha"}, top="")

    with pytest.raises(UnsafeArchive, match=r"escape|absolute"):
        extract_zip(write(tmp_path, data), target)

    assert list(target.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "store" / "escaped.txt").exists()


def test_symbolic_links_are_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        link = zipfile.ZipInfo("model/am")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc")
    target = tmp_path / "model"
    target.mkdir()

    with pytest.raises(UnsafeArchive, match="symbolic link"):
        extract_zip(write(tmp_path, buffer.getvalue()), target)


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()

    with pytest.raises(UnsafeArchive, match="not a valid zip"):
        extract_zip(write(tmp_path, b"<html>rate limited</html>"), target)
