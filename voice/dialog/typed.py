"""Typed input (the headset protocol's ``say`` frame: keypad, keyboard, scanner) as tokens.

A typed answer goes through the same dialog, grammar and rules as a spoken one; it only
needs turning into the canonical tokens a recogniser would have produced. Accepted, in
any case, with or without spaces, and in sequence ("say again", "再说一遍", "五七", "57"):

- the locale's spoken forms ("five seven", "say again"; "五七", "再说一遍");
- digits as typed ("57", and full-width "５７" from a CJK input method);
- canonical token names in every locale, spelt with "_", "-", a space or nothing between
  their words ("say_again", "say again", "Say-Again", "sayagain"). The command names are
  the same in every locale, so a client may send them whatever the session's language
  (the headset page's command buttons do).
"""

from __future__ import annotations

import re
import unicodedata

from voice.grammar import Vocabulary

# Between words: whitespace, "_" and "-" (as in token names), ASCII and CJK punctuation.
_SEPARATORS = re.compile(r"[\s_\-,.;:!?，。；：！？、·・]+")
# No answer is longer than this (the longest grammar is 8 digits); more is not understood
# rather than parsed.
_MAX_CHARS = 256


def _squeeze(text: str) -> str:
    """`text` without case, width or separators: "Say Again." and "say_again" → "sayagain"."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text).casefold())


def _forms(vocabulary: Vocabulary) -> dict[str, str]:
    """Every squeezed typed form of the locale and the token it stands for."""
    forms: dict[str, str] = {}
    for token, say in vocabulary.forms.items():
        for form in (*say, token):
            squeezed = _squeeze(form)
            if squeezed:
                forms.setdefault(squeezed, token)
    return forms


def tokens_from_text(text: str, vocabulary: Vocabulary) -> tuple[str, ...]:
    """The tokens of `text`, or () when some part of it is no word of the locale."""
    squeezed = _squeeze(text)
    if not squeezed or len(squeezed) > _MAX_CHARS:
        return ()
    forms = _forms(vocabulary)
    if squeezed in forms:
        return (forms[squeezed],)
    lengths = sorted({len(form) for form in forms}, reverse=True)
    # parse[at]: the tokens of squeezed[at:], or None when that is no words of the locale.
    # Filled from the end, trying the longest form first at each place.
    end = len(squeezed)
    parse: list[tuple[str, ...] | None] = [None] * end + [()]
    for at in range(end - 1, -1, -1):
        for length in lengths:
            token = forms.get(squeezed[at : at + length])
            rest = parse[at + length] if at + length <= end else None
            if token is not None and rest is not None:
                parse[at] = (token, *rest)
                break
    return parse[0] or ()
