"""Enrolled-template engine: matches an utterance against an operator's own takes of each
word with connected-word DTW. Language-independent: it works for zh-CN, en-US or any other
locale, as long as the operator enrolled the grammar's words.

What is matched is a front end's frames. With Whisper installed they are its encoder's
(`WhisperModel.frames`), which hear through noise and voice changes that MFCCs keep: on
fsdd-dev (3 takes a digit enrolled, bench/recognition.py) 99.3% of digits right against
95.1% with MFCCs, 93.6% against 85.6% at SNR 10 dB, and 99.4% of 2-3 digit strings against
49%. Without it, MFCC + CMVN, which need no model at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from voice.audio import add_noise, to_int16
from voice.enroll import Profile
from voice.grammar import Grammar
from voice.level import normalize
from voice.stt.base import Alternative, BufferedRecognizer, Result, softmax_confidences
from voice.stt.dtw import Hypothesis, TemplateSet, match
from voice.stt.features import mfcc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplateSettings:
    """Decision parameters, in the units of a front end's frames and distances."""

    temperature: float  # softmax over mean per-frame DTW costs
    max_cost: float  # mean per-frame distance above which nothing matches
    word_penalty: float  # cost of starting one more word in a digit string
    skip_cost: float  # per-frame cost of leaving noise before/after the words unmatched
    min_frames: int  # shorter bursts are clicks, not words
    min_confidence: float = 0.5
    max_takes_per_word: int = 6
    noisy_copy_snr_db: float | None = None  # each take matched again with white noise added
    noise_words: bool = False  # non-speech templates, which a word must match better than
    stride: int = 1  # consecutive frames averaged into one for matching (unit-length frames)


@dataclass(frozen=True)
class FrontEnd:
    """How audio becomes the frames that takes and utterances are matched on."""

    name: str
    features: Callable[[np.ndarray, int], np.ndarray]
    settings: TemplateSettings


# MFCC settings were chosen leave-one-speaker-out on fsdd-dev (10 ms frames, CMVN units)
MFCC = FrontEnd(
    "mfcc",
    mfcc,
    TemplateSettings(
        temperature=0.05, max_cost=5.2, word_penalty=8.0, skip_cost=5.0, min_frames=12
    ),
)


def encoder_front_end(frames: Callable[[np.ndarray, int], np.ndarray]) -> FrontEnd:
    """Whisper's encoder frames (`WhisperModel.frames`): 20 ms, unit length, so distances
    lie in [0, 2]. On fsdd-dev a right digit costs about 0.4 a frame and a wrong one 0.7.
    A string needs no word penalty, and skipping noise must cost more than a word (below
    1.5 a frame the last digit of a string was dropped as noise); a softmax at 0.04 let
    through half the wrong answers in noise that one at 0.02 did, losing 3% right ones.

    Each take is also matched with white noise added at 15 dB: in warehouse noise at 10 dB,
    94.0% of digits right instead of 92.5%, and half as many wrong ones accepted (1.2%
    instead of 2.5%); clean speech is unchanged, and MFCC templates gain nothing from it.
    White noise, not the bench's synthetic warehouse noise, which gained nothing either.

    Frames are matched in pairs (40 ms): a reading costs a quarter of the matching, a
    third less CPU in all (a four-digit serial 107 -> 71 ms), and fsdd-dev is read as
    well (bench/recognition.py --limit 8, clean, -30 dB, SNR 10 dB, cheap headset: of
    1,920 digits, 5 more right and 4 more wrong, no speaker worse by more than one take
    in 80; of 432 check-digit strings, 2 fewer right and 1 more wrong)."""
    settings = TemplateSettings(
        temperature=0.04,
        max_cost=1.2,
        word_penalty=0.0,
        skip_cost=2.0,
        min_frames=6,
        noisy_copy_snr_db=15.0,
        noise_words=True,
        stride=2,
    )
    return FrontEnd("whisper-encoder", frames, settings)


