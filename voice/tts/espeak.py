"""`EspeakEngine`: libespeak-ng called directly (ctypes), in its synchronous output mode.

In synchronous mode `espeak_Synth` renders on the calling thread and hands every block of
samples to our callback before it returns: no polling loop, no worker thread inside the
library, no temporary files, and the voice and rate set just before a prompt are the ones it
is spoken with.

The library is loaded and initialised on the first render, never at import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

from voice.tts.engine import ESPEAK_LOCK, Rendering, SynthesisFailed, claim_espeak
from voice.tts.voices import Voice

log = logging.getLogger(__name__)

# From espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_PARAM_RATE = 1
_EE_OK = 0
_BUFFER_MS = 100

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Library:
    """The process's one initialised libespeak-ng, with the callback that collects audio."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib: Any = ctypes.CDLL(path)
        except OSError as exc:
            raise SynthesisFailed(
                f"cannot load libespeak-ng ({path}): install espeak-ng (Debian: libespeak-ng1)"
            ) from exc
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, None, 0)
        if sample_rate <= 0:
            raise SynthesisFailed(f"espeak_Initialize failed ({sample_rate})")
        self._lib = lib
        self.sample_rate: int = sample_rate
        self.version: str = (lib.espeak_Info(None) or b"").decode(errors="replace")
        self._blocks: list[bytes] = []
        self._callback = _SynthCallback(self._collect)  # kept alive as long as the library
        lib.espeak_SetSynthCallback(self._callback)
        log.info("libespeak-ng initialised at %d Hz", sample_rate)

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if count > 0 and wav:
            self._blocks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = continue synthesis

    def render(self, text: str, voice: Voice) -> bytes:
        status = self._lib.espeak_SetVoiceByName(voice.espeak_voice.encode())
        if status != _EE_OK:
            raise SynthesisFailed(f"espeak-ng has no voice {voice.espeak_voice!r} ({status})")
        self._lib.espeak_SetParameter(_PARAM_RATE, voice.rate_wpm, 0)
        encoded = text.encode("utf-8") + b"\0"
        self._blocks = []
        status = self._lib.espeak_Synth(
            encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
        )
        if status != _EE_OK:
            raise SynthesisFailed(f"espeak_Synth failed for voice {voice.espeak_voice!r}")
        pcm, self._blocks = b"".join(self._blocks), []
        return pcm


_library: _Library | None = None


class EspeakEngine:
    """espeak-ng through its C library. Cheap to construct; all instances share the library."""

    name = "espeak-ng"

    def render(self, text: str, voice: Voice) -> Rendering:
        with ESPEAK_LOCK:
            library = _loaded()
            return Rendering(pcm=library.render(text, voice), sample_rate=library.sample_rate)

    def version(self) -> str:
        """libespeak-ng's version: a word renders differently from one to the next."""
        with ESPEAK_LOCK:
            return _loaded().version


def _loaded() -> _Library:
    """The library, initialised on first use. Call with `ESPEAK_LOCK` held."""
    global _library
    if _library is None:
        claim_espeak("libespeak-ng direct")
        _library = _Library()
    return _library
