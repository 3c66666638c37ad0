"""PocketSphinx engine: the embedded default. Its en-US acoustic model and dictionary ship
inside the `pocketsphinx` package, so it works on a bare machine with nothing downloaded.

Each grammar becomes a JSGF search. Narrow-band input (8 kHz telephone/headset audio) is
brought to the model's 16 kHz with its upper band filled by spectral folding, which matches
the wide-band model far better than an empty 4–8 kHz band (fsdd-dev: 68% → 80%).

Confidence: PocketSphinx scores each frame relative to its best-scoring senone, so the
grammar path's score per frame says how far the answer is from what the acoustics alone
would pick (free to compute). Optionally (`phone_loop_confidence`) the grammar's score is
compared with an unconstrained phone loop over the same frames, which separates wrong
words a little better but costs a second decode (about 30 ms).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt  # here, not at the first 8 kHz answer: 1-2 s

from voice.audio import resample
from voice.grammar import Grammar
from voice.stt.base import BufferedRecognizer, Result

log = logging.getLogger(__name__)

MODEL_RATE = 16000
LOG_BASE = math.log(1.0001)  # PocketSphinx's logmath base


@dataclass(frozen=True)
class PocketSphinxSettings:
    fold_gain: float = 0.3  # level of the folded upper band for narrow-band input
    phone_loop_confidence: bool = False
    # confidence = sigmoid(slope * (per-frame score - midpoint)); the score is relative to
    # the phone loop when phone_loop_confidence is set
    confidence_midpoint: float = -31.0
    confidence_slope: float = 0.25
    loop_midpoint: float = 0.0
    loop_slope: float = 0.3
    min_confidence: float = 0.5


def model_dir() -> str:
    import pocketsphinx

    return os.path.join(os.path.dirname(pocketsphinx.__file__), "model", "en-us")


class PocketSphinxModel:
    """The shared acoustic model: a small pool of decoders, each with every grammar used so
    far added as a search. A recogniser borrows a decoder only for the decode call.

    Each decode starts with the decoder's features reset (0.1 ms): live cepstral mean
    normalisation carried its estimate over from the decoder's last utterance, and
    decoders are shared, so one picker's answer was read after another's differently ("three"
    as "eight") and the same audio twice gave two confidences."""

    def __init__(self, settings: PocketSphinxSettings | None = None) -> None:
        self.settings = settings or PocketSphinxSettings()
        self._idle: list[object] = []
        self._searches: dict[int, set[str]] = {}
        self._lock = threading.Lock()

    def _new_decoder(self) -> object:
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=MODEL_RATE, lm=None, bestpath=False, loglevel="FATAL")
        if self.settings.phone_loop_confidence:
            decoder.add_allphone_file("_phones", os.path.join(model_dir(), "en-us-phone.lm.bin"))
        return decoder

    def borrow(self) -> object:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new_decoder()

    def give_back(self, decoder: object) -> None:
        with self._lock:
            self._idle.append(decoder)

    def ensure_search(self, decoder: object, grammar: Grammar) -> str:
        name = "g_" + _search_key(grammar)
        known = self._searches.setdefault(id(decoder), set())
        if name not in known:
            decoder.add_jsgf_string(name, jsgf(grammar))  # type: ignore[attr-defined]
            known.add(name)
        return name


def _search_key(grammar: Grammar) -> str:
    return (
        f"{grammar.locale}_{'-'.join(grammar.commands)}_{grammar.min_digits}_{grammar.max_digits}"
    )


def jsgf(grammar: Grammar) -> str:
    """The grammar as JSGF over the locale's spoken forms."""
    if not grammar.locale.startswith("en"):
        raise ValueError(f"PocketSphinx ships an en-US model only, not {grammar.locale}")
    rules = ["#JSGF V1.0;", "grammar wavepick;"]
    alternatives: list[str] = []
    if grammar.accepts_digits:
        forms = [f for d in range(10) for f in grammar.vocabulary.forms[str(d)]]
        rules.append("<digit> = " + " | ".join(forms) + ";")
        alternatives.append(f"<digit><{grammar.min_digits},{grammar.max_digits}>")
    for token in grammar.commands:
        alternatives.extend(grammar.vocabulary.forms[token])
    # JSGF has no {m,n} repeat: expand the digit string into explicit alternatives
    body: list[str] = []
    for alt in alternatives:
        if alt.startswith("<digit><"):
            body.extend(
                "(" + " ".join(["<digit>"] * n) + ")"
                for n in range(grammar.min_digits, grammar.max_digits + 1)
            )
        else:
            body.append(alt)
    rules.append("public <answer> = " + " | ".join(body) + ";")
    return "\n".join(rules) + "\n"


