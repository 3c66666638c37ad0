from pathlib import Path

import numpy as np

from tests.voice.conftest import Speak
from voice.audio import add_noise, load, warehouse_noise
from voice.endpoint import (
    LIVE_ANSWERS,
    Endpointer,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    utterances,
    word_spans,
)

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


def quiet(samples: np.ndarray, gain_db: float) -> np.ndarray:
    return np.round(samples * 10 ** (gain_db / 20)).astype(np.int16)


def floor(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    hiss = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    return np.round(hiss * 32768 * 10 ** (dbfs / 20)).astype(np.int16)


def test_a_quiet_voice_over_a_microphone_floor_is_heard(fsdd: Path) -> None:
    """A voice 30 dB below fsdd-dev's, over a -60 dBFS floor: webrtcvad alone found 3% of
    such digits; raised to a level it hears, all of these are found."""
    for digit in "0123456789":
        word = quiet(load(fsdd / f"{digit}_jackson_7.wav", RATE), -30)
        audio = floor(2.0, -60, seed=int(digit))
        audio[8000 : 8000 + len(word)] += word
        assert len(utterances(audio, RATE)) == 1, digit


def test_a_quiet_voice_pausing_400_ms_inside_an_answer_is_heard_as_one_answer(
    fsdd: Path,
) -> None:
    """ "one … four" 30 dB below fsdd-dev with 400 ms between the words: their quiet edges
    sink under the floor, so the pause heard is longer than the pause said (with 700 ms
    for the rest, 20 of these 30 answers were cut in two)."""
    for speaker in ("george", "jackson", "lucas"):
        for take in range(3, 13):
            one, four = (quiet(load(fsdd / f"{d}_{speaker}_{take}.wav", RATE), -30) for d in "14")
            audio = floor(4.0, -60, seed=take)
            second = 8000 + len(one) + int(0.4 * RATE)
            audio[8000 : 8000 + len(one)] += one
            audio[second : second + len(four)] += four
            events = [e for _, e in stream(Endpointer(RATE, LIVE_ANSWERS), audio, chunk=320)]
            ended = [e for e in events if isinstance(e, SpeechEnded) and len(e.audio)]
            assert len(ended) == 1, (speaker, take)


def test_a_pause_is_reported_and_the_answer_goes_on_after_it(fsdd: Path) -> None:
    """ "five ... seven" with 300 ms between: a pause after "five", then one utterance
    holding both words once the long silence has passed."""
    five, seven = (load(fsdd / f"{d}_george_9.wav", RATE) for d in "57")
    audio = np.concatenate([silence(0.3), five, silence(0.3), seven, silence(1.0)])
    events = [e for _, e in stream(Endpointer(RATE, LIVE_ANSWERS), audio, chunk=320)]
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechPaused, SpeechEnded]
    first, second, ended = events[1], events[2], events[3]
    assert isinstance(first, SpeechPaused) and isinstance(second, SpeechPaused)
    assert isinstance(ended, SpeechEnded)
    assert len(first.audio) < len(five) + 0.5 * RATE < len(second.audio)
    assert ended.pause == second.pause
    assert len(ended.audio) >= len(five) + len(seven)


def test_a_whole_answer_found_late_in_its_pause_ends_at_once(fsdd: Path) -> None:
    endpointer = Endpointer(RATE, LIVE_ANSWERS)
    word = load(fsdd / "3_lucas_11.wav", RATE)
    events = endpointer.feed(np.concatenate([silence(0.3), word, silence(0.2)]))
    paused = next(e for e in events if isinstance(e, SpeechPaused))
    assert endpointer.pause == paused.pause
    ended = endpointer.end_after_pause(paused.pause)
    assert ended is not None and ended.pause == paused.pause
    assert len(ended.audio) >= len(word)
    assert endpointer.end_after_pause(paused.pause) is None  # over: nothing more to end
    assert [type(e) for e in endpointer.feed(silence(1.0))] == []


def test_a_whole_answer_found_early_in_its_pause_ends_when_the_pause_is_long_enough(
    fsdd: Path,
) -> None:
    """Read at 80 ms of quiet, the answer still ends only at 160 ms: a picker who goes on
    in between is not cut off, and one who stays quiet waits no longer for the reading."""
    endpointer = Endpointer(RATE, LIVE_ANSWERS)
    word = load(fsdd / "3_lucas_11.wav", RATE)
    audio = np.concatenate([silence(0.3), word, silence(1.0)])
    frame = RATE // 50
    paused = None
    for i in range(0, len(audio), frame):
        for event in endpointer.feed(audio[i : i + frame]):
            if isinstance(event, SpeechPaused):
                paused = event
                assert endpointer.end_after_pause(paused.pause) is None  # not yet quiet enough
            elif isinstance(event, SpeechEnded):
                assert paused is not None and event.pause == paused.pause
                quiet_ms = 1000 * (i + frame) / RATE - 1000 * event.end
                assert 160 <= quiet_ms < 200
                return
    raise AssertionError("the whole answer never ended")


