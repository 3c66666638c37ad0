"""Operator voice profiles: a directory of enrolled takes, one small WAV per take.

```
profile/
  manifest.json      {"version": 1, "takes": [{"token": "7", "file": "takes/7-000.wav"}, ...]}
  takes/7-000.wav    16-bit mono, at the rate it was recorded
```
Takes are stored as audio, not features, so a better front end can re-read them later.
A word is any canonical grammar token ("7", "say_again") or a spoken form of one in any
locale ("seven", "say again", "七", "再说一遍").
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voice.audio import read_wav, write_wav
from voice.grammar import LOCALES_DIR, load_vocabulary

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class UnknownWord(ValueError):
    """An enrollment names a word no locale's vocabulary knows."""


class NoSpeech(ValueError):
    """An enrollment take holds no speech."""


def resolve_token(word: str) -> str:
    """The canonical token for a token name or a spoken form in any known locale."""
    candidate = word.strip().lower().replace("-", " ")
    for locale_dir in sorted(LOCALES_DIR.iterdir()):
        if not (locale_dir / "vocabulary.toml").is_file():
            continue
        vocab = load_vocabulary(locale_dir.name)
        if candidate.replace(" ", "_") in vocab.forms:
            return candidate.replace(" ", "_")
        token = vocab.token_for(candidate) or vocab.token_for(word.strip())
        if token is not None:
            return token
    raise UnknownWord(f"{word!r} is not a grammar word in any locale")


@dataclass
class Take:
    token: str
    file: str


@dataclass
class Profile:
    """An operator's enrolled takes. Load once per operator and share read-only."""

    path: Path
    takes: list[Take] = field(default_factory=list)
    _audio: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | Path, create: bool = False) -> Profile:
        root = Path(path)
        manifest = root / MANIFEST
        if not manifest.is_file():
            if not create:
                raise FileNotFoundError(f"no voice profile at {root} (missing {MANIFEST})")
            return cls(root)
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return cls(root, [Take(t["token"], t["file"]) for t in data["takes"]])

    @property
    def tokens(self) -> set[str]:
        return {t.token for t in self.takes}

    def count(self, token: str) -> int:
        return sum(1 for t in self.takes if t.token == token)

    def add_take(self, word: str, samples: np.ndarray, sample_rate: int) -> Take:
        """Store one take of a word and update the manifest."""
        token = resolve_token(word)
        (self.path / "takes").mkdir(parents=True, exist_ok=True)
        index = len(self.takes)
        rel = f"takes/{token}-{index:03d}.wav"
        while (self.path / rel).exists():
            index += 1
            rel = f"takes/{token}-{index:03d}.wav"
        write_wav(self.path / rel, samples, sample_rate)
        take = Take(token, rel)
        self.takes.append(take)
        self.save()
        log.info("enrolled %s take %s into %s", token, rel, self.path)
        return take

    def add_file(self, word: str, wav: str | Path, trim: bool = True) -> Take:
        """Enroll a WAV take; with `trim`, only its spoken part (as the endpointer hears it,
        so takes and live utterances are cut the same way)."""
        samples, rate = read_wav(wav)
        if trim:
            from voice.stt.recording import speech_span

            span = speech_span(samples, rate)
            if span is None:
                raise NoSpeech(f"{wav}: no speech found")
            samples = span
        return self.add_take(word, samples, rate)

    def save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        data = {"version": 1, "takes": [{"token": t.token, "file": t.file} for t in self.takes]}
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.path / MANIFEST)

    def audio(self, take: Take) -> tuple[np.ndarray, int]:
        if take.file not in self._audio:
            self._audio[take.file] = read_wav(self.path / take.file)
        return self._audio[take.file]
