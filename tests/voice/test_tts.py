"""Prompts rendered by the embedded espeak-ng engine, the cache, and the audio format."""

from __future__ import annotations

import subprocess
import sys
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from voice.tts import (
    Rendering,
    SynthesisFailed,
    Synthesizer,
    UnsupportedLocale,
    Voice,
)


def seconds(pcm: bytes, sample_rate: int) -> float:
    return len(pcm) / 2 / sample_rate


def loudness(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2)))


class CountingEngine:
    """A stand-in engine that records what it was asked to say (a ramp, 100 ms per word)."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def render(self, text: str, voice: Voice) -> Rendering:
        with self.lock:
            self.calls.append((text, voice.espeak_voice))
        frames = 2205 * len(text.split())
        ramp = (np.arange(frames) % 200 * 100).astype("<i2")
        return Rendering(pcm=ramp.tobytes(), sample_rate=22050)


def test_english_prompt_is_audible_pcm_at_the_session_rate() -> None:
    pcm = Synthesizer().synthesize("Aisle 12. Slot 4.", locale="en-US", sample_rate=16000)

    assert len(pcm) % 2 == 0
    assert 0.8 < seconds(pcm, 16000) < 4.0
    assert loudness(pcm) > 500


def test_mandarin_prompt_uses_the_mandarin_voice() -> None:
    synthesizer = Synthesizer()
    mandarin = synthesizer.synthesize("第十二通道，四号货位。", locale="zh-CN", sample_rate=16000)
    # The English voice spells unknown Han characters out by name, which takes far longer.
    english = synthesizer.synthesize("第十二通道，四号货位。", locale="en-US", sample_rate=16000)

    assert 0.8 < seconds(mandarin, 16000) < 5.0
    assert loudness(mandarin) > 500
    assert mandarin != english


def test_mandarin_characters_are_spoken_not_spelled_as_english_pinyin() -> None:
    # espeak-ng 1.51's plain "cmn" voice reads "拣" as English "jee-an-three": much longer
    # than the syllable itself. If a newer espeak-ng fixes that, this test tells us so.
    words = ["好了", "拣三件。", "再说一遍"]
    default = Synthesizer()
    spelled = Synthesizer(voices={"zh-CN": Voice("zh-CN", "cmn", rate_wpm=180)})

    spoken_s = sum(seconds(default.synthesize(w, "zh-CN"), 16000) for w in words)
    spelled_s = sum(seconds(spelled.synthesize(w, "zh-CN"), 16000) for w in words)

    assert spoken_s < 0.85 * spelled_s


def test_output_is_resampled_to_each_sessions_rate() -> None:
    synthesizer = Synthesizer()
    narrow = synthesizer.synthesize("Pick 3.", sample_rate=8000)
    wide = synthesizer.synthesize("Pick 3.", sample_rate=48000)

    assert seconds(narrow, 8000) == pytest.approx(seconds(wide, 48000), abs=0.002)
    assert synthesizer.renders == 2


def test_the_same_prompt_is_synthesized_once() -> None:
    synthesizer = Synthesizer()
    first = synthesizer.synthesize("Assignment 4 1 2. Twelve picks. Say ready.")
    again = synthesizer.synthesize("Assignment 4 1 2. Twelve picks. Say ready.")

    assert again == first
    assert synthesizer.renders == 1


def test_locale_names_are_matched_loosely_and_unknown_ones_refused() -> None:
    engine = CountingEngine()
    synthesizer = Synthesizer(engine=engine)
    synthesizer.synthesize("好了", locale="zh_cn")

    assert engine.calls == [("好了", "cmn-latn-pinyin")]
    with pytest.raises(UnsupportedLocale, match=r"de-DE.*en-US, zh-CN"):
        synthesizer.synthesize("Gasse 12.", locale="de-DE")


def test_empty_prompts_and_bad_rates_are_refused() -> None:
    synthesizer = Synthesizer(engine=CountingEngine())

    with pytest.raises(ValueError, match="empty"):
        synthesizer.synthesize("   ")
    with pytest.raises(ValueError, match="sample_rate"):
        synthesizer.synthesize("Pick 3.", sample_rate=0)


def test_speaking_rate_is_configurable_per_locale() -> None:
    text = "Aisle 12. Slot 4. Pick 3."
    brisk = Synthesizer(voices={"en-US": Voice("en-US", "en-us", rate_wpm=260)})
    slow = Synthesizer(voices={"en-US": Voice("en-US", "en-us", rate_wpm=130)})

    assert seconds(brisk.synthesize(text), 16000) < 0.8 * seconds(slow.synthesize(text), 16000)


def test_unknown_espeak_voice_raises_instead_of_returning_silence() -> None:
    synthesizer = Synthesizer(voices={"xx-XX": Voice("xx-XX", "no-such-voice")})

    with pytest.raises(SynthesisFailed, match="no-such-voice"):
        synthesizer.synthesize("Pick 3.", locale="xx-XX")


class SilentEngine:
    name = "silent"

    def render(self, text: str, voice: Voice) -> Rendering:
        return Rendering(pcm=b"", sample_rate=22050)


def test_an_engine_that_renders_nothing_fails_loudly_and_nothing_is_cached() -> None:
    synthesizer = Synthesizer(engine=SilentEngine())

    for _ in range(2):
        with pytest.raises(SynthesisFailed, match="no audio"):
            synthesizer.synthesize("Pick 3.")
    assert synthesizer.renders == 2


def test_stream_yields_20ms_frames_of_the_same_audio() -> None:
    synthesizer = Synthesizer()
    frames = list(synthesizer.stream("Pick 3.", "en-US", sample_rate=16000, chunk_ms=20))

    assert b"".join(frames) == synthesizer.synthesize("Pick 3.", "en-US", 16000)
    assert {len(frame) for frame in frames[:-1]} == {640}
    assert 0 < len(frames[-1]) <= 640


def test_disk_cache_survives_a_new_synthesizer(tmp_path: Path) -> None:
    first_engine, second_engine = CountingEngine(), CountingEngine()
    spoken = Synthesizer(tmp_path, engine=first_engine).synthesize("Pick 3.", "en-US", 16000)

    reloaded = Synthesizer(tmp_path, engine=second_engine).synthesize("Pick 3.", "en-US", 16000)

    assert reloaded == spoken
    assert second_engine.calls == []
    [stored] = tmp_path.glob("*.wav")
    with wave.open(str(stored)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)


def test_cache_key_separates_rate_voice_and_text() -> None:
    engine = CountingEngine()
    synthesizer = Synthesizer(engine=engine, cache_entries=2)
    synthesizer.synthesize("Pick 3.", "en-US", 16000)
    synthesizer.synthesize("Pick 3.", "en-US", 8000)
    synthesizer.synthesize("Pick 4.", "en-US", 16000)
    synthesizer.synthesize("Pick 3.", "en-US", 16000)  # evicted by the two above: LRU of 2

    assert synthesizer.renders == 4


def test_concurrent_sessions_share_one_rendering() -> None:
    engine = CountingEngine()
    synthesizer = Synthesizer(engine=engine)
    prompts = ["Aisle 12. Slot 4.", "Pick 3.", "第十二通道。"] * 8
    locales = ["en-US", "en-US", "zh-CN"] * 8

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(synthesizer.synthesize, prompts, locales))

    assert len(engine.calls) == 3
    assert results[:3] * 8 == results


def test_concurrent_espeak_renders_do_not_interfere() -> None:
    texts = [f"Aisle {n}. Slot {n + 1}." for n in range(6)]
    alone = [Synthesizer().synthesize(text) for text in texts]

    # Two synthesizers share the one libespeak-ng in the process.
    left, right = Synthesizer(), Synthesizer()
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda i: (left, right)[i % 2].synthesize(texts[i]), range(6)))

    # espeak-ng carries some state (a few tens of ms of pause) from one utterance to the next,
    # so compare lengths: interleaved renders would halve or double them.
    assert [len(pcm) for pcm in together] == pytest.approx([len(pcm) for pcm in alone], rel=0.05)


PYTTSX3_SCRIPT = """
from voice.tts import EspeakEngine, Pyttsx3Engine, SynthesisFailed, Synthesizer
pcm = Synthesizer(engine=Pyttsx3Engine()).synthesize("Pick 3.", "en-US", 16000)
print(len(pcm))
try:
    Synthesizer(engine=EspeakEngine()).synthesize("Pick 4.", "en-US", 16000)
except SynthesisFailed as refused:
    print(refused)
"""


def test_pyttsx3_engine_speaks_and_refuses_to_share_espeak_with_the_direct_engine() -> None:
    # A process of its own: libespeak-ng can be initialised by one driver kind per process.
    done = subprocess.run(
        [sys.executable, "-c", PYTTSX3_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    size, refusal = done.stdout.strip().splitlines()

    assert 0.4 < seconds(b"\0" * int(size), 16000) < 3.0
    assert "already driven by pyttsx3" in refusal


def test_a_damaged_disk_cache_entry_is_rendered_again(tmp_path: Path) -> None:
    engine = CountingEngine()
    original = Synthesizer(tmp_path, engine=engine).synthesize("Pick 3.")
    [stored] = tmp_path.glob("*.wav")
    stored.write_bytes(b"RIFF\0\0")  # a crash mid-copy, a full disk, ...

    again = Synthesizer(tmp_path, engine=engine).synthesize("Pick 3.")

    assert again == original
    assert len(engine.calls) == 2
    with wave.open(str(stored)) as wav:
        assert wav.getnframes() == len(original) // 2
