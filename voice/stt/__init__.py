"""Speech recognition (STT) for short, grammar-constrained answers.

One `Recognizer` interface (stream PCM in, partial and final `Result` out) over several
engines: word templates (`templates`: an operator's enrolled takes, or every word in
synthetic voices from `synthetic`), grammar-constrained Whisper tiny.en (`whisper`, weights
bundled by a package), PocketSphinx (`pocketsphinx`, embedded) and Vosk (`vosk`, when a
model is installed), and their combinations (`combined`).
`open_recognizer` builds one recogniser per audio stream; heavy models are loaded once in
an `EngineCache` and shared read-only.
"""

from voice.stt.base import (
    Alternative,
    NotWanted,
    Recognizer,
    Result,
    expecting,
    reading_while,
)
from voice.stt.combined import refuse_word_read_as_digits
from voice.stt.factory import ENGINES, EngineCache, open_recognizer

__all__ = [
    "ENGINES",
    "Alternative",
    "EngineCache",
    "NotWanted",
    "Recognizer",
    "Result",
    "expecting",
    "open_recognizer",
    "reading_while",
    "refuse_word_read_as_digits",
]
