"""`Synthesizer`: the one entry point the server, the CLI and the dialogs call for prompts.

It picks the locale's voice, renders through the engine at most once per distinct prompt,
converts to the session's sample rate and returns PCM s16le mono, ready for the headset
protocol's binary frames. It is safe to share between threads: lookups run in parallel, and
renders are serialised (the engine is not re-entrant anyway), so a prompt that several
sessions ask for at once is still rendered only once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from voice.tts.cache import PromptCache, PromptKey
from voice.tts.engine import SpeechEngine, SynthesisFailed
from voice.tts.espeak import EspeakEngine
from voice.tts.resample import resample_pcm16
from voice.tts.voices import DEFAULT_VOICES, Voice, voice_for

log = logging.getLogger(__name__)


class Synthesizer:
    """Renders and caches prompts.

    `cache_dir` adds an on-disk cache under that directory (None: memory only).
    `voices` maps locale to `Voice` (default: en-US and zh-CN on espeak-ng).
    `engine` replaces the default `EspeakEngine` (e.g. `Pyttsx3Engine()`).
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        voices: Mapping[str, Voice] | None = None,
        engine: SpeechEngine | None = None,
        cache_entries: int = 512,
    ) -> None:
        self._voices = dict(voices if voices is not None else DEFAULT_VOICES)
        self._engine: SpeechEngine = engine if engine is not None else EspeakEngine()
        self._cache = PromptCache(max_entries=cache_entries, directory=cache_dir)
        self._render_lock = threading.Lock()
        self.renders = 0
        """How many prompts were actually synthesized (cache misses), for tests and benches."""

    @property
    def locales(self) -> list[str]:
        return sorted(self._voices)

    def synthesize(self, text: str, locale: str = "en-US", sample_rate: int = 16000) -> bytes:
        """The prompt's audio as PCM s16le mono at `sample_rate`; cached after the first call."""
        key, voice = self._key(text, locale, sample_rate)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._render_lock:
            cached = self._cache.get(key)  # another thread may have rendered it meanwhile
            if cached is not None:
                return cached
            rendering = self._engine.render(key.text, voice)
            self.renders += 1
            if not rendering.pcm:
                # Caching silence would mute this prompt for the rest of the shift.
                raise SynthesisFailed(f"{self._engine.name} rendered no audio for {key.text!r}")
            pcm = resample_pcm16(rendering.pcm, rendering.sample_rate, sample_rate)
            self._cache.put(key, pcm)
            log.debug("rendered %r (%s, %d Hz, %d bytes)", key.text, locale, sample_rate, len(pcm))
            return pcm

    def stream(
        self, text: str, locale: str = "en-US", sample_rate: int = 16000, chunk_ms: int = 20
    ) -> Iterator[bytes]:
        """The same audio as `synthesize`, cut into frames of `chunk_ms` (the last may be short).

        The espeak-ng engine renders a pick prompt whole in a few milliseconds (bench/tts.py),
        so the first frame is ready when the whole prompt is; the frames let the caller pace
        them onto the socket the way live audio arrives.
        """
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
        pcm = self.synthesize(text, locale, sample_rate)
        step = max(2, sample_rate * chunk_ms // 1000 * 2)
        for start in range(0, len(pcm), step):
            yield pcm[start : start + step]

    def _key(self, text: str, locale: str, sample_rate: int) -> tuple[PromptKey, Voice]:
        if not text.strip():
            raise ValueError("nothing to say: the prompt text is empty")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        voice = voice_for(locale, self._voices)
        key = PromptKey(
            engine=self._engine.name,
            voice=voice.espeak_voice,
            locale=voice.locale,
            rate_wpm=voice.rate_wpm,
            sample_rate=sample_rate,
            text=text.strip(),
        )
        return key, voice