class TemplateModel:
    """Words' templates as features, computed once and shared read-only by recognisers:
    an operator's enrolled takes, or words in synthetic voices (`voice.stt.synthetic`)."""

    def __init__(
        self, features: dict[str, list[np.ndarray]], front_end: FrontEnd, source: str
    ) -> None:
        self.source = source
        self.front_end = front_end
        self.settings = front_end.settings
        self._features = features
        self._sets: dict[tuple[str, ...], TemplateSet] = {}

    @classmethod
    def from_takes(
        cls, takes: Iterable[tuple[str, np.ndarray, int]], front_end: FrontEnd, source: str
    ) -> TemplateModel:
        return cls(features_of(takes, front_end) | noise_words(front_end), front_end, source)

    @classmethod
    def from_profile(cls, profile: Profile, front_end: FrontEnd = MFCC) -> TemplateModel:
        """An operator's templates: the first `max_takes_per_word` takes of each word."""
        used: dict[str, int] = {}
        takes = []
        for take in profile.takes:
            used[take.token] = used.get(take.token, 0) + 1
            if used[take.token] <= front_end.settings.max_takes_per_word:
                takes.append((take.token, *profile.audio(take)))
        return cls.from_takes(takes, front_end, f"profile {profile.path}")

    @property
    def tokens(self) -> set[str]:
        return set(self._features)

    def frames(self, token: str) -> list[np.ndarray]:
        """A word's templates, each the frames of one take."""
        return self._features[token]

    def missing(self, grammar: Grammar) -> list[str]:
        """Grammar tokens this profile has no takes for."""
        return [t for t in grammar.tokens if t not in self._features]

    def template_set(self, tokens: tuple[str, ...]) -> TemplateSet:
        if tokens not in self._sets:
            stride = self.settings.stride
            items = [(t, pooled(f, stride)) for t in tokens for f in self._features.get(t, [])]
            self._sets[tokens] = TemplateSet.build(items)
        return self._sets[tokens]


NOISE = "<noise>"


def pooled(frames: np.ndarray, stride: int) -> np.ndarray:
    """Unit-length frames, every `stride` of them averaged into one of unit length again
    (the last repeated to fill its group)."""
    if stride == 1 or len(frames) == 0:
        return frames
    count = -(-len(frames) // stride)
    filler = np.repeat(frames[-1:], count * stride - len(frames), axis=0)
    out = np.concatenate([frames, filler]).reshape(count, stride, -1).mean(axis=1)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-6
    return out.astype(np.float32)


def noise_takes(rate: int = 16000) -> list[tuple[str, np.ndarray, int]]:
    """Non-speech for words to beat: digital silence, white and brown noise from faint to
    loud, hum, tones and clicks. Without them, a short word made of one vowel (Korean "오",
    Mandarin "二") was the best match for a second of hum, at a confidence above 0.5."""
    rng = np.random.default_rng(0)
    n = rate * 6 // 10
    t = np.arange(n) / rate
    white = rng.standard_normal(n)
    brown = np.cumsum(rng.standard_normal(n))
    brown = (brown - np.convolve(brown, np.ones(801) / 801, mode="same")) / 10.0
    hum = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((50.0, 100.0, 150.0), 1))
    clicks = np.zeros(n)
    clicks[rng.integers(0, n, 4)] = 8.0
    signals = [np.zeros(n)]
    for level in (0.01, 0.1, 0.4):
        signals += [white * level, brown * level]
    signals += [np.asarray(hum) * 0.2, np.sin(2 * np.pi * 1000.0 * t) * 0.3, clicks * 0.3]
    signals.append(np.sin(2 * np.pi * 2500.0 * t) * 0.3)
    return [(NOISE, to_int16(x), rate) for x in signals]


