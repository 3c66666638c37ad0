"""Unpacking a model archive safely: no entry may land outside the target directory.

Model archives come from the internet; a crafted zip can name entries like
`../../home/user/.bashrc` or hold symlinks. Every entry is checked before anything is
written, so a bad archive leaves nothing behind.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath


class UnsafeArchive(ValueError):
    """The archive is damaged or has an entry that would escape the target directory."""


def extract_zip(archive: Path, target: Path) -> list[str]:
    """Extract `archive` into the empty directory `target`; return the files' relative paths.

    When every entry sits under one top-level directory (as in Vosk's zips, which wrap the
    model in "vosk-model-…/"), that directory is dropped, so `target` holds the model itself.
    """
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            for member in members:
                _refuse_unsafe(member)
            prefix = _common_top_directory(members)
            written = []
            for member in members:
                relative = PurePosixPath(member.filename).relative_to(prefix)
                destination = target.joinpath(*relative.parts)
                if not destination.resolve().is_relative_to(target.resolve()):
                    raise UnsafeArchive(f"entry {member.filename!r} escapes the model directory")
                destination.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, destination.open("wb") as sink:
                    while block := source.read(1 << 20):
                        sink.write(block)
                written.append(relative.as_posix())
    except zipfile.BadZipFile as exc:
        raise UnsafeArchive(f"{archive.name} is not a valid zip archive: {exc}") from exc
    if not written:
        raise UnsafeArchive(f"{archive.name} holds no files")
    return sorted(written)


def _refuse_unsafe(member: zipfile.ZipInfo) -> None:
    name = member.filename
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or ":" in path.parts[0] or "\\" in name:
        raise UnsafeArchive(f"entry {name!r} has an absolute or non-portable path")
    if ".." in path.parts:
        raise UnsafeArchive(f"entry {name!r} escapes the model directory")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise UnsafeArchive(f"entry {name!r} is a symbolic link")


def _common_top_directory(members: list[zipfile.ZipInfo]) -> PurePosixPath:
    tops = {PurePosixPath(m.filename).parts[0] for m in members}
    nested = all(len(PurePosixPath(m.filename).parts) > 1 for m in members)
    return PurePosixPath(tops.pop()) if len(tops) == 1 and nested else PurePosixPath()
