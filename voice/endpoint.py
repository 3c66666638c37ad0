"""Streaming endpointing: find where an utterance starts and ends in a live audio stream.

Feed PCM chunks of any size to an `Endpointer`; it returns events:
- `SpeechStarted` as soon as speech is detected (the server stops a playing prompt on it:
  barge-in),
- `SpeechPaused` with the utterance so far, when `pause_ms` is set and the speaker has been
  quiet that long: the answer may be whole, or the picker may be between two digits. Who
  knows what answer is expected reads it, and calls `end_after_pause` when it is whole: the
  utterance then ends once the quiet has lasted `whole_end_ms` (at once if it already has),
  so the reading runs while the pause is still being confirmed, not after it,
- `SpeechEnded` with the utterance's audio (with a short lead-in) once the speaker has been
  quiet for `end_silence_ms`.

A short pause that ends a whole answer and a long one that waits for the rest of a partial
one are how "five ... seven", said with natural pauses, stays one answer without making
every answer wait: the pause is most of what a picker waits for the next prompt.

A frame counts as speech when webrtcvad says so, its energy stands clear of the tracked
noise floor (steady conveyor hum, fans) and it is not a pure tone (reversing beepers).
Once an utterance has started, a lone voiced frame in its quiet does not break the quiet.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from voice.audio import gain, resample

log = logging.getLogger(__name__)

VAD_RATES = (8000, 16000, 32000, 48000)
MAX_VAD_GAIN_DB = 40.0


@dataclass(frozen=True)
class EndpointSettings:
    aggressiveness: int = 2  # webrtcvad 0..3
    frame_ms: int = 20
    start_frames: int = 3  # voiced frames within the last `start_window` to start
    start_window: int = 5
    end_silence_ms: int = 160  # trailing silence that ends an utterance
    pause_ms: int | None = None  # a shorter silence reported as a pause (None: none)
    whole_end_ms: int | None = None  # the silence that ends an answer found whole at a pause
    lead_in_ms: int = 200  # audio kept before the detected start
    min_speech_ms: int = 100  # shorter bursts are dropped (clicks, bumps)
    max_utterance_ms: int = 8000
    floor_margin_db: float = 6.0  # speech must be this far above the noise floor
    max_tonality: float = 0.97  # share of a frame's energy in its strongest 3 bins
    # Inside an utterance, speech goes on (its quiet is broken) only when `resume_frames`
    # of the last `resume_window` frames are voiced. A lone voiced frame is a blip of the
    # microphone floor: in 120 s of pink noise at -60 dBFS (three seeds), 0.9-1.7 % of
    # 8 kHz frames were voiced, most of them alone, and with 1 of 1 each restarted the
    # quiet that ends an answer: the 160 ms ending a whole one was broken 7-13 % of the
    # time, the 700 ms of a partial one 27-45 %; with 2 of 3, 1-2 % and 5-9 % (16 kHz:
    # 2-3 % and 7-13 % before, under 1 % after). Chosen on noise alone, on no speaker's
    # recordings (what it does to answers: bench/endpointing.py).
    resume_frames: int = 2
    resume_window: int = 3
    vad_floor_db: float = 55.0  # webrtcvad hears frames raised so the floor is here (re 1 LSB)

    def resumes(self, recent: Sequence[bool]) -> bool:
        """Whether speech goes on inside an utterance, after frames voiced as `recent` (the
        last one last): it is voiced, and so are `resume_frames` of the last
        `resume_window`."""
        return (
            bool(recent) and recent[-1] and sum(recent[-self.resume_window :]) >= self.resume_frames
        )


# A live answer: read after 80 ms of quiet, ended after 160 ms when that reading is whole,
# or given up to 1000 ms to go on when it is only part of one (see the module docstring).
# A quiet voice's word edges sink under the floor, so a pause heard lasts longer than the
# pause said: at -30 dB, 400 ms between two fsdd-dev digits was heard as 600-640 ms (p50)
# and up to 980 ms, and 700 ms split 6-30 % of such answers. 1000 ms is the longest pause
# heard of two speakers plus a frame, the largest over the three speakers left out
# (bench/endpointing.py, `pauses`).
LIVE_ANSWERS = EndpointSettings(pause_ms=80, whole_end_ms=160, end_silence_ms=1000)


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # seconds of stream audio since the endpointer started


@dataclass(frozen=True)
class SpeechPaused:
    """The speaker has paused: `audio` is the utterance so far. `pause` numbers the pauses
    of one stream, so a decision taken on one can be checked against `Endpointer.pause`."""

    pause: int
    audio: np.ndarray


@dataclass(frozen=True)
class SpeechEnded:
    start: float
    end: float  # the end of its speech
    audio: np.ndarray  # int16 at the stream's sample rate, lead-in included
    pause: int | None = None  # the pause it ended in: nothing was said since that pause
    # ended early at a pause as a whole answer (`end_after_pause`): when (`end` and the
    # quiet waited after it); None when the full silence, the stream or the length ended it
    cut: float | None = None


SpeechEvent = SpeechStarted | SpeechPaused | SpeechEnded


class Endpointer:
    """One stream's voice activity endpointer (not thread-safe; one per stream)."""

    def __init__(
        self,
        sample_rate: int,
        settings: EndpointSettings | None = None,
        noise_floor_db: float | None = None,
    ) -> None:
        """`noise_floor_db` primes the noise-floor tracker (e.g. from a recording's quietest
        frame); otherwise the first frames that are not digital silence set it."""
        import webrtcvad

        self.sample_rate = sample_rate
        self.settings = settings or EndpointSettings()
        self.vad_rate = sample_rate if sample_rate in VAD_RATES else 16000
        self._vad = webrtcvad.Vad(self.settings.aggressiveness)
        self._frame = sample_rate * self.settings.frame_ms // 1000
        self._pending = np.zeros(0, np.int16)
        self._frames_seen = 0
        self._recent: deque[bool] = deque(
            maxlen=max(self.settings.start_window, self.settings.resume_window)
        )
        lead = max(1, self.settings.lead_in_ms // self.settings.frame_ms)
        self._lead: deque[np.ndarray] = deque(maxlen=lead)
        self._utterance: list[np.ndarray] = []
        self._in_speech = False
        self._start_frame = 0
        self._silent_run = 0
        self._voiced_total = 0
        self._floor_db: float | None = noise_floor_db
        self._pauses = 0
        pause_ms = self.settings.pause_ms
        self._pause_frames = (
            None if pause_ms is None else max(1, pause_ms // self.settings.frame_ms)
        )
        whole_ms = self.settings.whole_end_ms or pause_ms or 0
        self._whole_frames = max(1, whole_ms // self.settings.frame_ms)
        self._ending_pause: int | None = None  # found whole: ends when the quiet is long enough
        self._ending_frames = self._whole_frames

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def quiet_ms(self) -> int:
        """How long the speaker has been quiet inside the utterance (0 outside one)."""
        return self._silent_run * self.settings.frame_ms if self._in_speech else 0

    @property
    def pause(self) -> int | None:
        """The number of the pause the speaker is in now, if they are in one."""
        if not self._in_speech or self._pause_frames is None:
            return None
        return self._pauses if self._silent_run >= self._pause_frames else None

    def end_after_pause(self, pause: int, quiet_ms: int | None = None) -> SpeechEnded | None:
        """The utterance up to pause number `pause` is a whole answer: end it once the
        speaker has been quiet for `quiet_ms` (default `whole_end_ms`). Returns the end
        when that is now; None when it comes later (from `feed`), or never because the
        speaker went on or the utterance already ended."""
        if self.pause != pause:
            return None
        frames = self._whole_frames if quiet_ms is None else quiet_ms // self.settings.frame_ms
        if self._silent_run >= frames:
            return self._finish(cut=True)
        self._ending_pause, self._ending_frames = pause, max(1, frames)
        return None

    def feed(self, pcm: bytes | np.ndarray) -> list[SpeechEvent]:
        """Add audio; return the events it completes (usually none)."""
        samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
        self._pending = np.concatenate([self._pending, np.asarray(samples, np.int16)])
        events: list[SpeechEvent] = []
        while len(self._pending) >= self._frame:
            frame, self._pending = self._pending[: self._frame], self._pending[self._frame :]
            event = self._step(frame)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SpeechEvent]:
        """End of stream: close an utterance in progress."""
        if self._in_speech:
            return [self._finish()]
        return []

    def _seconds(self, frames: int) -> float:
        return frames * self.settings.frame_ms / 1000.0

    def is_speech(self, frame: np.ndarray) -> bool:
        """Whether one frame is speech. It also moves the noise floor that the frames after
        it are judged against."""
        x = frame.astype(np.float64)
        energy_db = 10.0 * np.log10(np.mean(x * x) + 1.0)
        if energy_db < 20.0:  # digital silence (muted mic, padding): says nothing of the noise
            return False
        if self._floor_db is None:
            self._floor_db = energy_db
        # the floor follows quiet frames quickly and loud ones very slowly
        rate = 0.2 if energy_db < self._floor_db else 0.005
        self._floor_db += rate * (energy_db - self._floor_db)
        if energy_db < self._floor_db + self.settings.floor_margin_db:
            return False
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
        peak = np.max(np.convolve(spectrum, np.ones(3), mode="same"))
        if peak / (spectrum.sum() + 1e-9) > self.settings.max_tonality:
            return False
        vad_frame = resample(self._at_vad_level(x), self.sample_rate, self.vad_rate)
        return bool(self._vad.is_speech(vad_frame.astype("<i2").tobytes(), self.vad_rate))

    def _at_vad_level(self, frame: np.ndarray) -> np.ndarray:
        """The frame raised so the noise floor sits at `vad_floor_db`: webrtcvad misses
        quiet voices (speech 30 dB below fsdd-dev's, over a -60 dBFS floor: 3% of digits
        found), while the floor margin above already tells speech from noise at any level."""
        assert self._floor_db is not None
        raised_db = min(max(self.settings.vad_floor_db - self._floor_db, 0.0), MAX_VAD_GAIN_DB)
        return gain(frame, raised_db)

    def _step(self, frame: np.ndarray) -> SpeechEvent | None:
        s = self.settings
        voiced = self.is_speech(frame)
        self._frames_seen += 1
        self._recent.append(voiced)
        if not self._in_speech:
            self._lead.append(frame)
            started = list(self._recent)[-s.start_window :]
            if sum(started) >= s.start_frames:
                self._in_speech = True
                self._start_frame = self._frames_seen - len(self._lead)
                self._utterance = list(self._lead)
                self._lead.clear()
                self._silent_run = 0
                self._voiced_total = sum(started)
                return SpeechStarted(at=self._seconds(self._frames_seen - s.start_window))
            return None
        self._utterance.append(frame)
        if voiced:
            self._voiced_total += 1
        if s.resumes(list(self._recent)):
            self._silent_run = 0
        else:  # quiet, or a lone voiced frame in the quiet: a blip of the noise, not speech
            self._silent_run += 1
        too_long = len(self._utterance) * s.frame_ms >= s.max_utterance_ms
        if self._silent_run * s.frame_ms >= s.end_silence_ms or too_long:
            return self._finish()
        ending = self._ending_pause is not None and self._ending_pause == self.pause
        if ending and self._silent_run >= self._ending_frames:
            return self._finish(cut=True)
        if self._silent_run == self._pause_frames:
            self._pauses += 1
            return SpeechPaused(self._pauses, np.concatenate(self._utterance))
        return None

    def _finish(self, *, cut: bool = False) -> SpeechEnded:
        s = self.settings
        audio = np.concatenate(self._utterance) if self._utterance else np.zeros(0, np.int16)
        start = self._seconds(self._start_frame)
        end = self._seconds(self._frames_seen - self._silent_run)
        cut_at = self._seconds(self._frames_seen) if cut else None
        voiced_ms = self._voiced_total * s.frame_ms
        pause = self.pause
        self._in_speech = False
        self._ending_pause = None
        self._utterance = []
        self._recent.clear()
        self._silent_run = 0
        if voiced_ms < s.min_speech_ms:
            log.debug("dropped a %d ms burst", voiced_ms)
            return SpeechEnded(start, end, np.zeros(0, np.int16), pause, cut_at)
        return SpeechEnded(start, end, audio, pause, cut_at)


def utterances(
    samples: np.ndarray,
    sample_rate: int,
    settings: EndpointSettings | None = None,
    chunk_ms: int = 20,
    noise_floor_db: float | None = None,
) -> list[SpeechEnded]:
    """Run a whole recording through an endpointer (as if streamed) and return its
    utterances; bursts too short to be speech are left out."""
    endpointer = Endpointer(sample_rate, settings, noise_floor_db)
    step = sample_rate * chunk_ms // 1000
    events: list[SpeechEvent] = []
    for i in range(0, len(samples), step):
        events.extend(endpointer.feed(samples[i : i + step]))
    events.extend(endpointer.flush())
    return [e for e in events if isinstance(e, SpeechEnded) and len(e.audio)]


def word_spans(
    samples: np.ndarray, sample_rate: int, min_gap_ms: int = 60, min_word_ms: int = 80
) -> list[tuple[int, int]]:
    """(start, end) sample offsets of the words of one utterance, split where the energy
    dips for at least `min_gap_ms`: how digits spoken with a short pause between them
    ("five ... seven") are told apart. Words run together stay one span."""
    hop = sample_rate // 100
    count = len(samples) // hop
    if count == 0:
        return []
    frames = samples[: count * hop].astype(np.float64).reshape(count, hop)
    db = median_filter(10.0 * np.log10(np.mean(frames**2, axis=1) + 1.0), size=3)
    peak, floor = np.percentile(db, 95), np.percentile(db, 10)
    loud = db > max(peak - 25.0, floor + 0.3 * (peak - floor))
    spans: list[list[int]] = []
    for i in map(int, np.flatnonzero(loud)):
        if spans and i - spans[-1][1] < min_gap_ms // 10:
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1])
    return [(a * hop, b * hop) for a, b in spans if (b - a) * 10 >= min_word_ms]
