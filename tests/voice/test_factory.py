"""Choosing engines, and the fusion of enrolled templates with a general engine."""

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from voice.audio import add_noise, load, warehouse_noise
from voice.enroll import Profile
from voice.grammar import build_grammar, named_grammar
from voice.stt.base import Alternative, NotWanted, Result, expecting, reading_while
from voice.stt.combined import FusionRecognizer, fuse, read_apart, refuse_word_read_as_digits
from voice.stt.factory import EngineCache, EngineUnavailable, open_recognizer
from voice.stt.recording import recognize_recording
from voice.stt.templates import TemplateRecognizer
from voice.stt.whisper import packaged_model_path as whisper_model_path


def result(tokens: tuple[str, ...], confidence: float, accepted: bool = True, **kw) -> Result:  # type: ignore[no-untyped-def]
    return Result(" ".join(tokens), tokens, confidence, kw.pop("engine", "t"), accepted, **kw)


def test_agreeing_engines_are_more_confident_than_either() -> None:
    fused = fuse(result(("5",), 0.7), result(("5",), 0.9, engine="g"), 0.6, 0.5, "fusion")
    assert fused.tokens == ("5",) and fused.accepted
    assert fused.confidence > 0.9


def test_a_confident_general_model_overrules_an_unsure_template_match() -> None:
    template = result(("1",), 0.45, alternatives=(Alternative(("7",), "7", 0.4),))
    fused = fuse(template, result(("7",), 0.95, engine="g"), 0.6, 0.5, "fusion")
    assert fused.tokens == ("7",)
    assert fused.alternatives[0].tokens == ("1",)


def test_digit_strings_are_fused_like_single_words() -> None:
    template = result(("7", "6"), 0.95)
    assert fuse(template, result(("5", "7"), 0.6, engine="g"), 1.0, 0.5, "f").tokens == ("7", "6")
    agreed = fuse(template, result(("7", "6"), 0.6, engine="g"), 1.0, 0.5, "f")
    assert agreed.tokens == ("7", "6") and agreed.confidence > 0.95
    alone = fuse(
        Result.rejected("t", "nothing"), result(("5", "7"), 0.8, engine="g"), 1.0, 0.5, "f"
    )
    assert alone.tokens == ("5", "7") and alone.accepted and alone.confidence == 0.8


SERIAL = build_grammar("pick.serial", ("call_supervisor", "short"), digits=(4, 8))


def test_a_word_another_engine_read_as_the_lines_digits_is_refused() -> None:
    """george's serial "zero two four three", 40 ms between the digits (fsdd-dev, 16 kHz):
    the templates' "call supervisor" outweighed Whisper's four digits, at 0.73."""
    templates = result(("call_supervisor",), 0.69)
    whisper = result(("0", "2", "4", "3"), 0.10, False, engine="g")
    fused = fuse(templates, whisper, 1.0, 0.5, "f")
    assert fused.tokens == ("call_supervisor",) and fused.accepted  # the engines alone
    assert read_apart(fused) == [("call_supervisor",), ("0", "2", "4", "3")]
    refused = refuse_word_read_as_digits(fused, SERIAL.exactly(4))
    assert refused.tokens == ("call_supervisor",) and not refused.accepted


def test_a_word_is_kept_when_no_engine_read_the_lines_digits() -> None:
    """Digits of another shape than the line's (a six-digit string at a four-digit
    serial, as PocketSphinx read some spoken commands) or another word are no doubt."""
    word = result(("call_supervisor",), 0.8)
    for other in (("2", "0", "2", "1", "1", "0"), ("how_much_more",), ()):
        fused = fuse(word, result(other, 0.3, False, engine="g"), 1.0, 0.5, "f")
        assert refuse_word_read_as_digits(fused, SERIAL.exactly(4)) == fused
    agreed = fuse(word, result(("call_supervisor",), 0.9, engine="g"), 1.0, 0.5, "f")
    assert refuse_word_read_as_digits(agreed, SERIAL.exactly(4)).accepted
    digits = fuse(result(("0", "2", "4", "3"), 0.9), word, 1.0, 0.5, "f")
    assert digits.tokens == ("0", "2", "4", "3")
    assert refuse_word_read_as_digits(digits, SERIAL.exactly(4)) == digits  # digits stay


