"""Engines combined: word templates (an operator's takes, or the words in synthetic voices)
fused with another recogniser, and a backup engine for what Whisper cannot read.

Both decode the same utterance. Each hypothesis gets the template engine's probability plus
`general_weight` times the general engine's confidence if the general engine chose it; the
highest total wins. When both agree, the confidence is 1 - (1 - p1)(1 - p2); when they
disagree, the more confident engine wins. Equal weights did best on fsdd-dev for MFCC
templates and Whisper (10 takes a digit and speaker: 99.3% right against 97.3% at 0.6 and
99.3% at 1.5, with the fewest wrong answers accepted). The fused result is rejected when
neither engine accepts its own reading, unless the two read alike: a digit string splits
the templates' belief among its lengths, and "zero one four four", read alike by both
engines at 0.97, was refused six times in a row. Templates that include non-speech (`NOISE`) also
say how sure they are that no word was said; that share counts against every reading, so a
general engine's reading of what the templates call noise is unsure (PocketSphinx, backed
by Whisper, read "zero zero" into forklift noise with 0.97 confidence; now 0.49).

Digit strings are fused the same way. On 180 check-digit strings built from fsdd-dev takes
(2-3 digits, short pauses), an operator's templates read 99.4%, `auto` without a profile
98.3% (Whisper word by word alone: 95.0%), and the two fused 99.4% with no wrong answer
accepted (at SNR 10 dB: 90.0%, 86.1% and 89.4%, with 8.3%, 10.6% and 5.6% accepted wrong).

A command word that one engine read and another engine read as a digit answer of the very
shape the line expects (two check digits, a four-digit serial) is refused
(`refuse_word_read_as_digits`): the templates match a run of digits said close together
against one long word, and george's serial "zero two four three", said with 40 ms between
the digits, came out "call supervisor" at 0.69 in a walk while Whisper read four digits. Said
again, the answer is read afresh; taking the other engine's digits instead was tried, and
was wrong more often than right.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from voice.grammar import DIGITS, Grammar
from voice.stt.base import Alternative, BufferedRecognizer, Recognizer, Result, both

log = logging.getLogger(__name__)


class FusionRecognizer:
    """Templates + a general engine, decided per utterance."""

    name = "fusion"

    def __init__(
        self,
        templates: Recognizer,
        general: Recognizer,
        general_weight: float = 1.0,
        min_confidence: float | None = None,
    ) -> None:
        self.templates = templates
        self.general = general
        self.grammar: Grammar = templates.grammar
        self.sample_rate = templates.sample_rate
        self.general_weight = general_weight
        self.min_confidence = 0.5 if min_confidence is None else min_confidence

    def accept_audio(self, pcm: bytes | np.ndarray) -> Result | None:
        self.templates.accept_audio(pcm)
        return self.general.accept_audio(pcm)

    def final(self) -> Result:
        # the general engine first: matching templates costs the most, and one after the
        # other it is skipped when the reading stops being wanted meanwhile (`reading_while`)
        general, templates = both(self.general.final, self.templates.final)
        return fuse(templates, general, self.general_weight, self.min_confidence, self.name)

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
    # the templates' belief that no word was said at all competes with every reading
    noise = float(template.details.get("noise", 0.0))
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    total = sum(scores.values()) + noise
    best, score = ranked[0]
    if template.tokens or template.alternatives or noise:
        confidence = score / total
    else:  # the templates had no opinion: the general engine's own confidence stands
        confidence = general.confidence
    agree = bool(template.tokens) and template.tokens == general.tokens
    if agree:
        # two independent engines agreeing: either one being right is enough
        confidence = 1.0 - (1.0 - template.confidence) * (1.0 - general.confidence)
    accepted = confidence >= min_confidence and (
        agree
        or (best == template.tokens and template.accepted)
        or (best == general.tokens and general.accepted)
    )
    return Result(
        text=texts[best],
        tokens=best,
        confidence=confidence,
        engine=f"{name}({template.engine}+{general.engine})",
        accepted=accepted,
        alternatives=tuple(Alternative(t, texts[t], s / total) for t, s in ranked[1:5]),
        details={
            "template": template.to_json(),
            "general": general.to_json(),
            "apart": [list(tokens) for tokens in (*read_apart(template), *read_apart(general))],
        },
    )


def read_apart(result: Result) -> list[tuple[str, ...]]:
    """What each engine fused into `result` read on its own (just its tokens when one engine
    read it)."""
    apart = result.details.get("apart")
    return [tuple(tokens) for tokens in apart] if apart else [result.tokens]


def refuse_word_read_as_digits(result: Result, answer: Grammar) -> Result:
    """`result`, refused when it is a word that an engine fused into it read as a digit
    answer `answer` takes (see the module docstring); unchanged otherwise."""
    if not result.accepted or not result.tokens or result.tokens[0] in DIGITS:
        return result
    digits = [t for t in read_apart(result) if t and t[0] in DIGITS and answer.accepts(t)]
    if not digits:
        return result
    return replace(
        result, accepted=False, details={**result.details, "refused": "read as digits apart"}
    )


class BackupRecognizer(BufferedRecognizer):
    """A second engine for what the first cannot read at all.

    Whisper reads digit strings word by word, split at the speaker's pauses; digits run
    together ("fiveseven") come out as one word, outside a grammar of two or three. For
    those PocketSphinx, which decodes connected digits, gives its reading instead, with
    its own confidence. Whisper's word used to back that reading up when it was the
    string's first digit, but PocketSphinx also adds a digit to a single word ("five" as
    "five eight"), and that backing made such a split outweigh the templates' one word:
    fsdd-dev single digits under the `digits` grammar were 87-93% right per speaker with
    it and 97-98% without, with no change on 2-4 digit strings.
    """

    def __init__(self, primary: Recognizer, backup: Recognizer) -> None:
        super().__init__(primary.grammar, primary.sample_rate)
        self.primary = primary
        self.backup = backup
        self.name = primary.name

    def decode(self, audio: np.ndarray) -> Result:
        first = self.primary.recognize(audio)
        if len(first.tokens) > 1 or (first.tokens and not first.tokens[0].isdigit()):
            return first
        second = self.backup.recognize(audio)
        if len(second.tokens) > 1 and second.tokens[0].isdigit():
            return second
        return first if first.tokens else second
