"""Connected-word DTW: match an utterance against word templates, as one word or as a
string of digits, in a single pass (level building, vectorised over templates and levels).

The step pattern lets the utterance advance one frame at a time while the template
advances 0, 1 or 2 frames, so every utterance frame is matched exactly once: the total
cost divided by the frame count is comparable across hypotheses of any word count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[str, ...]
    cost: float  # mean local distance per utterance frame (lower is better)
    covered: float = 1.0  # share of the utterance's frames matched by words, not skipped


@dataclass
class TemplateSet:
    """Templates stacked for vectorised matching. `tokens[k]` is template k's word."""

    tokens: list[str]
    frames: np.ndarray  # K × Lmax × D, zero-padded
    lengths: np.ndarray  # K

    @classmethod
    def build(cls, items: list[tuple[str, np.ndarray]]) -> TemplateSet:
        if not items:
            raise ValueError("no templates")
        longest = max(len(f) for _, f in items)
        dim = items[0][1].shape[1]
        frames = np.zeros((len(items), longest, dim), np.float32)
        for k, (_, f) in enumerate(items):
            frames[k, : len(f)] = f
        lengths = np.array([len(f) for _, f in items])
        return cls([t for t, _ in items], frames, lengths)


def local_costs(query: np.ndarray, templates: TemplateSet) -> np.ndarray:
    """N × K × Lmax Euclidean distances; padding positions are +inf."""
    k, lmax, dim = templates.frames.shape
    flat = templates.frames.reshape(k * lmax, dim)
    sq = (query**2).sum(1)[:, None] + (flat**2).sum(1)[None, :] - 2.0 * query @ flat.T
    cost = np.sqrt(np.maximum(sq, 0.0)).reshape(len(query), k, lmax)
    cost[:, np.arange(lmax)[None, :] >= templates.lengths[:, None]] = np.inf
    return cost


def match(
    query: np.ndarray,
    templates: TemplateSet,
    digit_mask: np.ndarray,
    command_mask: np.ndarray,
    max_digits: int,
    word_penalty: float = 0.0,
    skip_cost: float = np.inf,
) -> tuple[list[Hypothesis], dict[str, float]]:
    """Best hypotheses for `query`: the best command (each one), and the best digit string
    of each length 1..max_digits. Also returns each word's best single-word cost (the
    per-token scores a caller turns into alternatives).

    Leading and trailing frames may be left unmatched at `skip_cost` per frame (a garbage
    model for noise before and after the words: beeps, bumps, breath).
    """
    n = len(query)
    cost = local_costs(query, templates)
    kk, lmax = cost.shape[1], cost.shape[2]
    levels = max(1, max_digits)
    ends = templates.lengths - 1
    rows = np.arange(kk)
    inf = np.float32(np.inf)
    score = np.full((levels, kk, lmax), inf, np.float64)
    start = np.zeros((levels, kk, lmax), np.int64)
    # best digit-template end per level and frame, for entering the next level
    end_cost = np.full((levels, n), np.inf)
    end_tmpl = np.zeros((levels, n), np.int64)
    end_start = np.zeros((levels, n), np.int64)
    entry_allowed = digit_mask | command_mask
    # best finish of each template at level 0 (single words), trailing skip included
    word_finish = np.full(kk, np.inf)
    word_finish_frame = np.zeros(kk, np.int64)
    word_finish_start = np.zeros(kk, np.int64)
    level_finish = np.full(levels, np.inf)
    level_finish_frame = np.zeros(levels, np.int64)
    # which templates may start at each level: any word first, only digits after it
    allowed = np.vstack([entry_allowed[None, :], np.repeat(digit_mask[None, :], levels - 1, 0)])
    level_index = np.arange(levels)
    for i in range(n):
        trailing = (
            skip_cost * (n - 1 - i) if np.isfinite(skip_cost) else (0.0 if i == n - 1 else np.inf)
        )
        # every level at once: a level starts from the level below's ends at frame i - 1
        cand = score.copy()
        cand_start = start.copy()
        for shift in (1, 2):
            shifted = np.full_like(score, np.inf)
            shifted[:, :, shift:] = score[:, :, :-shift]
            sh_start = np.zeros_like(start)
            sh_start[:, :, shift:] = start[:, :, :-shift]
            better = shifted < cand
            cand = np.where(better, shifted, cand)
            cand_start = np.where(better, sh_start, cand_start)
        enter = np.full(levels, np.inf)
        enter[0] = skip_cost * i if np.isfinite(skip_cost) else (0.0 if i == 0 else np.inf)
        if i > 0:
            enter[1:] = end_cost[:-1, i - 1]
        enter_cost = (enter + word_penalty)[:, None]
        take = allowed & (enter_cost < cand[:, :, 0])
        cand[:, :, 0] = np.where(take, enter_cost, cand[:, :, 0])
        cand_start[:, :, 0] = np.where(take, i, cand_start[:, :, 0])
        new = cost[i][None] + cand
        finals = np.where(digit_mask[None, :], new[:, rows, ends], np.inf)
        best = np.argmin(finals, axis=1)
        end_cost[:, i] = finals[level_index, best]
        end_tmpl[:, i] = best
        end_start[:, i] = cand_start[level_index, best, ends[best]]
        improved = end_cost[:, i] + trailing < level_finish
        level_finish = np.where(improved, end_cost[:, i] + trailing, level_finish)
        level_finish_frame = np.where(improved, i, level_finish_frame)
        finish = new[0, rows, ends] + trailing
        better_word = finish < word_finish
        word_finish = np.where(better_word, finish, word_finish)
        word_finish_frame = np.where(better_word, i, word_finish_frame)
        word_finish_start = np.where(better_word, cand_start[0, rows, ends], word_finish_start)
        score, start = new, cand_start

    hyps: list[Hypothesis] = []
    word_costs: dict[str, float] = {}
    word_cover: dict[str, float] = {}
    for k, token in enumerate(templates.tokens):
        value = float(word_finish[k]) / n
        if value < word_costs.get(token, np.inf):
            word_costs[token] = value
            word_cover[token] = (word_finish_frame[k] + 1 - word_finish_start[k]) / n
    for token, value in word_costs.items():
        if command_mask[templates.tokens.index(token)] and np.isfinite(value):
            hyps.append(Hypothesis((token,), value, float(word_cover[token])))
    for lv in range(min(levels, max_digits)):
        total = level_finish[lv]
        if not np.isfinite(total):
            continue
        words: list[str] = []
        last = frame = int(level_finish_frame[lv])
        level = lv
        while level >= 0 and frame >= 0:
            words.append(templates.tokens[int(end_tmpl[level, frame])])
            first = int(end_start[level, frame])
            frame = first - 1
            level -= 1
        hyps.append(Hypothesis(tuple(reversed(words)), float(total) / n, (last + 1 - first) / n))
    hyps.sort(key=lambda h: h.cost)
    return hyps, word_costs
