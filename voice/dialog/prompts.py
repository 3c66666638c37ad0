"""Prompt texts of a dialog in one locale, read from data files.

Every locale has ``voice/locales/<locale>/dialog.toml`` (number formats and the prompts
every workflow shares: "Say again.", the help word list) and one file per workflow
(``pick.toml``, later ``count.toml``, ...) with that workflow's prompts, help texts and
rejection reasons. Templates are `str.format` strings with a few extra format specs:

- ``{n:digits}`` reads a number digit by digit: "412" → "4 1 2" (en-US), "四一二" (zh-CN);
- ``{n:count}`` reads it as a cardinal: 12 → "12" (the TTS says "twelve"), "十二" (zh-CN);
- ``{n:measure}`` is a cardinal before a measure word: as `count`, but 2 → "两" (zh-CN);
- ``{n:pick/picks}`` is the singular word when n is 1, else the plural;
- ``[ ... ]`` is an optional part, left out when a field inside it is empty
  ("Aisle {aisle}. Slot {slot}.[ Level {level}.]").
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")


class MissingPrompt(LookupError):
    """A dialog asked for a prompt key its locale's files do not define."""


@dataclass(frozen=True)
class NumberFormat:
    """How one locale writes numbers into prompt text."""

    digits: tuple[str, ...]
    digit_separator: str
    cardinal: str  # "arabic" (12) or "chinese" (十二)
    two_of: str = ""  # how "2" is said before a measure word, if not like the digit (两)

    def __post_init__(self) -> None:
        if len(self.digits) != 10:
            raise ValueError(f"a locale needs 10 digit words, got {len(self.digits)}")
        if self.cardinal not in ("arabic", "chinese"):
            raise ValueError(f"unknown cardinal style {self.cardinal!r}: arabic, chinese")

    def digit_by_digit(self, value: object) -> str:
        """ "412" → "4 1 2" / "四一二"; other characters ("A-3") are kept as they are."""
        return self.digit_separator.join(
            self.digits[int(c)] if c.isascii() and c.isdigit() else c for c in str(value)
        )

    def measure(self, value: object) -> str:
        """A cardinal before a measure word: like `count`, except 2 may differ (两件)."""
        return self.two_of if self.two_of and str(value) == "2" else self.count(value)

    def count(self, value: object) -> str:
        """A cardinal number; a value that is not a whole number reads digit by digit."""
        text = str(value)
        if not (text.isascii() and text.isdigit()):
            return text if self.cardinal == "arabic" else self.digit_by_digit(text)
        if self.cardinal == "arabic":
            return str(int(text))
        return chinese_cardinal(int(text), self.digits)


def chinese_cardinal(n: int, digits: tuple[str, ...]) -> str:
    """12 → 十二, 105 → 一百零五, 10010 → 一万零一十 (with the locale's digit words)."""
    if n == 0 or n >= 10**12:
        return "".join(digits[int(c)] for c in str(n))
    out = ""
    gap = False
    for value, unit in ((n // 10**8, "亿"), (n // 10**4 % 10**4, "万"), (n % 10**4, "")):
        if value == 0:
            gap = bool(out)
            continue
        if out and (gap or value < 1000):
            out += digits[0]
        out += _chinese_group(value, digits) + unit
        gap = False
    if out.startswith(digits[1] + "十"):
        out = out[len(digits[1]) :]  # 十二, not 一十二
    return out


def _chinese_group(n: int, digits: tuple[str, ...]) -> str:
    out = ""
    zero = False
    for power, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // power % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += digits[0]
            zero = False
        out += digits[d] + unit
    return out


class _Formatter(string.Formatter):
    def __init__(self, numbers: NumberFormat) -> None:
        self.numbers = numbers

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "digits":
            return self.numbers.digit_by_digit(value)
        if format_spec == "count":
            return self.numbers.count(value)
        if format_spec == "measure":
            return self.numbers.measure(value)
        if "/" in format_spec:
            one, other = format_spec.split("/", 1)
            return one if str(value) == "1" else other
        return str(super().format_field(value, format_spec))


@dataclass(frozen=True)
class Prompts:
    """One workflow's prompts in one locale."""

    locale: str
    workflow: str
    templates: Mapping[str, str]
    help: Mapping[str, str]
    reasons: Mapping[str, str]
    numbers: NumberFormat
    sentence_separator: str
    list_separator: str

    def render(self, key: str, params: Mapping[str, Any]) -> str:
        """The text of prompt `key` with `params` filled in."""
        try:
            template = self.templates[key]
        except KeyError:
            raise MissingPrompt(f"no prompt {key!r} for {self.workflow} in {self.locale}") from None
        return self.fill(template, params)

    def fill(self, template: str, params: Mapping[str, Any]) -> str:
        formatter = _Formatter(self.numbers)

        def optional(match: re.Match[str]) -> str:
            part = match.group(1)
            fields = [f for _, f, _, _ in formatter.parse(part) if f]
            return part if all(params.get(f) not in (None, "") for f in fields) else ""

        return formatter.vformat(_OPTIONAL.sub(optional, template), (), dict(params)).strip()

    def join(self, parts: list[str]) -> str:
        return self.sentence_separator.join(p for p in parts if p)


@cache
def load_prompts(workflow: str, locale: str = "en-US") -> Prompts:
    """Read ``dialog.toml`` and ``<workflow>.toml`` of a locale (cached, read-only)."""
    folder = LOCALES_DIR / locale
    shared, own = folder / "dialog.toml", folder / f"{workflow}.toml"
    for path in (shared, own):
        if not path.is_file():
            known = sorted(p.name for p in LOCALES_DIR.iterdir() if (p / path.name).is_file())
            raise LookupError(f"no {path.name} for locale {locale!r}; have it: {known}")
    base = tomllib.loads(shared.read_text(encoding="utf-8"))
    data = tomllib.loads(own.read_text(encoding="utf-8"))
    fmt = base["format"]
    return Prompts(
        locale=locale,
        workflow=workflow,
        templates={**base.get("prompts", {}), **data.get("prompts", {})},
        help=dict(data.get("help", {})),
        reasons={**base.get("reasons", {}), **data.get("reasons", {})},
        numbers=NumberFormat(
            digits=tuple(fmt["digits"]),
            digit_separator=fmt["digit_separator"],
            cardinal=fmt["cardinal"],
            two_of=fmt.get("two_of", ""),
        ),
        sentence_separator=fmt["sentence_separator"],
        list_separator=fmt["list_separator"],
    )
