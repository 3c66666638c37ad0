"""The enrolled-template engine on synthesised voices (en-US and zh-CN) and human digits,
with each front end: Whisper's encoder frames and MFCCs."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_service
from tests.voice.conftest import Speak
from voice.audio import add_noise, load, warehouse_noise
from voice.enroll import Profile
from voice.grammar import build_grammar, load_vocabulary, named_grammar
from voice.stt.factory import EngineCache, open_recognizer
from voice.stt.recording import recognize_recording
from voice.stt.templates import TemplateModel, pooled

RATE = 16000


@pytest.fixture(scope="module", params=["whisper-encoder", "mfcc"])
def engines(request: pytest.FixtureRequest, engines: EngineCache) -> EngineCache:
    """The session's engines, or ones without Whisper, whose templates match MFCCs."""
    cache = engines if request.param == "whisper-encoder" else EngineCache(use_whisper=False)
    if cache.template_front_end().name != request.param:
        require_service(f"the {request.param} front end", "Whisper is not installed")
    return cache


ENROLL_VOICES = [("+m3", 150, 45), ("+m3", 170, 55), ("+m3", 190, 50)]
TEST_VOICE = ("+m3", 175, 48)


def enroll_locale(speak: Speak, root: Path, locale: str, tokens: list[str]) -> Profile:
    vocabulary = load_vocabulary(locale)
    profile = Profile.open(root / locale, create=True)
    for token in tokens:
        for variant, speed, pitch in ENROLL_VOICES:
            voice = vocabulary.espeak_voice + variant
            profile.add_take(
                token, speak(vocabulary.spoken(token), voice, RATE, speed, pitch), RATE
            )
    return profile


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_enrolled_digits_and_commands_are_recognised_in_noise(
    speak: Speak, tmp_path: Path, engines: EngineCache, locale: str
) -> None:
    grammar = named_grammar("all", locale)
    tokens = list(grammar.tokens)
    profile = enroll_locale(speak, tmp_path, locale, tokens)
    recognizer = open_recognizer("templates", grammar, RATE, profile, engines)
    vocabulary = grammar.vocabulary
    variant, speed, pitch = TEST_VOICE
    right = 0
    for i, token in enumerate(tokens):
        clean = speak(
            vocabulary.spoken(token), vocabulary.espeak_voice + variant, RATE, speed, pitch
        )
        noise = warehouse_noise(2.0, RATE, "mixed", seed=i)
        result = recognize_recording(recognizer, add_noise(clean, noise, 15.0), RATE)
        right += result.tokens == (token,) and result.accepted
    assert right >= 0.9 * len(tokens)


def test_a_spoken_digit_string_is_split_into_digits(
    speak: Speak, tmp_path: Path, engines: EngineCache
) -> None:
    grammar = build_grammar("check_digits", digits=(2, 3))
    profile = enroll_locale(speak, tmp_path, "en-US", list(grammar.tokens))
    recognizer = open_recognizer("templates", grammar, RATE, profile, engines)
    variant, speed, pitch = TEST_VOICE
    audio = speak("five seven", "en-us" + variant, RATE, speed, pitch)
    result = recognizer.recognize(audio)
    assert result.tokens == ("5", "7")
    assert result.text == "five seven"


def test_noise_is_rejected_not_guessed(speak: Speak, tmp_path: Path, engines: EngineCache) -> None:
    grammar = named_grammar("digit")
    profile = enroll_locale(speak, tmp_path, "en-US", list(grammar.tokens))
    recognizer = open_recognizer("templates", grammar, RATE, profile, engines)
    rng = np.random.default_rng(0)
    for kind in ("hum", "beeps", "air", "mixed"):
        result = recognize_recording(recognizer, warehouse_noise(1.5, RATE, kind, seed=1), RATE)
        assert not result.accepted, kind
    white = (rng.standard_normal(RATE) * 3000).astype(np.int16)
    assert not recognize_recording(recognizer, white, RATE).accepted


def test_human_digits_with_three_enrolled_takes(
    fsdd: Path, tmp_path: Path, engines: EngineCache
) -> None:
    profile = Profile.open(tmp_path / "lucas", create=True)
    for digit in range(10):
        for take in range(3):
            profile.add_file(str(digit), fsdd / f"{digit}_lucas_{take}.wav")
    recognizer = open_recognizer("templates", named_grammar("digit"), 8000, profile, engines)
    tests = [(digit, take) for digit in range(10) for take in (10, 20, 30, 40)]
    right = sum(
        recognize_recording(recognizer, load(fsdd / f"{d}_lucas_{t}.wav", 8000), 8000).tokens
        == (str(d),)
        for d, t in tests
    )
    # MFCC templates got 95.1% of fsdd-dev right, encoder frames 99.3% (bench/recognition.py)
    floor = 0.95 if engines.template_front_end().name == "whisper-encoder" else 0.85
    assert right >= floor * len(tests)


def test_a_take_with_nothing_to_match_is_left_out(speak: Speak, engines: EngineCache) -> None:
    front_end = engines.template_front_end()
    seven = speak("seven", "en-us", RATE)
    model = TemplateModel.from_takes(
        [("7", seven, RATE), ("3", np.zeros(0, np.int16), RATE)], front_end, "takes"
    )
    assert "7" in model.tokens and "3" not in model.tokens


def test_frames_matched_in_pairs_stay_unit_length_and_keep_the_last_frame() -> None:
    rng = np.random.default_rng(3)
    frames = rng.standard_normal((7, 4)).astype(np.float32)
    frames /= np.linalg.norm(frames, axis=1, keepdims=True)
    pairs = pooled(frames, 2)
    assert pairs.shape == (4, 4)
    assert np.allclose(np.linalg.norm(pairs, axis=1), 1.0, atol=1e-5)
    # a pair points between its two frames; the odd last frame stands alone
    both = frames[0] + frames[1]
    assert np.allclose(pairs[0], both / np.linalg.norm(both), atol=1e-5)
    assert np.allclose(pairs[-1], frames[-1], atol=1e-5)
    assert pooled(frames, 1) is frames