def test_an_unsure_whole_answer_waits_longer_for_the_rest(fsdd: Path) -> None:
    """Ended after 480 ms of quiet, not 160: "four ... six" with 300 ms between, "four"
    read (wrongly) as two digits at its pause, stays one answer."""
    four, six = (load(fsdd / f"{d}_jackson_26.wav", RATE) for d in "46")
    frame = RATE // 50
    for quiet_ms, expected in ((None, 2), (480, 1)):
        endpointer = Endpointer(RATE, LIVE_ANSWERS)
        audio = np.concatenate([silence(0.3), four, silence(0.3), six, silence(1.0)])
        ended = []
        for i in range(0, len(audio), frame):
            for event in endpointer.feed(audio[i : i + frame]):
                if isinstance(event, SpeechPaused) and event.pause == 1:
                    assert endpointer.end_after_pause(event.pause, quiet_ms) is None
                elif isinstance(event, SpeechEnded):
                    ended.append(event)
        assert len(ended) == expected, quiet_ms
    assert len(ended[0].audio) >= len(four) + len(six)


def test_speech_after_a_whole_reading_keeps_the_answer_open(fsdd: Path) -> None:
    endpointer = Endpointer(RATE, LIVE_ANSWERS)
    five, seven = (load(fsdd / f"{d}_george_9.wav", RATE) for d in "57")
    audio, frame = np.concatenate([silence(0.3), five, silence(0.5)]), RATE // 50
    paused = next(
        e
        for i in range(0, len(audio), frame)
        for e in endpointer.feed(audio[i : i + frame])
        if isinstance(e, SpeechPaused)
    )
    assert endpointer.end_after_pause(paused.pause) is None  # read whole at 80 ms of quiet
    seven = seven[np.argmax(np.abs(seven) > 0.1 * np.abs(seven).max()) :]  # goes on at once
    events = endpointer.feed(np.concatenate([seven, silence(0.3)]))
    assert SpeechEnded not in [type(e) for e in events]
    # then it ends as a partial answer does, when its quiet has lasted `end_silence_ms`
    rest_of_quiet = silence(LIVE_ANSWERS.end_silence_ms / 1000)
    ended = [e for e in endpointer.feed(rest_of_quiet) if isinstance(e, SpeechEnded)]
    assert len(ended) == 1 and len(ended[0].audio) >= len(five) + len(seven)


def test_speech_after_a_pause_cancels_it(fsdd: Path) -> None:
    endpointer = Endpointer(RATE, LIVE_ANSWERS)
    five, seven = (load(fsdd / f"{d}_george_9.wav", RATE) for d in "57")
    endpointer.feed(np.concatenate([silence(0.3), five, silence(0.25)]))
    assert endpointer.pause is not None
    endpointer.feed(seven[: RATE // 5])
    assert endpointer.pause is None
    assert endpointer.end_after_pause(1) is None


def test_a_lone_voiced_frame_in_the_quiet_does_not_keep_the_answer_open(fsdd: Path) -> None:
    """A blip of the microphone floor 300 ms after the last word (one voiced frame) leaves
    the quiet that ends the answer running; speech going on (three frames) breaks it."""
    frame = RATE // 50
    word = load(fsdd / "5_george_9.wav", RATE)
    word = np.concatenate([word, np.zeros(-len(word) % frame, np.int16)])
    loudest = max(range(0, len(word), frame), key=lambda i: np.abs(word[i : i + frame]).max())
    voiced = word[loudest : loudest + frame]
    for frames, ends_at_the_word in ((1, True), (3, False)):
        before = np.concatenate([floor(0.3, -60), word, floor(0.3, -60, seed=1)])
        audio = np.concatenate([before, np.tile(voiced, frames), floor(1.5, -60, seed=2)])
        events = [e for _, e in stream(Endpointer(RATE, LIVE_ANSWERS), audio, chunk=frame)]
        ended = [e for e in events if isinstance(e, SpeechEnded)]
        assert len(ended) == 1, frames
        word_end = (0.3 * RATE + len(word)) / RATE
        assert (ended[0].end <= word_end + 0.02) == ends_at_the_word, (frames, ended[0].end)
