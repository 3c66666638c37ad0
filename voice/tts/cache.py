"""The cache of rendered prompts: an in-memory LRU, optionally backed by a directory.

The same prompt text with the same engine, voice, speaking rate and output sample rate always
gives the same audio, so it is synthesized once per process (and once per disk cache). The
disk copy survives restarts, so a server warms up without re-rendering a whole shift's
prompts. Files are written to a temporary name and renamed, so a reader never sees half a
prompt, and several processes may share one directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import wave
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptKey:
    """Everything that changes a prompt's audio."""

    engine: str
    voice: str
    locale: str
    rate_wpm: int
    sample_rate: int
    text: str

    def digest(self) -> str:
        """A stable file name for this key (the text may be any length or script)."""
        canonical = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class PromptCache:
    """Thread-safe LRU of PCM by `PromptKey`, with an optional on-disk second level."""

    def __init__(self, max_entries: int = 512, directory: Path | None = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._directory = directory
        self._entries: OrderedDict[PromptKey, bytes] = OrderedDict()
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: PromptKey) -> bytes | None:
        """The cached PCM for `key`, from memory or else from disk; None when absent."""
        with self._lock:
            pcm = self._entries.get(key)
            if pcm is not None:
                self._entries.move_to_end(key)
                return pcm
        pcm = self._read_file(key)
        if pcm is not None:
            self._remember(key, pcm)
        return pcm

    def put(self, key: PromptKey, pcm: bytes) -> None:
        self._remember(key, pcm)
        self._write_file(key, pcm)

    def _remember(self, key: PromptKey, pcm: bytes) -> None:
        with self._lock:
            self._entries[key] = pcm
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def _path(self, key: PromptKey) -> Path | None:
        if self._directory is None:
            return None
        return self._directory / f"{key.digest()}.wav"

    def _read_file(self, key: PromptKey) -> bytes | None:
        """The prompt from disk; a damaged file is removed and reported as a miss."""
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            with wave.open(str(path), "rb") as wav:
                rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
        except (wave.Error, EOFError) as exc:
            problem = f"unreadable ({exc})"
        else:
            if rate == key.sample_rate and pcm:
                return pcm
            problem = f"at {rate} Hz with {len(pcm)} bytes, expected {key.sample_rate} Hz"
        log.warning("discarding cached prompt %s: %s; it will be rendered again", path, problem)
        path.unlink(missing_ok=True)
        return None

    def _write_file(self, key: PromptKey, pcm: bytes) -> None:
        path = self._path(key)
        if path is None:
            return
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=".wav")
        try:
            with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(key.sample_rate)
                wav.writeframes(pcm)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