def noise_words(front_end: FrontEnd) -> dict[str, list[np.ndarray]]:
    """The non-speech templates, if the front end's settings ask for them."""
    return features_of(noise_takes(), front_end) if front_end.settings.noise_words else {}


def features_of(
    takes: Iterable[tuple[str, np.ndarray, int]], front_end: FrontEnd
) -> dict[str, list[np.ndarray]]:
    """Each word's templates: its takes' frames (and their noisy copies, if the front end
    asks for them). A take too short to be a word, or longer than the encoder's window, is
    left out."""
    features: dict[str, list[np.ndarray]] = {}
    snr = front_end.settings.noisy_copy_snr_db
    for index, (token, said, rate) in enumerate(takes):
        samples = normalize(said, rate)  # heard at the level utterances are heard at
        versions = [samples]
        if snr is not None:
            hiss = np.random.default_rng(index).standard_normal(len(samples))
            versions.append(add_noise(samples, hiss, snr))
        enough = front_end.settings.min_frames
        frames = [f for f in (front_end.features(v, rate) for v in versions) if len(f) >= enough]
        if frames:
            features.setdefault(token, []).extend(frames)
    return features


class TemplateRecognizer(BufferedRecognizer):
    """One stream's recogniser over word templates: an operator's takes, or the words in
    synthetic voices."""

    name = "templates"

    def __init__(
        self,
        grammar: Grammar,
        sample_rate: int,
        model: TemplateModel,
        name: str = "templates",
        min_confidence: float | None = None,
    ) -> None:
        super().__init__(grammar, sample_rate)
        self.name = name
        self.model = model
        self.settings = model.settings
        self.min_confidence = (
            model.settings.min_confidence if min_confidence is None else min_confidence
        )
        tokens = tuple(t for t in grammar.tokens if t in model.tokens)
        if not tokens:
            raise ValueError(f"{model.source} has no takes for grammar {grammar.name}")
        missing = model.missing(grammar)
        if missing:
            log.warning("%s lacks takes for %s", model.source, missing)
        if NOISE in model.tokens:
            tokens += (NOISE,)
        self._set = model.template_set(tokens)
        self._digit_mask = np.array([t.isdigit() for t in self._set.tokens])
        self._command_mask = ~self._digit_mask

    def decode(self, audio: np.ndarray) -> Result:
        feats = self.model.front_end.features(audio, self.sample_rate)
        if len(feats) < self.settings.min_frames:
            return Result.rejected(self.name, "too short")
        hyps, word_costs = match(
            pooled(feats, self.settings.stride),
            self._set,
            self._digit_mask,
            self._command_mask,
            self.grammar.max_digits,
            self.settings.word_penalty,
            self.settings.skip_cost,
        )
        noise = word_costs.pop(NOISE, np.inf)
        hyps = [h for h in hyps if self.grammar.accepts(h.tokens)]
        if not hyps:
            return Result.rejected(self.name, "nothing in grammar matched")
        # single-word readings of every word are alternatives too
        seen = {h.tokens for h in hyps}
        for token, cost in word_costs.items():
            if (token,) not in seen and self.grammar.accepts((token,)):
                hyps.append(Hypothesis((token,), cost))
        hyps.sort(key=lambda h: h.cost)
        # noise competes for the probability, so a word barely better than noise is unsure
        costs = [h.cost for h in hyps] + ([noise] if np.isfinite(noise) else [])
        probs = softmax_confidences(costs, self.settings.temperature)
        noise_probability = round(probs[-1], 4) if np.isfinite(noise) else 0.0
        if noise < hyps[0].cost:
            heard = Result.rejected(self.name, "sounds like noise, not a word")
            return replace(heard, details=heard.details | {"noise": noise_probability})
        best = hyps[0]
        confidence = probs[0]
        accepted = confidence >= self.min_confidence and best.cost <= self.settings.max_cost
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
            details={
                "cost": round(best.cost, 4),
                "covered": round(best.covered, 3),
                "noise": noise_probability,
            },
        )
