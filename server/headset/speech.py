"""Speech for headset sessions: one synthesizer and one set of loaded recognition models,
shared by every connection (created once in the app's lifespan)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.registry import ModelStore
from server.config import Settings
from voice.grammar import Grammar, named_grammar
from voice.stt import EngineCache, open_recognizer
from voice.stt.base import Result
from voice.stt.factory import EngineUnavailable
from voice.tts import Synthesizer

log = logging.getLogger(__name__)


@dataclass
class SpeechServices:
    synthesizer: Synthesizer
    engines: EngineCache
    engine: str = "auto"
    profiles_dir: Path | None = None
    min_confidence: float = 0.5
    locales: frozenset[str] = field(default_factory=lambda: frozenset({"en-US", "zh-CN"}))

    def profile(self, operator: str) -> Path | None:
        """The operator's enrolled voice profile, when there is one."""
        if self.profiles_dir is None:
            return None
        path = self.profiles_dir / operator
        return path if path.is_dir() else None

    def recognize(
        self, audio: np.ndarray, grammar: Grammar, sample_rate: int, operator: str
    ) -> Result:
        recognizer = open_recognizer(
            self.engine,
            grammar,
            sample_rate,
            profile=self.profile(operator),
            cache=self.engines,
            min_confidence=self.min_confidence,
        )
        recognizer.accept_audio(audio)
        return recognizer.final()

    def warm_up(self) -> None:
        """Load what recognition needs (the models, every word in synthetic voices) before
        the first picker answers: built on first use, they would keep that answer waiting
        for seconds (en-US and zh-CN: about 10 s of CPU). Runs in the background, so a
        failure is logged and left for the first answer to report."""
        for locale in sorted(self.locales):
            try:
                recognizer = open_recognizer(
                    self.engine, named_grammar("all", locale), 16000, cache=self.engines
                )
                recognizer.recognize(_hiss(16000))  # compiles the matcher: 3-5 s the first time
            except EngineUnavailable as exc:
                log.info("nothing to warm up for %s: %s", locale, exc)
            except Exception:
                log.exception("speech warm-up failed for %s", locale)
        log.info("speech warmed up for %s", ", ".join(sorted(self.locales)))

    def synthesize(self, text: str, locale: str, sample_rate: int) -> bytes:
        return self.synthesizer.synthesize(text, locale=locale, sample_rate=sample_rate)


def _hiss(rate: int) -> np.ndarray:
    """Half a second of faint noise: enough for every engine to decode something."""
    return (np.random.default_rng(0).standard_normal(rate // 2) * 300).astype(np.int16)


def make_speech_services(settings: Settings) -> SpeechServices:
    """Speech for the app: prompts and the words in synthetic voices cached on disk, Vosk
    models from the model store when installed, operator voice profiles under the data
    dir."""
    return SpeechServices(
        synthesizer=Synthesizer(cache_dir=settings.data_dir / "tts-cache"),
        engines=EngineCache(
            vosk_models=dict(ModelStore(settings.models_path).installed_for("vosk")),
            synthetic_dir=settings.speech_cache_path,
        ),
        engine=settings.stt_engine,
        profiles_dir=settings.data_dir / "profiles",
        min_confidence=settings.min_confidence,
    )