def test_engines_fused_twice_are_each_read_apart() -> None:
    """An operator's templates fused with (the synthetic voices fused with Whisper)."""
    inner = fuse(result(("short",), 0.6), result(("4",), 0.4, False, engine="g"), 1.0, 0.5, "f")
    outer = fuse(result(("short",), 0.9, engine="o"), inner, 1.0, 0.5, "f")
    assert read_apart(outer) == [("short",), ("short",), ("4",)]
    quantity = build_grammar("pick.quantity", ("short",), digits=(1, 4))
    assert not refuse_word_read_as_digits(outer, quantity.exactly(1)).accepted
    assert refuse_word_read_as_digits(outer, quantity.exactly(2)).accepted


def test_a_reading_of_what_the_templates_call_noise_is_not_acted_on() -> None:
    heard_noise = Result.rejected("t", "sounds like noise, not a word")
    heard_noise = replace(heard_noise, details=heard_noise.details | {"noise": 0.98})
    fused = fuse(heard_noise, result(("0", "0"), 0.97, engine="g"), 1.0, 0.5, "f")
    assert fused.tokens == ("0", "0")
    assert fused.confidence < 0.5 and not fused.accepted


def test_nothing_heard_is_rejected() -> None:
    fused = fuse(
        Result.rejected("t", "no speech"), Result.rejected("g", "no speech"), 0.6, 0.5, "f"
    )
    assert not fused.accepted and fused.tokens == ()


def test_the_expected_answer_wins_an_unsure_reading_it_nearly_won() -> None:
    """A quiet "three" at the quantity prompt for three, read "eight" 0.49 / "three" 0.42
    (george, fsdd-dev, 8 kHz): taken as three, at its weighed share."""
    heard = result(("8",), 0.487, False, alternatives=(Alternative(("3",), "three", 0.418),))
    taken = expecting(heard, ("3",), 1.5, "three")
    assert taken.tokens == ("3",) and taken.text == "three" and taken.accepted
    assert taken.confidence == pytest.approx(1.5 * 0.418 / (1.5 * 0.418 + 0.582))
    assert [a.tokens for a in taken.alternatives] == [("8",)]
    unsure_three = result(("3",), 0.469, False, alternatives=(Alternative(("8",), "8", 0.23),))
    assert expecting(unsure_three, ("3",), 1.5, "three").accepted


def test_the_expected_answer_never_overrules_what_the_engines_are_sure_of() -> None:
    five = result(("5",), 0.999, alternatives=(Alternative(("9",), "nine", 0.04),))
    assert expecting(five, ("9",), 1.5, "nine") == five
    far_behind = result(("8",), 0.6, alternatives=(Alternative(("3",), "three", 0.3),))
    assert expecting(far_behind, ("3",), 1.5, "three") == far_behind
    not_heard_at_all = result(("8",), 0.45, False, alternatives=(Alternative(("6",), "6", 0.3),))
    assert expecting(not_heard_at_all, ("3",), 1.5, "three") == not_heard_at_all
    assert expecting(far_behind, ("3",), 1.0, "three") == far_behind
    taken_already = result(("3",), 0.8)
    assert expecting(taken_already, ("3",), 1.5, "three") == taken_already


def test_auto_uses_general_models_without_a_profile_and_fusion_with_one(
    fsdd: Path, tmp_path: Path, engines: EngineCache
) -> None:
    grammar = named_grammar("digit")
    auto = open_recognizer("auto", grammar, 8000, cache=engines)
    if whisper_model_path():  # the words in synthetic voices, fused with Whisper
        assert isinstance(auto, FusionRecognizer)
        assert (auto.templates.name, auto.general.name) == ("synthetic", "whisper")
    else:
        assert auto.name == "pocketsphinx"
    without_whisper = EngineCache(use_whisper=False)
    assert open_recognizer("auto", grammar, 8000, cache=without_whisper).name == "pocketsphinx"
    profile = Profile.open(tmp_path / "george", create=True)
    for digit in range(10):
        for take in range(3):
            profile.add_file(str(digit), fsdd / f"{digit}_george_{take}.wav")
    recognizer = open_recognizer("auto", grammar, 8000, profile, engines)
    assert isinstance(recognizer, FusionRecognizer)
    tests = [(d, t) for d in range(10) for t in (12, 24, 36)]
    right = 0
    for d, t in tests:
        clean = load(fsdd / f"{d}_george_{t}.wav", 8000)
        noisy = add_noise(clean, warehouse_noise(2.0, 8000, "mixed", seed=t), 15.0)
        heard = recognize_recording(recognizer, noisy, 8000)
        right += heard.tokens == (str(d),)
    assert right >= 0.85 * len(tests)
    # a state of commands only, which this operator never enrolled: heard as anyone's
    commands = named_grammar("commands")
    anyones = open_recognizer("auto", commands, 8000, profile, engines)
    assert not isinstance(anyones, FusionRecognizer) or anyones.templates.name == "synthetic"
    with pytest.raises(EngineUnavailable):
        open_recognizer("fusion", commands, 8000, profile, engines)


