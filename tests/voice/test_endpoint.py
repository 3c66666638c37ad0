from pathlib import Path

import numpy as np

from tests.voice.conftest import Speak
from voice.audio import add_noise, load, warehouse_noise
from voice.endpoint import Endpointer, SpeechEnded, SpeechStarted, utterances, word_spans

RATE = 16000


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def stream(endpointer: Endpointer, audio: np.ndarray, chunk: int) -> list[tuple[float, object]]:
    """Feed in chunks; return (seconds fed so far, event) pairs."""
    events = []
    for i in range(0, len(audio), chunk):
        for event in endpointer.feed(audio[i : i + chunk].tobytes()):
            events.append(((i + chunk) / RATE, event))
    return events


def test_one_utterance_gives_start_then_end_with_its_audio(speak: Speak) -> None:
    word = speak("location")
    audio = np.concatenate([silence(0.5), word, silence(0.8)])
    events = stream(Endpointer(RATE), audio, chunk=333)  # odd chunk size on purpose
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, SpeechEnded]
    ended = events[1][1]
    assert isinstance(ended, SpeechEnded)
    assert 0.3 < ended.start < 0.6
    assert len(ended.audio) >= 0.8 * len(word)


def test_speech_start_arrives_early_enough_to_stop_a_prompt(speak: Speak) -> None:
    """Barge-in: the start event comes while the picker is still talking."""
    words = speak("call supervisor")
    audio = np.concatenate([silence(0.3), words, silence(0.5)])
    events = stream(Endpointer(RATE), audio, chunk=320)
    started_at = next(t for t, e in events if isinstance(e, SpeechStarted))
    assert started_at < 0.3 + len(words) / RATE / 2


def test_two_words_with_a_long_pause_are_two_utterances(speak: Speak) -> None:
    five, seven = speak("five"), speak("seven")
    audio = np.concatenate([silence(0.3), five, silence(0.7), seven, silence(0.5)])
    assert len(utterances(audio, RATE)) == 2


def test_warehouse_noise_alone_is_not_speech() -> None:
    for kind in ("hum", "beeps", "air"):
        noise = warehouse_noise(3.0, RATE, kind, seed=5)
        assert utterances(noise, RATE) == [], kind


def test_speech_is_found_in_conveyor_noise(speak: Speak) -> None:
    word = np.concatenate([silence(1.0), speak("ready"), silence(1.0)])
    noisy = add_noise(word, warehouse_noise(3.0, RATE, "hum", seed=2), snr_db=10)
    found = utterances(noisy, RATE)
    assert len(found) == 1
    assert 0.7 < found[0].start < 1.2


def test_words_are_split_where_the_speaker_pauses(fsdd: Path) -> None:
    pause = np.zeros(1600, np.int16)  # 100 ms
    words = [load(fsdd / f"{d}_lucas_20.wav", 16000) for d in "394"]
    spoken = np.concatenate([pause, words[0], pause, words[1], pause, words[2], pause])
    spans = word_spans(spoken, 16000)
    assert len(spans) == 3
    assert word_spans(np.concatenate([pause, words[0], pause]), 16000)[0][0] >= len(pause) - 320
    assert word_spans(np.zeros(16000, np.int16), 16000) == []
