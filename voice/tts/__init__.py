"""Text-to-speech for headset prompts.

`Synthesizer` turns a prompt ("Aisle 12. Slot 4.") into PCM signed 16-bit little-endian mono
at the session's sample rate, the audio format of the headset protocol. Prompts repeat all
shift long, so rendered audio is cached (in memory, optionally on disk) and a repeated prompt
costs a dictionary lookup instead of a synthesis.

Engines: `EspeakEngine` (libespeak-ng called directly; the default) and `Pyttsx3Engine` (the
same voices through pyttsx3's espeak driver); anything with the `SpeechEngine` shape can be
passed in instead.
"""

from voice.tts.cache import PromptCache, PromptKey
from voice.tts.engine import Rendering, SpeechEngine, SynthesisFailed
from voice.tts.espeak import EspeakEngine
from voice.tts.pyttsx3_engine import Pyttsx3Engine
from voice.tts.synthesizer import Synthesizer
from voice.tts.voices import DEFAULT_VOICES, UnsupportedLocale, Voice

__all__ = [
    "DEFAULT_VOICES",
    "EspeakEngine",
    "PromptCache",
    "PromptKey",
    "Pyttsx3Engine",
    "Rendering",
    "SpeechEngine",
    "SynthesisFailed",
    "Synthesizer",
    "UnsupportedLocale",
    "Voice",
]
