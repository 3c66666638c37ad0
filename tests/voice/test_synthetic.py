"""Templates in synthetic voices: recognition before anyone enrolls, in any locale that
espeak-ng speaks, on Whisper's encoder frames."""

from pathlib import Path

import numpy as np
import pytest

import voice.stt.synthetic
from tests.voice.conftest import Speak
from voice.audio import add_noise, load, warehouse_noise
from voice.grammar import named_grammar
from voice.stt.factory import EngineCache, open_recognizer
from voice.stt.recording import recognize_recording
from voice.stt.synthetic import VARIANTS
from voice.stt.templates import TemplateRecognizer

pytestmark = pytest.mark.usefixtures("whisper_model")  # the encoder frames need it


def synthetic(
    grammar_name: str, locale: str, engines: EngineCache, rate: int
) -> TemplateRecognizer:
    grammar = named_grammar(grammar_name, locale)
    model = engines.synthetic(grammar)
    assert model is not None
    return TemplateRecognizer(grammar, rate, model, name="synthetic")


def test_human_digits_with_no_enrollment(fsdd: Path, engines: EngineCache) -> None:
    recognizer = synthetic("digit", "en-US", engines, 8000)
    files = [
        fsdd / f"{d}_{who}_{t}.wav"
        for d in range(10)
        for who in ("george", "jackson")
        for t in (7, 29)
    ]
    right = sum(
        recognize_recording(recognizer, load(f, 8000), 8000).tokens == (f.name[0],) for f in files
    )
    assert right >= 0.95 * len(files)  # Whisper decoding alone: 94% of george's


def test_mandarin_works_before_anyone_enrolls(speak: Speak, engines: EngineCache) -> None:
    """Synthetic voices heard by synthetic templates: weaker evidence than people's voices
    (none in Mandarin are at hand), so the test voice is one the templates were not made of,
    at its own speed and pitch, in noise."""
    grammar = named_grammar("all", "zh-CN")
    recognizer = open_recognizer("auto", grammar, 16000, cache=engines)
    assert "+m5" not in VARIANTS
    voice = grammar.vocabulary.espeak_voice + "+m5"
    tokens = list(grammar.tokens)
    right = 0
    for i, token in enumerate(tokens):
        clean = speak(grammar.vocabulary.spoken(token), voice, 16000, 160, 65)
        noisy = add_noise(clean, warehouse_noise(2.0, 16000, "mixed", seed=i), 15.0)
        result = recognize_recording(recognizer, noisy, 16000)
        right += result.tokens == (token,) and result.accepted
    assert right >= 0.9 * len(tokens)


@pytest.mark.parametrize("locale", ["en-US", "zh-CN", "ko-KR"])
def test_non_speech_is_not_a_word_even_without_the_endpointer(
    engines: EngineCache, locale: str
) -> None:
    recognizer = synthetic("all", locale, engines, 16000)
    rng = np.random.default_rng(3)
    clips = {
        "silence": np.zeros(16000, np.int16),
        "white": (rng.standard_normal(16000) * 2000).astype(np.int16),
        **{kind: warehouse_noise(1.0, 16000, kind, seed=5) for kind in ("hum", "air", "beeps")},
    }
    for name, clip in clips.items():
        result = recognizer.recognize(clip)
        assert not result.accepted, (name, result)


def test_a_restarted_process_reads_the_words_back_instead_of_rendering_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the first process computed (15 s for a locale) the next one reads from disk:
    the same frames, and nothing synthesised; a damaged file is rendered again."""
    grammar = named_grammar("commands", "en-US")
    first = EngineCache(synthetic_dir=tmp_path).synthetic(grammar)
    assert first is not None
    kept = sorted(tmp_path.glob("*.npz"))
    assert len(kept) == len(grammar.tokens)

    def rendering(*_: object) -> None:
        raise AssertionError("a kept word was rendered again")

    monkeypatch.setattr(voice.stt.synthetic, "synthetic_takes", rendering)
    second = EngineCache(synthetic_dir=tmp_path).synthetic(grammar)
    assert second is not None
    for token in grammar.tokens:
        assert len(second.frames(token)) == len(first.frames(token))
        for a, b in zip(second.frames(token), first.frames(token), strict=True):
            np.testing.assert_array_equal(a, b)

    monkeypatch.undo()
    kept[0].write_bytes(b"not a numpy file")
    third = EngineCache(synthetic_dir=tmp_path).synthetic(grammar)
    assert third is not None and third.tokens >= set(grammar.tokens)
    assert np.load(kept[0]).files  # written again, whole