def test_mandarin_without_profile_model_or_whisper_is_unavailable() -> None:
    with pytest.raises(EngineUnavailable):
        open_recognizer(
            "auto", named_grammar("digits", "zh-CN"), 16000, cache=EngineCache(use_whisper=False)
        )


def test_one_min_confidence_moves_every_engine(fsdd: Path, engines: EngineCache) -> None:
    """WAVEPICK_MIN_CONFIDENCE is one setting: below the engines' own 0.5 it lets through
    what they would refuse, above it refuses what they would take, fused or not."""
    grammar = named_grammar("digit")
    default = open_recognizer("auto", grammar, 8000, cache=engines)
    lenient = open_recognizer("auto", grammar, 8000, cache=engines, min_confidence=0.05)
    strict = open_recognizer("auto", grammar, 8000, cache=engines, min_confidence=0.95)
    taken = {"default": 0, "lenient": 0, "strict": 0}
    for digit in range(10):
        for take in (5, 17, 29, 41):
            clean = load(fsdd / f"{digit}_lucas_{take}.wav", 8000)
            noisy = add_noise(clean, warehouse_noise(2.0, 8000, "mixed", seed=take), 3.0)
            for name, recognizer in (
                ("default", default),
                ("lenient", lenient),
                ("strict", strict),
            ):
                taken[name] += recognize_recording(recognizer, noisy, 8000).accepted
    assert taken["lenient"] > taken["default"] > taken["strict"]


def test_a_fused_reading_side_by_side_reads_alike_with_its_templates_on_other_threads(
    fsdd: Path, tmp_path: Path, engines: EngineCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a core to spare, the engines of a fused reading run at once: the operator's
    templates and the synthetic voices' each on a thread of its own, Whisper on the
    caller's, and the reading is the one they make one after the other."""
    profile = Profile.open(tmp_path / "lucas", create=True)
    for digit in range(10):
        for take in range(3):
            profile.add_file(str(digit), fsdd / f"{digit}_lucas_{take}.wav")
    recognizer = open_recognizer("auto", named_grammar("check_digits"), 8000, profile, engines)
    pause = np.zeros(1200, np.int16)  # 150 ms
    said = np.concatenate(
        [part for digit in "38" for part in (load(fsdd / f"{digit}_lucas_20.wav", 8000), pause)]
    )
    ran_on: list[tuple[str, str]] = []
    decode = TemplateRecognizer.decode

    def noting_the_thread(self: TemplateRecognizer, audio: np.ndarray) -> Result:
        ran_on.append((self.name, threading.current_thread().name))
        return decode(self, audio)

    monkeypatch.setattr(TemplateRecognizer, "decode", noting_the_thread)
    alone = recognizer.recognize(said)
    assert {thread for _, thread in ran_on} == {threading.current_thread().name}
    ran_on.clear()
    with reading_while(None, side_by_side=True):
        together = recognizer.recognize(said)
    assert together == alone and together.tokens == ("3", "8")
    assert len(ran_on) == 2  # the operator's templates and the synthetic voices'
    assert threading.current_thread().name not in {thread for _, thread in ran_on}


def test_a_reading_side_by_side_stops_on_every_thread_when_no_longer_wanted(
    fsdd: Path, engines: EngineCache
) -> None:
    recognizer = open_recognizer("auto", named_grammar("digit"), 8000, cache=engines)
    said = load(fsdd / "4_jackson_20.wav", 8000)

    def wanted_on_this_thread_only() -> bool:
        return threading.current_thread() is threading.main_thread()

    with reading_while(wanted_on_this_thread_only, side_by_side=True), pytest.raises(NotWanted):
        recognizer.recognize(said)  # the templates, on another thread, were not wanted
    with reading_while(wanted_on_this_thread_only):
        assert recognizer.recognize(said).tokens == ("4",)  # one after the other: all here
