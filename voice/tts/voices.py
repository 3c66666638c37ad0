"""Which espeak-ng voice and speaking rate each locale uses.

Pickers hear the same few prompts hundreds of times a shift; a rate a little above espeak-ng's
default of 175 words per minute keeps them moving while staying clear. Both are plain data so a
deployment can pass its own table to `Synthesizer(voices=...)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class UnsupportedLocale(ValueError):
    """A prompt was asked for in a locale that has no voice configured."""

    def __init__(self, locale: str, known: list[str]) -> None:
        super().__init__(f"no TTS voice for locale {locale!r}; configured: {', '.join(known)}")
        self.locale = locale


@dataclass(frozen=True)
class Voice:
    """One locale's voice: the espeak-ng voice name and the speaking rate in words/minute."""

    locale: str
    espeak_voice: str
    rate_wpm: int = 190

    def __post_init__(self) -> None:
        if not 80 <= self.rate_wpm <= 450:
            raise ValueError(f"rate_wpm {self.rate_wpm} is outside espeak-ng's 80..450")


DEFAULT_VOICES: Mapping[str, Voice] = MappingProxyType(
    {
        "en-US": Voice("en-US", "en-us", rate_wpm=190),
        # Not plain "cmn": in espeak-ng 1.51 (Debian 12) that voice turns many characters
        # into pinyin and reads the pinyin as English ("第" comes out as "dee four").
        # "cmn-latn-pinyin" speaks the same dictionary's pinyin as Mandarin syllables.
        # Mandarin syllables are denser than English words; a smaller step above the default.
        "zh-CN": Voice("zh-CN", "cmn-latn-pinyin", rate_wpm=180),
    }
)


def voice_for(locale: str, voices: Mapping[str, Voice]) -> Voice:
    """Find the voice for `locale`, accepting "zh_cn" for "zh-CN" (clients differ)."""
    wanted = locale.replace("_", "-").lower()
    for name, voice in voices.items():
        if name.lower() == wanted:
            return voice
    raise UnsupportedLocale(locale, sorted(voices))
