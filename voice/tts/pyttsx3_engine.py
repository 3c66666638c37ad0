"""`Pyttsx3Engine`: prompts through pyttsx3's espeak driver, the interface the issue names.

Not the default. pyttsx3 2.99's espeak driver runs libespeak-ng asynchronously and waits for
each prompt in 10 ms polling steps; measured here (bench/tts.py, `rate_applied`), it applies
a new speaking rate one prompt late or not at all in most alternations (a picker would hear a
260 wpm prompt at 200 wpm), and the first prompts of a process occasionally come back empty.
Its latency is fine (15-20 ms to first audio). The direct `EspeakEngine` has none of these
problems, so `Synthesizer` uses it; this engine stays for comparison and for callers that
want pyttsx3 explicitly: `Synthesizer(engine=Pyttsx3Engine())`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import wave
from pathlib import Path
from typing import Any

from voice.tts.engine import ESPEAK_LOCK, Rendering, SynthesisFailed, claim_espeak
from voice.tts.voices import Voice

log = logging.getLogger(__name__)


class Pyttsx3Engine:
    """pyttsx3's espeak driver, rendering to a WAV file that is read back into memory.

    The pyttsx3 engine is created on first use, not at construction, so building a
    `Synthesizer` stays cheap and touches no native library. pyttsx3 reports driver errors
    through its "error" event instead of raising; they are collected and raised here.
    """

    name = "pyttsx3-espeak"

    def __init__(self) -> None:
        self._engine: Any = None
        self._errors: list[BaseException] = []

    def render(self, text: str, voice: Voice) -> Rendering:
        with ESPEAK_LOCK, tempfile.TemporaryDirectory(prefix="wavepick-tts-") as scratch:
            engine = self._pyttsx3()
            self._errors.clear()
            engine.setProperty("voice", voice.espeak_voice)
            engine.setProperty("rate", voice.rate_wpm)
            self._raise_collected(voice)
            target = Path(scratch) / "prompt.wav"
            # The espeak driver print()s "Audio saved to ..." for every file; keep it off
            # the server's stdout. Under ESPEAK_LOCK no other render is running.
            with contextlib.redirect_stdout(io.StringIO()):
                engine.save_to_file(text, str(target))
                engine.runAndWait()
            self._raise_collected(voice)
            if not target.exists():
                raise SynthesisFailed(f"espeak-ng voice {voice.espeak_voice!r} wrote no audio")
            return _read_wav(target)

    def _pyttsx3(self) -> Any:
        if self._engine is None:
            import pyttsx3  # deferred: importing it loads and initialises libespeak-ng

            claim_espeak("pyttsx3")
            engine = pyttsx3.init("espeak")
            engine.connect("error", self._collect_error)
            self._engine = engine
            log.info("pyttsx3 espeak driver ready")
        return self._engine

    def _collect_error(self, exception: BaseException, **_: object) -> None:
        self._errors.append(exception)

    def _raise_collected(self, voice: Voice) -> None:
        if self._errors:
            first = self._errors[0]
            self._errors.clear()
            raise SynthesisFailed(
                f"espeak-ng voice {voice.espeak_voice!r} failed: {first}"
            ) from first


def _read_wav(path: Path) -> Rendering:
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise SynthesisFailed(
                f"expected 16-bit mono audio, got {wav.getnchannels()} channel(s) "
                f"of {8 * wav.getsampwidth()} bits"
            )
        return Rendering(pcm=wav.readframes(wav.getnframes()), sample_rate=wav.getframerate())
