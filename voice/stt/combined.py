"""Fusion of the enrolled-template engine with a general model (PocketSphinx or Vosk).

Both decode the same utterance. Each hypothesis gets the template engine's probability plus
`general_weight` times the general engine's confidence if the general engine chose it; the
highest total wins. When both agree, the confidence is 1 - (1 - p1)(1 - p2);
when they disagree, the operator's own templates usually win (they know this voice), but a
confident general model overrules an unsure template match. The fused result is rejected
when neither engine accepts its own reading.
"""

from __future__ import annotations

import logging

import numpy as np

from voice.grammar import Grammar
from voice.stt.base import Alternative, BufferedRecognizer, Recognizer, Result

log = logging.getLogger(__name__)


class FusionRecognizer:
    """Templates + a general engine, decided per utterance."""

    name = "fusion"

    def __init__(
        self,
        templates: Recognizer,
        general: Recognizer,
        general_weight: float = 0.6,
        min_confidence: float = 0.5,
    ) -> None:
        self.templates = templates
        self.general = general
        self.grammar: Grammar = templates.grammar
        self.sample_rate = templates.sample_rate
        self.general_weight = general_weight
        self.min_confidence = min_confidence

    def accept_audio(self, pcm: bytes | np.ndarray) -> Result | None:
        self.templates.accept_audio(pcm)
        return self.general.accept_audio(pcm)

    def final(self) -> Result:
        return fuse(
            self.templates.final(),
            self.general.final(),
            self.general_weight,
            self.min_confidence,
            self.name,
        )

    def reset(self) -> None:
        self.templates.reset()
        self.general.reset()

    def recognize(self, pcm: bytes | np.ndarray) -> Result:
        self.reset()
        self.accept_audio(pcm)
        return self.final()


def fuse(
    template: Result, general: Result, general_weight: float, min_confidence: float, name: str
) -> Result:
    """Combine two engines' results for one utterance (see module docstring)."""
    scores: dict[tuple[str, ...], float] = {}
    texts: dict[tuple[str, ...], str] = {}
    if template.tokens:
        scores[template.tokens] = template.confidence
        texts[template.tokens] = template.text
    for alt in template.alternatives:
        scores[alt.tokens] = scores.get(alt.tokens, 0.0) + alt.confidence
        texts[alt.tokens] = alt.text
    if general.tokens:
        scores[general.tokens] = (
            scores.get(general.tokens, 0.0) + general_weight * general.confidence
        )
        texts.setdefault(general.tokens, general.text)
    if not scores:
        return Result.rejected(name, "no engine heard a grammar answer")
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    total = sum(scores.values()) or 1.0
    best, score = ranked[0]
    confidence = score / total
    if template.tokens == general.tokens:
        # two independent engines agreeing: either one being right is enough
        confidence = 1.0 - (1.0 - template.confidence) * (1.0 - general.confidence)
    accepted = confidence >= min_confidence and (
        (best == template.tokens and template.accepted)
        or (best == general.tokens and general.accepted)
    )
    return Result(
        text=texts[best],
        tokens=best,
        confidence=confidence,
        engine=f"{name}({template.engine}+{general.engine})",
        accepted=accepted,
        alternatives=tuple(Alternative(t, texts[t], s / total) for t, s in ranked[1:5]),
        details={"template": template.to_json(), "general": general.to_json()},
    )


class CascadeRecognizer(BufferedRecognizer):
    """A fast engine first; a slower, better one only when the fast one is unsure.

    PocketSphinx answers most clear utterances in ~15 ms; what it is unsure of (confidence
    below `trust`) goes to grammar-constrained Whisper (~0.2 s). Agreement between the two
    raises the confidence (noisy-OR), disagreement goes with the second engine.
    """

    name = "cascade"

    def __init__(self, fast: Recognizer, careful: Recognizer, trust: float = 0.8) -> None:
        super().__init__(fast.grammar, fast.sample_rate)
        self.fast = fast
        self.careful = careful
        self.trust = trust

    def decode(self, audio: np.ndarray) -> Result:
        first = self.fast.recognize(audio)
        if first.accepted and first.confidence >= self.trust:
            return first
        return settle(first, self.careful.recognize(audio))


def settle(first: Result, second: Result) -> Result:
    """The cascade's answer once the careful engine has been asked too."""
    if second.tokens and second.tokens == first.tokens:
        confidence = 1.0 - (1.0 - first.confidence) * (1.0 - second.confidence)
        return Result(
            text=second.text,
            tokens=second.tokens,
            confidence=confidence,
            engine=f"{first.engine}+{second.engine}",
            accepted=first.accepted or second.accepted or confidence >= 0.5,
            details={"fast": first.to_json(), "careful": second.to_json()},
        )
    if not second.tokens:
        return first
    extra = (Alternative(first.tokens, first.text, first.confidence),) if first.tokens else ()
    return Result(
        text=second.text,
        tokens=second.tokens,
        confidence=second.confidence,
        engine=second.engine,
        accepted=second.accepted,
        alternatives=second.alternatives + extra,
        details={"fast": first.to_json(), "careful": second.to_json()},
    )
