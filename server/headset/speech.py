"""Speech for headset sessions: one set of loaded recognition models and one synthesizer,
in this process, in speech worker processes (`WAVEPICK_SPEECH_WORKERS`) or in the workers
sharing a Redis (`WAVEPICK_SPEECH_BROKERED`), shared by every connection (created once
with the app)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from anyio import CapacityLimiter

from models.registry import ModelStore
from server.config import Settings
from voice.broker import BrokeredSpeech
from voice.grammar import Grammar
from voice.stt.base import Result
from voice.workers import (
    LocalSpeech,
    Speech,
    SpeechSetup,
    SpeechWorkers,
    Wanted,
    default_processes,
)

log = logging.getLogger(__name__)


LOCALES = ("en-US", "zh-CN")
READING_THREADS = 64  # answers being read at once, each waiting on a speech worker or reading


@dataclass
class SpeechServices:
    speech: Speech
    profiles_dir: Path | None = None
    min_confidence: float = 0.5
    locales: frozenset[str] = field(default_factory=lambda: frozenset({"en-US", "zh-CN"}))
    _readers: CapacityLimiter | None = field(default=None, init=False, repr=False)

    def readers(self) -> CapacityLimiter:
        """The threads answers are read in, apart from the app's default pool: the database
        runs there, and readings waiting for a speech worker held up the ledger's work."""
        if self._readers is None:  # made in the event loop that uses it
            self._readers = CapacityLimiter(READING_THREADS)
        return self._readers

    def profile(self, operator: str) -> Path | None:
        """The operator's enrolled voice profile, when there is one."""
        if self.profiles_dir is None:
            return None
        path = self.profiles_dir / operator
        return path if path.is_dir() else None

    def recognize(
        self,
        audio: np.ndarray,
        grammar: Grammar,
        sample_rate: int,
        operator: str,
        wanted: Wanted | None = None,
    ) -> Result:
        """What `operator` said; `NotWanted` when `wanted` says no as the reading is about
        to run."""
        return self.speech.recognize(audio, grammar, sample_rate, self.profile(operator), wanted)

    def synthesize(self, text: str, locale: str, sample_rate: int) -> bytes:
        return self.speech.synthesize(text, locale, sample_rate)

    def warm_up(self) -> None:
        """Load the models and every word in synthetic voices before the first picker
        answers (en-US and zh-CN: about 10 s of CPU, seconds with the disk cache). Runs in
        the background: a failure is logged and left for the first answer to report."""
        try:
            self.speech.warm_up()
        except Exception:
            log.exception("speech warm-up failed")
            return
        log.info("speech warmed up for %s", ", ".join(sorted(self.locales)))

    def close(self) -> None:
        self.speech.close()


def speech_setup(settings: Settings) -> SpeechSetup:
    """What a process needs to build its speech: the configured engine, Vosk models from
    the model store when installed, the prompt and synthetic-voice caches on disk."""
    return SpeechSetup(
        engine=settings.stt_engine,
        min_confidence=settings.min_confidence,
        vosk_models=tuple(
            (locale, str(path))
            for locale, path in ModelStore(settings.models_path).installed_for("vosk").items()
        ),
        synthetic_dir=settings.speech_cache_path,
        prompt_cache_dir=settings.data_dir / "tts-cache",
        locales=LOCALES,
    )


def make_speech_services(settings: Settings) -> SpeechServices:
    """Speech for the app, with operator voice profiles under the data dir: in worker
    processes unless `speech_workers` is 0, or by the workers sharing Redis when
    `speech_brokered`."""
    setup = speech_setup(settings)
    workers = default_processes() if settings.speech_workers is None else settings.speech_workers
    speech: Speech
    if settings.speech_brokered:
        assert settings.redis_url is not None  # Settings refuses brokered speech without it
        speech = BrokeredSpeech(
            setup,
            settings.redis_url,
            settings.redis_prefix,
            local_workers=workers,
            received_profiles=received_profiles(settings),
            deadline_s=settings.speech_reply_seconds,
        )
    else:
        speech = SpeechWorkers(setup, workers) if workers else LocalSpeech(setup)
    return SpeechServices(
        speech=speech,
        profiles_dir=settings.data_dir / "profiles",
        min_confidence=settings.min_confidence,
        locales=frozenset(LOCALES),
    )


def received_profiles(settings: Settings) -> Path:
    """Where a speech worker keeps the voice profiles apps have shared with it."""
    return settings.speech_cache_path / "received-profiles"
