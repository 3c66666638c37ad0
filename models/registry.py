"""The local model store: where installed speech models live, and whether they are intact.

`ModelStore(root, manifest)` is what the recognizer and the server use: `store.path(name)`
gives a model's directory or raises `ModelMissing` telling the operator which command to run.
Archive models live in `root/<name>/` with a receipt (`.wavepick-model.json`: the archive's
SHA-256 and every file's SHA-256) written before the directory is moved into place, so a model
directory either is complete or does not exist. Models that pip installs (`python_package`)
stay where pip put them; their wheel's RECORD serves as the receipt.

The library takes `root` as a Path; choosing it (platformdirs, WAVEPICK_MODEL_DIR) is the
command line's job.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from models.archive import extract_zip
from models.manifest import DEFAULT_MANIFEST, Manifest, ModelSpec, load_manifest

RECEIPT = ".wavepick-model.json"


class ModelError(Exception):
    """Base of the errors the `wavepick models` commands report to the operator."""


class UnknownModel(ModelError, KeyError):
    """A name that is not in the manifest."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.message = f"no speech model named {name!r}; known models: {', '.join(known)}"

    def __str__(self) -> str:
        return self.message


class ModelMissing(ModelError):
    """A configured model is not installed; the message says how to install it."""

    def __init__(self, spec: ModelSpec, root: Path) -> None:
        if spec.packaged:
            how = spec.pip_install
            where = "in this Python environment"
        else:
            how = f"wavepick models fetch {spec.name}"
            where = f"in {root}"
        super().__init__(f"speech model {spec.name} is not installed {where}; run: {how}")
        self.name = spec.name


@dataclass(frozen=True)
class Verification:
    """The state of one model in the store: "ok", "not installed" or "damaged" (with why)."""

    name: str
    state: str
    detail: str = ""

    @property
    def damaged(self) -> bool:
        return self.state == "damaged"


class ModelStore:
    """Installed speech models under `root`, described by `manifest`."""

    def __init__(self, root: Path, manifest: Manifest | None = None) -> None:
        self.root = root
        self.manifest = manifest if manifest is not None else load_manifest(DEFAULT_MANIFEST)

    def spec(self, name: str) -> ModelSpec:
        try:
            return self.manifest[name]
        except KeyError:
            raise UnknownModel(name, list(self.manifest)) from None

    def path(self, name: str) -> Path:
        """The directory to hand to the recognizer (e.g. `vosk.Model(str(path))`)."""
        spec = self.spec(name)
        location = self._location(spec)
        if location is None or not self._installed_at(spec, location):
            raise ModelMissing(spec, self.root)
        return location

    def installed_for(self, engine: str) -> dict[str, Path]:
        """Language → directory of each installed model of `engine` fetched into the store
        (models that pip installs are found by the engine itself)."""
        return {
            spec.language: self.path(spec.name)
            for spec in self.manifest.values()
            if spec.engine == engine and not spec.packaged and self.is_installed(spec.name)
        }

    def is_installed(self, name: str) -> bool:
        spec = self.spec(name)
        location = self._location(spec)
        return location is not None and self._installed_at(spec, location)

    def install_archive(self, spec: ModelSpec, archive: Path, archive_sha256: str) -> Path:
        """Unpack a verified archive into `root/<name>`, replacing any earlier copy whole."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / spec.name
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=self.root))
        try:
            files = extract_zip(archive, staging)
            receipt = {
                "name": spec.name,
                "url": spec.url,
                "archive_sha256": archive_sha256,
                "files": {rel: _sha256_file(staging / rel) for rel in files},
            }
            (staging / RECEIPT).write_text(json.dumps(receipt, indent=1), encoding="utf-8")
            if target.exists():
                retired = Path(tempfile.mkdtemp(prefix=f".{spec.name}.old.", dir=self.root))
                target.rename(retired / spec.name)
                staging.rename(target)
                shutil.rmtree(retired)
            else:
                staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def verify(self, names: list[str] | None = None) -> list[Verification]:
        """Recompute installed models' checksums against their receipts (default: all)."""
        return [self._verify(self.spec(name)) for name in names or list(self.manifest)]

    def _verify(self, spec: ModelSpec) -> Verification:
        location = self._location(spec)
        if location is None or not location.exists():
            return Verification(spec.name, "not installed")
        expected = _packaged_record(spec) if spec.packaged else _receipt_files(location)
        if expected is None:
            return Verification(spec.name, "damaged", f"no readable receipt in {location}")
        problems = []
        for relative, digest in expected.items():
            file = location / relative
            if not file.is_file():
                problems.append(f"missing {relative}")
            elif _sha256_file(file) != digest:
                problems.append(f"changed {relative}")
        if problems:
            shown = ", ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
            return Verification(spec.name, "damaged", shown)
        return Verification(spec.name, "ok", f"{len(expected)} files")

    def _location(self, spec: ModelSpec) -> Path | None:
        if spec.python_package is None:
            return self.root / spec.name
        found = importlib.util.find_spec(spec.python_package)
        if found is None or not found.submodule_search_locations:
            return None
        return Path(next(iter(found.submodule_search_locations))) / spec.package_subdir

    @staticmethod
    def _installed_at(spec: ModelSpec, location: Path) -> bool:
        if spec.packaged:
            return location.is_dir()
        return (location / RECEIPT).is_file()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _receipt_files(location: Path) -> dict[str, str] | None:
    receipt = location / RECEIPT
    if not receipt.is_file():
        return None
    try:
        files: dict[str, str] = json.loads(receipt.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return None  # reported by the caller as a damaged model with no usable receipt
    return files


def _packaged_record(spec: ModelSpec) -> dict[str, str] | None:
    """The model files' SHA-256 from the installing wheel's RECORD, relative to the model."""
    package = spec.python_package or ""
    try:
        distribution = importlib.metadata.distribution(package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return None
    record = distribution.read_text("RECORD")
    if record is None:
        return None
    prefix = f"{package}/{spec.package_subdir}/".replace("//", "/")
    files = {}
    for path, digest, _size in csv.reader(record.splitlines()):
        if path.startswith(prefix) and digest.startswith("sha256="):
            raw = base64.urlsafe_b64decode(digest.removeprefix("sha256=") + "==")
            files[path.removeprefix(prefix)] = raw.hex()
    return files or None
