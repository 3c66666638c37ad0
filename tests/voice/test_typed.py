"""Typed answers (the headset protocol's `say` frame) as the tokens a recogniser would give:
every command and digit in every locale, whether typed as the locale's words, as the
canonical token name the headset page's buttons send, or as the English words older
clients send whatever the session's language."""

from __future__ import annotations

import pytest

from voice.dialog.pick import PICK_WORKFLOW
from voice.dialog.typed import tokens_from_text
from voice.grammar import COMMANDS, DIGITS, LOCALES_DIR, build_grammar, load_vocabulary

LOCALES = sorted(p.name for p in LOCALES_DIR.iterdir() if (p / "vocabulary.toml").is_file())
DIALOG_LOCALES = ("en-US", "zh-CN")


def test_the_locales_under_test() -> None:
    assert set(DIALOG_LOCALES) <= set(LOCALES)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("token", COMMANDS)
def test_every_command_is_understood_however_it_is_typed(locale: str, token: str) -> None:
    vocabulary = load_vocabulary(locale)
    english = load_vocabulary("en-US").spoken(token)  # "say again": what the page used to send
    typed = {
        token,  # "say_again": what the page's buttons send
        token.upper(),
        token.replace("_", " "),
        token.replace("_", "-").title(),
        f" {token}. ",
        english,
        english.title(),
        *vocabulary.forms[token],  # the locale's words: "再说一遍"
        *(f"{form}。" for form in vocabulary.forms[token]),
        *(form.replace(" ", "") for form in vocabulary.forms[token]),
    }
    for text in sorted(typed):
        assert tokens_from_text(text, vocabulary) == (token,), (locale, text)


@pytest.mark.parametrize("locale", LOCALES)
def test_digits_typed_or_in_words(locale: str) -> None:
    vocabulary = load_vocabulary(locale)
    for digit in DIGITS:
        for form in vocabulary.forms[digit]:
            assert tokens_from_text(form, vocabulary) == (digit,), (locale, form)
    assert tokens_from_text("57", vocabulary) == ("5", "7")
    assert tokens_from_text("０５７", vocabulary) == ("0", "5", "7")  # full-width, from an IME
    assert tokens_from_text("5 7", vocabulary) == ("5", "7")
    words = vocabulary.spoken("5") + " " + vocabulary.spoken("7")
    assert tokens_from_text(words, vocabulary) == ("5", "7")
    assert tokens_from_text(words.replace(" ", ""), vocabulary) == ("5", "7")


def test_the_locales_own_forms() -> None:
    en, zh = load_vocabulary("en-US"), load_vocabulary("zh-CN")
    assert tokens_from_text("oh one", en) == ("0", "1")
    assert tokens_from_text("五七", zh) == ("5", "7")
    assert tokens_from_text("幺两", zh) == ("1", "2")
    assert tokens_from_text("不是", zh) == ("no",)  # the longer word, not 不 + 是
    assert tokens_from_text("是", zh) == ("yes",)
    assert tokens_from_text("再说 一遍！", zh) == ("say_again",)
    assert tokens_from_text("say again 57", zh) == ("say_again", "5", "7")


@pytest.mark.parametrize("locale", DIALOG_LOCALES)
def test_what_is_no_word_of_the_locale_is_not_understood(locale: str) -> None:
    vocabulary = load_vocabulary(locale)
    for text in ("", "  ", "banana", "say", "say againn", "再说", "5x7", "sign_off!?x", "7" * 300):
        assert tokens_from_text(text, vocabulary) == (), (locale, text)
    # another locale's words are not this one's (only the token names are shared)
    other = load_vocabulary("zh-CN" if locale == "en-US" else "en-US")
    assert tokens_from_text(other.spoken("7"), vocabulary) == ()


@pytest.mark.parametrize("locale", DIALOG_LOCALES)
def test_every_word_of_every_pick_state_is_accepted_when_typed(locale: str) -> None:
    """What the headset page's command buttons send, and the locale's words, pass each pick
    dialog state's grammar for every word that state listens for."""
    vocabulary = load_vocabulary(locale)
    english = load_vocabulary("en-US")
    for state in PICK_WORKFLOW.states:
        grammar = build_grammar(state.name, tuple(state.words), state.digits, locale)
        for word in state.words:
            for text in (word, english.spoken(word), vocabulary.spoken(word)):
                tokens = tokens_from_text(text, vocabulary)
                assert grammar.accepts(tokens), (locale, state.name, text, tokens)
