"""Enrolled-template engine: matches an utterance against an operator's own takes of each
word (MFCC + CMVN + connected-word DTW). Language-independent: it works for zh-CN, en-US
or any other locale without a model, as long as the operator enrolled the grammar's words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from voice.enroll import Profile
from voice.grammar import Grammar
from voice.stt.base import Alternative, BufferedRecognizer, Result, softmax_confidences
from voice.stt.dtw import Hypothesis, TemplateSet, match
from voice.stt.features import mfcc

log = logging.getLogger(__name__)

MIN_FRAMES = 12  # 120 ms: shorter bursts are clicks, not words


@dataclass(frozen=True)
class TemplateSettings:
    """Decision parameters (chosen leave-one-speaker-out on fsdd-dev, see bench/)."""

    temperature: float = 0.05  # softmax over mean per-frame DTW costs
    min_confidence: float = 0.5
    max_cost: float = 5.2  # mean per-frame distance above which nothing matches
    word_penalty: float = 8.0  # cost of starting one more word in a digit string
    skip_cost: float = 5.0  # per-frame cost of leaving noise before/after the words unmatched
    min_covered: float = 0.5  # share of the utterance the words must match
    max_takes_per_word: int = 6


class TemplateModel:
    """An operator profile's features, computed once and shared read-only by recognisers."""

    def __init__(self, profile: Profile, settings: TemplateSettings | None = None) -> None:
        self.profile = profile
        self.settings = settings or TemplateSettings()
        self._features: dict[str, list[np.ndarray]] = {}
        for take in profile.takes:
            bucket = self._features.setdefault(take.token, [])
            if len(bucket) >= self.settings.max_takes_per_word:
                continue
            samples, rate = profile.audio(take)
            bucket.append(mfcc(samples, rate))
        self._sets: dict[tuple[str, ...], TemplateSet] = {}

    @property
    def tokens(self) -> set[str]:
        return set(self._features)

    def missing(self, grammar: Grammar) -> list[str]:
        """Grammar tokens this profile has no takes for."""
        return [t for t in grammar.tokens if t not in self._features]

    def template_set(self, tokens: tuple[str, ...]) -> TemplateSet:
        if tokens not in self._sets:
            items = [(t, f) for t in tokens for f in self._features.get(t, [])]
            self._sets[tokens] = TemplateSet.build(items)
        return self._sets[tokens]


class TemplateRecognizer(BufferedRecognizer):
    """One stream's recogniser over an operator's enrolled templates."""

    name = "templates"

    def __init__(self, grammar: Grammar, sample_rate: int, model: TemplateModel) -> None:
        super().__init__(grammar, sample_rate)
        self.model = model
        self.settings = model.settings
        tokens = tuple(t for t in grammar.tokens if t in model.tokens)
        if not tokens:
            raise ValueError(
                f"profile {model.profile.path} has no takes for grammar {grammar.name}"
            )
        missing = model.missing(grammar)
        if missing:
            log.warning("profile %s lacks takes for %s", model.profile.path, missing)
        self._set = model.template_set(tokens)
        self._digit_mask = np.array([t.isdigit() for t in self._set.tokens])
        self._command_mask = ~self._digit_mask

    def decode(self, audio: np.ndarray) -> Result:
        feats = mfcc(audio, self.sample_rate)
        if len(feats) < MIN_FRAMES:
            return Result.rejected(self.name, "too short")
        hyps, word_costs = match(
            feats,
            self._set,
            self._digit_mask,
            self._command_mask,
            self.grammar.max_digits,
            self.settings.word_penalty,
            self.settings.skip_cost,
        )
        hyps = [h for h in hyps if self.grammar.accepts(h.tokens)]
        if not hyps:
            return Result.rejected(self.name, "nothing in grammar matched")
        # single-word readings of every word are alternatives too
        seen = {h.tokens for h in hyps}
        for token, cost in word_costs.items():
            if (token,) not in seen and self.grammar.accepts((token,)):
                hyps.append(Hypothesis((token,), cost))
        hyps.sort(key=lambda h: h.cost)
        probs = softmax_confidences([h.cost for h in hyps], self.settings.temperature)
        best = hyps[0]
        confidence = probs[0]
        accepted = (
            confidence >= self.settings.min_confidence and best.cost <= self.settings.max_cost
        )
        alternatives = tuple(
            Alternative(h.tokens, self.grammar.text(h.tokens), p)
            for h, p in zip(hyps[1:5], probs[1:5], strict=False)
        )
        return Result(
            text=self.grammar.text(best.tokens),
            tokens=best.tokens,
            confidence=confidence,
            engine=self.name,
            accepted=accepted,
            alternatives=alternatives,
            details={"cost": round(best.cost, 4), "covered": round(best.covered, 3)},
        )
