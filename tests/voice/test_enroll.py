from pathlib import Path

import numpy as np
import pytest

from voice.enroll import Profile, UnknownWord, resolve_token


def test_words_resolve_to_canonical_tokens_in_any_locale() -> None:
    assert resolve_token("seven") == "7"
    assert resolve_token("7") == "7"
    assert resolve_token("Say again") == "say_again"
    assert resolve_token("skip_slot") == "skip_slot"
    assert resolve_token("再说一遍") == "say_again"
    with pytest.raises(UnknownWord):
        resolve_token("banana")


def test_takes_are_kept_on_disk_and_reloaded(tmp_path: Path) -> None:
    profile = Profile.open(tmp_path / "op-17", create=True)
    take = (np.sin(np.arange(4000) / 3.0) * 5000).astype(np.int16)
    profile.add_take("seven", take, 8000)
    profile.add_take("seven", take, 8000)
    profile.add_take("七", take, 16000)
    again = Profile.open(tmp_path / "op-17")
    assert again.count("7") == 3
    samples, rate = again.audio(again.takes[2])
    assert rate == 16000 and np.array_equal(samples, take)


def test_opening_a_missing_profile_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Profile.open(tmp_path / "nobody")
