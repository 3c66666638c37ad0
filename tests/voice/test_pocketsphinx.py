"""PocketSphinx, the embedded default: synthesised en-US words and human digits."""

from pathlib import Path

import pytest

from tests.voice.conftest import Speak
from voice.audio import add_noise, load, warehouse_noise
from voice.grammar import COMMANDS, build_grammar, load_vocabulary, named_grammar
from voice.stt.factory import EngineCache, EngineUnavailable, open_recognizer
from voice.stt.pocketsphinx import jsgf
from voice.stt.recording import recognize_recording


def test_grammar_becomes_jsgf_over_spoken_forms() -> None:
    text = jsgf(build_grammar("quantity", ["short"], digits=(1, 2)))
    assert "<digit> = zero | oh | one" in text
    assert "public <answer> = (<digit>) | (<digit> <digit>) | short;" in text


@pytest.mark.parametrize("rate", [16000, 8000])
def test_synthesised_command_words_in_noise(speak: Speak, engines: EngineCache, rate: int) -> None:
    grammar = named_grammar("commands")
    recognizer = open_recognizer("pocketsphinx", grammar, rate, cache=engines)
    vocabulary = load_vocabulary("en-US")
    right = 0
    for i, token in enumerate(COMMANDS):
        clean = speak(vocabulary.spoken(token), "en-us", rate)
        noisy = add_noise(clean, warehouse_noise(2.0, rate, "hum", seed=i), 15.0)
        result = recognize_recording(recognizer, noisy, rate)
        right += result.tokens == (token,)
    assert right >= 0.75 * len(COMMANDS)


def test_synthesised_digit_string(speak: Speak, engines: EngineCache) -> None:
    recognizer = open_recognizer(
        "pocketsphinx", named_grammar("check_digits"), 16000, cache=engines
    )
    result = recognizer.recognize(speak("four two", "en-us", 16000))
    assert result.tokens == ("4", "2")
    assert result.engine == "pocketsphinx"
    assert 0.0 <= result.confidence <= 1.0


def test_human_narrow_band_digits(fsdd: Path, engines: EngineCache) -> None:
    recognizer = open_recognizer("pocketsphinx", named_grammar("digit"), 8000, cache=engines)
    files = [
        fsdd / f"{d}_{s}_{t}.wav" for d in range(10) for s in ("jackson", "lucas") for t in (7, 17)
    ]
    right = sum(
        recognize_recording(recognizer, load(f, 8000), 8000).tokens == (f.name[0],) for f in files
    )
    assert right >= 0.7 * len(files)


def test_no_mandarin_model_means_no_pocketsphinx(engines: EngineCache) -> None:
    with pytest.raises(EngineUnavailable):
        open_recognizer("pocketsphinx", named_grammar("digits", "zh-CN"), 16000, cache=engines)


def test_an_utterance_is_read_the_same_whatever_was_heard_before(fsdd: Path) -> None:
    """Decoders are shared by every picker: what one said must not change how the next
    is heard (live CMN carried over from the last utterance did)."""
    grammar = named_grammar("check_digits").listening()
    engines = EngineCache()  # its own decoders, fresh
    first, other = (load(fsdd / name, 8000) for name in ("3_george_30.wav", "4_lucas_31.wav"))

    def read(audio: object) -> tuple[tuple[str, ...], float]:
        recognizer = open_recognizer("pocketsphinx", grammar, 8000, cache=engines)
        result = recognizer.recognize(audio)  # type: ignore[arg-type]
        return result.tokens, result.confidence

    alone = read(first)
    assert [read(first), read(other) and read(first)] == [alone, alone]
