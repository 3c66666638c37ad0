"""Vocabularies and grammars: which words a dialog state listens for.

A locale's vocabulary (``voice/locales/<locale>/vocabulary.toml``) maps canonical tokens
("0".."9", "ready", "say_again", ...) to the spoken forms of that language. A `Grammar` is
what one dialog state accepts: a set of command tokens and/or a digit string of
``min_digits..max_digits`` digits spoken one by one. Recognisers listen only for what the
grammar allows, and anything else is rejected.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

LOCALES_DIR = Path(__file__).parent / "locales"
DIGITS: tuple[str, ...] = tuple(str(d) for d in range(10))
COMMANDS: tuple[str, ...] = (
    "ready",
    "yes",
    "no",
    "say_again",
    "skip_slot",
    "short",
    "how_much_more",
    "location",
    "description",
    "help",
    "call_supervisor",
    "damaged",
    "cancel",
    "sign_off",
)
# A serial number is told by the last digits on its label: four, or more when four do not
# tell the units at a slot apart (Vocollect-style serial capture).
SERIAL_SUFFIX_DIGITS = (4, 8)
LISTENING_DIGITS = 4  # digit strings up to this long are heard in every state


class UnknownToken(ValueError):
    """A grammar names a token the locale's vocabulary does not have."""


@dataclass(frozen=True)
class Vocabulary:
    """The spoken forms of every canonical token in one locale."""

    locale: str
    espeak_voice: str
    forms: dict[str, tuple[str, ...]]

    def spoken(self, token: str) -> str:
        """The main spoken form of a token (what prompts and synthesis use)."""
        return self.forms[token][0]

    def token_for(self, words: str) -> str | None:
        """The canonical token whose spoken form is `words`, if any."""
        for token, forms in self.forms.items():
            if words in forms:
                return token
        return None

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(t for t in self.forms if t not in DIGITS)


@cache
def load_vocabulary(locale: str = "en-US") -> Vocabulary:
    """Load ``voice/locales/<locale>/vocabulary.toml`` (cached, read-only)."""
    path = LOCALES_DIR / locale / "vocabulary.toml"
    if not path.is_file():
        known = sorted(p.name for p in LOCALES_DIR.iterdir() if p.is_dir())
        raise LookupError(f"no vocabulary for locale {locale!r}; known: {known}")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    forms = {str(k): tuple(v["say"]) for k, v in data["tokens"].items()}
    return Vocabulary(locale=data["locale"], espeak_voice=data["espeak_voice"], forms=forms)


@dataclass(frozen=True)
class Grammar:
    """What one dialog state accepts.

    `commands`: command tokens accepted as a whole utterance ("ready", "short", ...).
    `min_digits`/`max_digits`: a digit string of that many digits, spoken one by one;
    ``max_digits == 0`` means no digits. A state may accept both (e.g. quantity or "short").
    """

    name: str
    commands: tuple[str, ...] = ()
    min_digits: int = 0
    max_digits: int = 0
    locale: str = "en-US"
    vocabulary: Vocabulary = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_digits < self.min_digits or self.min_digits < 0:
            raise ValueError(f"bad digit range {self.min_digits}..{self.max_digits}")
        if self.max_digits and self.min_digits == 0:
            object.__setattr__(self, "min_digits", 1)
        vocab = load_vocabulary(self.locale)
        for token in self.commands:
            if token not in vocab.forms or token in DIGITS:
                raise UnknownToken(f"{token!r} is not a command word of locale {self.locale}")
        object.__setattr__(self, "vocabulary", vocab)

    @property
    def accepts_digits(self) -> bool:
        return self.max_digits > 0

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every single token this grammar can contain (digits first)."""
        return (DIGITS if self.accepts_digits else ()) + self.commands

    def accepts(self, tokens: list[str] | tuple[str, ...]) -> bool:
        """Whether a token sequence is a complete, valid answer in this state."""
        if len(tokens) == 1 and tokens[0] in self.commands:
            return True
        return (
            self.accepts_digits
            and self.min_digits <= len(tokens) <= self.max_digits
            and all(t in DIGITS for t in tokens)
        )

    def listening(self) -> Grammar:
        """What to listen for while one of this grammar's answers is said: its commands,
        digit strings from one digit to its longest (the start of an answer), and digits
        even where it takes none, so that digits said to a prompt that wants a word are
        heard as digits and refused, not as the nearest word ("nine two" was heard as "sign
        off"). The dialog then judges the answer against the grammar itself."""
        digits = max(self.max_digits, LISTENING_DIGITS)
        if self.min_digits == 1 and self.max_digits == digits:
            return self
        return replace(self, name=f"{self.name}.listening", min_digits=1, max_digits=digits)

    def exactly(self, digits: int) -> Grammar:
        """Digit strings of just `digits` digits, and nothing else: how a digit answer
        known to be whole, of a line whose digits are known to be that many, is read
        rather than with a digit too many or too few (or as a word)."""
        if not self.accepts_digits:
            raise ValueError(f"grammar {self.name} takes no digits")
        return replace(
            self, name=f"{self.name}.{digits}", commands=(), min_digits=digits, max_digits=digits
        )

    def text(self, tokens: list[str] | tuple[str, ...]) -> str:
        """The spoken text of a token sequence in this locale ("five seven")."""
        sep = "" if self.locale.startswith("zh") else " "
        return sep.join(self.vocabulary.spoken(t) for t in tokens)

    def phrases(self) -> list[tuple[str, list[str]]]:
        """(spoken form, tokens) for every single-word entry: each digit form, each command."""
        out: list[tuple[str, list[str]]] = []
        for token in self.tokens:
            out.extend((form, [token]) for form in self.vocabulary.forms[token])
        return out


def build_grammar(
    name: str,
    tokens: list[str] | tuple[str, ...] = (),
    digits: tuple[int, int] | None = None,
    locale: str = "en-US",
) -> Grammar:
    """A grammar from command token names plus an optional (min, max) digit-string length.

    ``build_grammar("check_digits", digits=(2, 3))``,
    ``build_grammar("quantity", ["short", "say_again"], digits=(1, 4))``.
    """
    low, high = digits or (0, 0)
    return Grammar(
        name=name, commands=tuple(tokens), min_digits=low, max_digits=high, locale=locale
    )


# The built-in grammars: command words and a digit-string length.
NAMED_GRAMMARS: dict[str, tuple[tuple[str, ...], tuple[int, int] | None]] = {
    "digits": ((), (1, 4)),
    "digit": ((), (1, 1)),
    "check_digits": ((), (2, 3)),
    "serial_suffix": ((), SERIAL_SUFFIX_DIGITS),  # the last 4-8 digits of a serial
    "commands": (COMMANDS, None),
    "all": (COMMANDS, (1, 4)),
}


def named_grammar(name: str, locale: str = "en-US") -> Grammar:
    """One of `NAMED_GRAMMARS` in `locale`."""
    if name not in NAMED_GRAMMARS:
        raise LookupError(f"unknown grammar {name!r}: {', '.join(NAMED_GRAMMARS)}")
    commands, digits = NAMED_GRAMMARS[name]
    return build_grammar(name, commands, digits=digits, locale=locale)
