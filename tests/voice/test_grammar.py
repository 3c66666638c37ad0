import pytest

from voice.grammar import (
    COMMANDS,
    DIGITS,
    UnknownToken,
    build_grammar,
    load_vocabulary,
    named_grammar,
)


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_locale_has_every_dialog_word(locale: str) -> None:
    vocabulary = load_vocabulary(locale)
    assert set(vocabulary.forms) == set(DIGITS) | set(COMMANDS)


def test_spoken_forms_per_locale() -> None:
    assert load_vocabulary("en-US").spoken("say_again") == "say again"
    assert load_vocabulary("zh-CN").spoken("7") == "七"
    assert load_vocabulary("zh-CN").token_for("呼叫主管") == "call_supervisor"


def test_check_digits_accept_two_or_three_digits_only() -> None:
    check = build_grammar("check_digits", digits=(2, 3))
    assert check.accepts(["5", "7"])
    assert check.accepts(["5", "7", "1"])
    assert not check.accepts(["5"])
    assert not check.accepts(["ready"])


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_a_serial_suffix_is_four_to_eight_digits(locale: str) -> None:
    suffix = named_grammar("serial_suffix", locale)
    assert suffix.accepts(list("0012")) and suffix.accepts(list("80010012"))
    assert not suffix.accepts(list("012")) and not suffix.accepts(list("180010012"))


def test_a_state_can_accept_a_quantity_or_a_command() -> None:
    quantity = build_grammar("quantity", ["short", "say_again"], digits=(1, 4))
    assert quantity.accepts(["3"])
    assert quantity.accepts(["short"])
    assert not quantity.accepts(["short", "3"])
    assert not quantity.accepts(["1", "2", "3", "4", "5"])
    assert quantity.text(["1", "2"]) == "one two"


def test_zh_cn_text_has_no_spaces() -> None:
    assert named_grammar("digits", "zh-CN").text(["5", "7"]) == "五七"


def test_unknown_words_are_refused() -> None:
    with pytest.raises(UnknownToken):
        build_grammar("bad", ["teleport"])
    with pytest.raises(LookupError):
        named_grammar("digits", "xx-XX")