def widen(samples: np.ndarray, sample_rate: int, fold_gain: float) -> np.ndarray:
    """Audio at 16 kHz for the model; narrow-band input gets a folded upper band."""
    if sample_rate >= MODEL_RATE or fold_gain <= 0:
        return resample(samples, sample_rate, MODEL_RATE)
    narrow = resample(samples, sample_rate, MODEL_RATE // 2)
    base = resample(narrow, MODEL_RATE // 2, MODEL_RATE).astype(np.float64)
    stuffed = np.zeros(len(narrow) * 2)
    stuffed[::2] = narrow.astype(np.float64) * 2.0
    high = sosfilt(butter(6, 0.5, "high", output="sos"), stuffed)[: len(base)]
    mixed = base + fold_gain * high
    return np.clip(np.round(mixed), -32768, 32767).astype(np.int16)


class PocketSphinxRecognizer(BufferedRecognizer):
    """One stream's PocketSphinx recogniser for one grammar."""

    name = "pocketsphinx"

    def __init__(
        self,
        grammar: Grammar,
        sample_rate: int,
        model: PocketSphinxModel,
        min_confidence: float | None = None,
    ) -> None:
        super().__init__(grammar, sample_rate)
        self.model = model
        self.settings = model.settings
        self.min_confidence = (
            model.settings.min_confidence if min_confidence is None else min_confidence
        )
        jsgf(grammar)  # fail early on a locale the model cannot hear

    def _decode_with(self, decoder: object, search: str, audio: bytes) -> tuple[str, float, int]:
        d = decoder
        d.activate_search(search)  # type: ignore[attr-defined]
        d.reinit_feat()  # type: ignore[attr-defined]
        d.start_utt()  # type: ignore[attr-defined]
        d.process_raw(audio, full_utt=True)  # type: ignore[attr-defined]
        d.end_utt()  # type: ignore[attr-defined]
        hyp = d.hyp()  # type: ignore[attr-defined]
        frames = int(d.n_frames())  # type: ignore[attr-defined]
        if hyp is None:
            return "", -math.inf, frames
        return hyp.hypstr, math.log(max(hyp.score, 1e-300)) / LOG_BASE, frames

    def decode(self, audio: np.ndarray) -> Result:
        wide = widen(audio, self.sample_rate, self.settings.fold_gain).tobytes()
        decoder = self.model.borrow()
        try:
            search = self.model.ensure_search(decoder, self.grammar)
            text, score, frames = self._decode_with(decoder, search, wide)
            gap = score / max(frames, 1)
            if text and self.settings.phone_loop_confidence:
                _, loop_score, _ = self._decode_with(decoder, "_phones", wide)
                if math.isfinite(loop_score):
                    gap = (score - loop_score) / max(frames, 1)
        finally:
            self.model.give_back(decoder)
        if not text:
            return Result.rejected(self.name, "no hypothesis")
        tokens = self._tokens(text)
        if tokens is None or not self.grammar.accepts(tokens):
            return Result.rejected(self.name, f"out of grammar: {text!r}")
        s = self.settings
        slope, midpoint = s.confidence_slope, s.confidence_midpoint
        if s.phone_loop_confidence:
            slope, midpoint = s.loop_slope, s.loop_midpoint
        confidence = 1.0 / (1.0 + math.exp(-slope * (gap - midpoint)))
        return Result(
            text=self.grammar.text(tokens),
            tokens=tokens,
            confidence=confidence,
            engine=self.name,
            accepted=confidence >= self.min_confidence,
            details={"score_per_frame": round(gap, 2)},
        )

    def _tokens(self, text: str) -> tuple[str, ...] | None:
        whole = self.grammar.vocabulary.token_for(text)
        if whole is not None and whole in self.grammar.commands:
            return (whole,)
        tokens = []
        for word in text.split():
            token = self.grammar.vocabulary.token_for(word)
            if token is None:
                return None
            tokens.append(token)
        return tuple(tokens)
