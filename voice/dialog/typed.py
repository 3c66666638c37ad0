"""Typed input (the headset protocol's ``say`` frame: keypad, keyboard, scanner) as tokens.

A typed answer goes through the same dialog, grammar and rules as a spoken one; it only
needs turning into the canonical tokens a recogniser would have produced. Accepted: the
locale's spoken forms ("five seven", "say again", "五七", "再说一遍", with or without
spaces), digits as typed ("57"), and canonical token names ("say_again").
"""

from __future__ import annotations

import re

from voice.grammar import DIGITS, Vocabulary

_NOISE = re.compile(r"[\s,.;:!?，。；：！？、]+")


def tokens_from_text(text: str, vocabulary: Vocabulary) -> tuple[str, ...]:
    """The tokens of `text`, or () when some part of it is no word of the locale."""
    text = text.strip().lower()
    if text in vocabulary.forms:
        return (text,)
    squeezed = _NOISE.sub("", text)
    forms = sorted(
        (
            (_NOISE.sub("", form.lower()), token)
            for token, say in vocabulary.forms.items()
            for form in say
        ),
        key=lambda pair: -len(pair[0]),
    )
    tokens: list[str] = []
    at = 0
    while at < len(squeezed):
        if squeezed[at] in DIGITS:
            tokens.append(squeezed[at])
            at += 1
            continue
        for form, token in forms:
            if form and squeezed.startswith(form, at):
                tokens.append(token)
                at += len(form)
                break
        else:
            return ()
    return tuple(tokens)
