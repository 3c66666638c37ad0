"""The pick dialog driven the way the headset session drives it, against an in-memory
warehouse (the unit under test is the dialog; the server's PickWork has its own tests)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from voice.dialog import (
    PICK_WORKFLOW,
    AssignmentInfo,
    Dialog,
    PickDialog,
    PickRejected,
    PickTask,
    State,
    Turn,
    Workflow,
    load_prompts,
)
from voice.dialog.prompts import chinese_cardinal

# -- an in-memory warehouse for one picker ------------------------------------------------


def mug(line_id: int = 1) -> PickTask:
    return PickTask(
        line_id=line_id,
        location="A-12-04",
        aisle="12",
        slot="4",
        level="",
        check_digits="57",
        quantity=3,
        sku="MUG-BLUE",
        description="Blue mug",
        unit="each",
        picks_remaining=2,
    )


def cup(line_id: int = 2) -> PickTask:
    return PickTask(
        line_id=line_id,
        location="A-13-01-B",
        aisle="13",
        slot="1",
        level="B",
        check_digits="82",
        quantity=11,
        sku="CUP-RED",
        description="Red cup",
        unit="each",
        picks_remaining=1,
    )


def phone(line_id: int = 5, quantity: int = 3) -> PickTask:
    """A serialised SKU: its serials are at the slot in `Warehouse.serials_at`."""
    return PickTask(
        line_id=line_id,
        location="B-02-07",
        aisle="2",
        slot="7",
        level="",
        check_digits="46",
        quantity=quantity,
        sku="PHONE-X",
        description="Phone",
        unit="each",
        picks_remaining=1,
        serialized=True,
    )


PHONES = ("SN-80010012", "SN-80010013", "SN-80010014", "SN-80010015")


@dataclass
class Warehouse:
    """Assignments of pick lines for one picker, and a log of every call the dialog made.

    Like the real service, a confirmed or shorted line is closed, a skipped line goes to
    the end, and a damaged line stays open (the picker may still pick or short it).
    Serialised lines find serials in `serials_at` (line id -> serials at its slot) and
    record the serials they were closed with in `closed_with`.
    """

    assignments: list[tuple[AssignmentInfo, list[PickTask]]]
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # method -> PickRejected reason
    slow_confirm: float = 0.0
    serials_at: dict[int, list[str]] = field(default_factory=dict)
    closed_with: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def _check(self, method: str) -> None:
        if method in self.refuse:
            raise PickRejected(self.refuse[method])

    def _lines(self) -> list[PickTask]:
        return self.assignments[0][1] if self.assignments else []

    def _close(self, line_id: int, serials: Sequence[str]) -> None:
        lines = self._lines()
        lines[:] = [t for t in lines if t.line_id != line_id]
        if serials:
            self.closed_with[line_id] = tuple(serials)

    def current_assignment(self) -> AssignmentInfo | None:
        return self.assignments[0][0] if self.assignments else None

    def next_task(self) -> PickTask | None:
        lines = self._lines()
        return lines[0] if lines else None

    def match_serial(self, line_id: int, digits: str) -> str:
        matches = [
            s for s in self.serials_at.get(line_id, []) if re.sub(r"\D", "", s).endswith(digits)
        ]
        if len(matches) != 1:
            raise PickRejected("serial_ambiguous" if matches else "serial_unknown")
        return matches[0]

    def confirm_pick(
        self, line_id: int, quantity: int, serials: Sequence[str] = ()
    ) -> PickTask | None:
        self._check("confirm_pick")
        time.sleep(self.slow_confirm)
        self.calls.append(("confirm_pick", line_id, quantity))
        self._close(line_id, serials)
        return self.next_task()

    def report_short(
        self, line_id: int, picked: int, serials: Sequence[str] = ()
    ) -> PickTask | None:
        self._check("report_short")
        self.calls.append(("report_short", line_id, picked))
        self._close(line_id, serials)
        return self.next_task()

    def skip(self, line_id: int) -> PickTask | None:
        self.calls.append(("skip", line_id))
        lines = self._lines()
        lines.append(lines.pop(next(i for i, t in enumerate(lines) if t.line_id == line_id)))
        return self.next_task()

    def report_damaged(self, line_id: int) -> None:
        self.calls.append(("report_damaged", line_id))

    def call_supervisor(self, line_id: int | None) -> None:
        self.calls.append(("call_supervisor", line_id))

    def complete_assignment(self) -> str:
        info, _ = self.assignments.pop(0)
        self.calls.append(("complete_assignment", info.number))
        return info.staging

    def sign_off(self) -> None:
        self.calls.append(("sign_off",))

    def remaining(self) -> tuple[int, int]:
        lines = self._lines()
        return len(lines), sum(t.quantity for t in lines)

    def inventory_calls(self) -> list[tuple[Any, ...]]:
        changing = {"confirm_pick", "report_short", "skip", "report_damaged"}
        return [c for c in self.calls if c[0] in changing]


def warehouse(*more: tuple[AssignmentInfo, list[PickTask]]) -> Warehouse:
    return Warehouse([(AssignmentInfo("412", 2, "3"), [mug(), cup()]), *more])


def said(dialog: PickDialog, *utterances: str) -> list[Turn]:
    """What the picker says, typed or spoken the same way: one utterance per argument."""
    return [dialog.hear_text(text) for text in utterances]


def text(turn: Turn) -> str:
    assert turn.prompt is not None
    return turn.prompt.text


def event_names(turn: Turn) -> list[str]:
    return [e.name for e in turn.events]


@pytest.fixture
def work() -> Warehouse:
    return warehouse()


@pytest.fixture
def at_quantity(work: Warehouse) -> PickDialog:
    """A dialog at "Pick 3." for the blue mug."""
    dialog = PickDialog(work)
    dialog.start()
    said(dialog, "ready", "five seven")
    assert dialog.state.name == "quantity"
    return dialog


# -- a whole assignment ------------------------------------------------------------------


def test_a_whole_assignment_in_english() -> None:
    work = warehouse((AssignmentInfo("413", 1, "STG-2"), [mug(3)]))
    dialog = PickDialog(work, locale="en-US")

    assert dialog.start().text == "Assignment 4 1 2. 2 picks. Say ready."
    script = [
        ("ready", "Aisle 12. Slot 4.", "location"),
        ("five seven", "Pick 3.", "quantity"),
        ("three", "Aisle 13. Slot 1. Level B.", "location"),
        ("eight two", "Pick 11.", "quantity"),
        ("one one", "Assignment complete. Deliver to staging 3. Say ready.", "deliver"),
        ("ready", "Assignment 4 1 3. 1 pick. Say ready.", "assignment"),
        ("ready", "Aisle 12. Slot 4.", "location"),
        ("five seven", "Pick 3.", "quantity"),
        ("three", "Assignment complete. Deliver to staging STG-2. Say ready.", "deliver"),
        ("ready", "No more work. Say ready to check again, or sign off.", "no_work"),
    ]
    for words, prompt, state in script:
        (turn,) = said(dialog, words)
        assert (turn.accepted, text(turn), dialog.state.name) == (True, prompt, state), words

    assert work.calls == [
        ("confirm_pick", 1, 3),
        ("confirm_pick", 2, 11),
        ("complete_assignment", "412"),
        ("confirm_pick", 3, 3),
        ("complete_assignment", "413"),
    ]


def test_a_whole_assignment_in_mandarin() -> None:
    work = warehouse()
    dialog = PickDialog(work, locale="zh-CN")

    assert dialog.start().text == "任务四一二。共两个拣货。请说好了。"
    script = [
        ("好了", "十二号通道。四号货位。"),
        ("五七", "拣三件。"),
        ("三", "十三号通道。一号货位。B层。"),
        ("八二", "拣十一件。"),
        ("幺幺", "任务完成。请送到集货区三。请说好了。"),
        ("好了", "没有更多任务。说好了再查一次，或者说退出。"),
    ]
    for words, prompt in script:
        (turn,) = said(dialog, words)
        assert (turn.accepted, text(turn)) == (True, prompt), words
    assert work.calls == [
        ("confirm_pick", 1, 3),
        ("confirm_pick", 2, 11),
        ("complete_assignment", "412"),
    ]


def test_the_turns_carry_events_and_the_screen_shows_where_and_what(work: Warehouse) -> None:
    dialog = PickDialog(work)
    start = dialog.start()
    assert start.state == "assignment"
    assert start.display == {"assignment": "412", "picks": 2}

    ready, digits, three = said(dialog, "ready", "five seven", "three")
    assert event_names(ready) == ["assignment_started"]
    assert ready.prompt is not None
    assert ready.prompt.display == {"location": "A-12-04", "aisle": "12", "slot": "4"}
    assert digits.prompt is not None and digits.prompt.display == {
        "location": "A-12-04",
        "aisle": "12",
        "slot": "4",
        "quantity": 3,
        "unit": "each",
        "sku": "MUG-BLUE",
        "description": "Blue mug",
    }
    assert three.events[0].name == "pick_confirmed"
    assert three.events[0].data == {"line_id": 1, "quantity": 3}
    assert not three.ended


def test_no_work_at_sign_on_then_ready_asks_again() -> None:
    work = Warehouse([])
    dialog = PickDialog(work)
    assert dialog.start().text == "No more work. Say ready to check again, or sign off."

    work.assignments.append((AssignmentInfo("9", 1, "1"), [mug()]))
    (turn,) = said(dialog, "ready")
    assert text(turn) == "Assignment 9. 1 pick. Say ready."


# -- each state listens with its own grammar --------------------------------------------


def test_each_state_has_its_own_grammar(work: Warehouse) -> None:
    dialog = PickDialog(work)
    dialog.start()
    assert dialog.grammar().commands == (
        "ready",
        "how_much_more",
        "call_supervisor",
        "sign_off",
        "say_again",
        "help",
    )
    assert not dialog.grammar().accepts_digits

    said(dialog, "ready")
    location = dialog.grammar()
    assert (location.min_digits, location.max_digits) == (2, 3)
    assert "short" not in location.commands and "damaged" not in location.commands

    said(dialog, "five seven")
    quantity = dialog.grammar()
    assert (quantity.min_digits, quantity.max_digits) == (1, 4)
    assert {"short", "damaged", "location", "skip_slot"} <= set(quantity.commands)
    assert "ready" not in quantity.commands


def test_mandarin_grammar_listens_for_mandarin_words(work: Warehouse) -> None:
    dialog = PickDialog(work, locale="zh-CN")
    dialog.start()
    said(dialog, "好了", "五七")
    spoken = [form for form, _ in dialog.grammar().phrases()]
    assert "缺货" in spoken and "三" in spoken and "short" not in spoken


# -- rules: nothing is applied from what was not clearly heard --------------------------


@pytest.mark.parametrize(
    ("tokens", "confidence", "accepted", "reason"),
    [
        (("3",), 0.3, True, "low_confidence"),
        (("3",), 0.49, True, "low_confidence"),
        (("3",), 0.95, False, "not_accepted"),
        (("ready",), 0.95, True, "not_in_grammar"),
        (("5", "7", "1", "2", "0"), 0.95, True, "not_in_grammar"),
        ((), 0.95, True, "not_in_grammar"),
    ],
)
def test_an_unclear_answer_is_reprompted_and_changes_nothing(
    work: Warehouse,
    at_quantity: PickDialog,
    tokens: tuple[str, ...],
    confidence: float,
    accepted: bool,
    reason: str,
) -> None:
    turn = at_quantity.hear(tokens, confidence=confidence, accepted=accepted)

    assert not turn.accepted
    assert text(turn) == "Say again. Pick 3."
    assert turn.events[0].name == "not_understood"
    assert turn.events[0].data["reason"] == reason
    assert at_quantity.state.name == "quantity"
    assert work.inventory_calls() == []


def test_the_confidence_threshold_is_the_dialogs_setting(work: Warehouse) -> None:
    dialog = PickDialog(work, min_confidence=0.8)
    dialog.start()
    assert not dialog.hear(("ready",), confidence=0.7, accepted=True).accepted
    assert dialog.hear(("ready",), confidence=0.8, accepted=True).accepted


def test_words_that_change_work_need_more_evidence(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    for word in ("skip_slot", "damaged", "short", "call_supervisor"):
        assert not at_quantity.hear((word,), confidence=0.6, accepted=True).accepted
    assert work.calls == [] and at_quantity.state.name == "quantity"
    assert at_quantity.hear(("say_again",), confidence=0.6, accepted=True).accepted
    assert at_quantity.hear(("3",), confidence=0.6, accepted=True).accepted  # checked digits
    assert work.inventory_calls() == [("confirm_pick", 1, 3)]


def test_typed_text_is_handled_like_speech(work: Warehouse) -> None:
    dialog = PickDialog(work)
    dialog.start()
    said(dialog, "ready")
    assert text(dialog.hear_text("banana")) == "Say again. Aisle 12. Slot 4."
    assert dialog.hear_text("57").accepted  # keypad digits
    assert dialog.state.name == "quantity"
    assert text(dialog.hear_text("Say again.")) == "Pick 3."
    assert dialog.hear_text("three").accepted
    assert work.calls == [("confirm_pick", 1, 3)]


# -- check digits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "wrong", "right_forms", "expected"),
    [
        (
            "en-US",
            "five eight",
            ("57", "5 7", "five", "seven", "fifty"),
            "Wrong check digits. Aisle 12. Slot 4.",
        ),
        ("zh-CN", "五八", ("57", "5 7", "五", "七"), "校验码错误。十二号通道。四号货位。"),
    ],
)
def test_wrong_check_digits_repeat_the_location_and_never_reveal_the_right_ones(
    work: Warehouse, locale: str, wrong: str, right_forms: tuple[str, ...], expected: str
) -> None:
    # The mug's check digits are 57; nothing else said about this assignment has a 5 or 7.
    dialog = PickDialog(work, locale=locale)
    dialog.start()
    said(dialog, "ready" if locale == "en-US" else "好了")

    (turn,) = said(dialog, wrong)
    assert turn.accepted and text(turn) == expected
    assert event_names(turn) == ["wrong_check_digits"]
    assert dialog.state.name == "location"

    staying = [w for w in dialog.grammar().commands if w not in ("skip_slot", "sign_off")]
    everything = [
        turn,
        dialog.hear(("5", "7", "0"), 0.9, True),
        *(dialog.hear((w,), 0.9, True) for w in staying),
    ]
    assert {t.prompt.state for t in everything if t.prompt} == {"location"}
    shown = [
        text(t) + json.dumps(t.prompt.display if t.prompt else {}, ensure_ascii=False)
        for t in everything
    ]
    shown.append(dialog.repeat().text)
    for form in right_forms:
        assert not any(form in s for s in shown), (form, shown)
    assert work.inventory_calls() == []


def test_right_check_digits_after_a_wrong_attempt_go_on(work: Warehouse) -> None:
    dialog = PickDialog(work)
    dialog.start()
    said(dialog, "ready", "seven five")
    (turn,) = said(dialog, "five seven")
    assert text(turn) == "Pick 3."


# -- quantity ---------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "spoken"), [("four", "4"), ("two", "2"), ("one two", "12")])
def test_a_different_quantity_is_never_picked(
    work: Warehouse, at_quantity: PickDialog, answer: str, spoken: str
) -> None:
    (turn,) = said(at_quantity, answer)
    assert text(turn) == f"You said {spoken}. Pick 3."
    assert at_quantity.state.name == "quantity"
    assert work.inventory_calls() == []


def test_a_duplicated_confirmation_is_applied_once(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    first, second = said(at_quantity, "three", "three")
    assert event_names(first) == ["pick_confirmed"]
    assert not second.accepted and event_names(second) == ["not_understood"]
    assert work.calls == [("confirm_pick", 1, 3)]


def test_two_copies_of_a_confirmation_arriving_together_are_applied_once(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    work.slow_confirm = 0.05
    turns: list[Turn] = []
    threads = [
        threading.Thread(target=lambda: turns.append(at_quantity.hear(("3",), 0.9, True)))
        for _ in "ab"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(t.accepted for t in turns) == [False, True]
    assert work.calls == [("confirm_pick", 1, 3)]


def test_a_refused_confirmation_says_why_and_stays(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    work.refuse["confirm_pick"] = "insufficient_stock"
    (turn,) = said(at_quantity, "three")
    assert text(turn) == (
        "The system shows too little stock here. Say short or call supervisor. Pick 3."
    )
    assert turn.accepted and event_names(turn) == ["rejected"]
    assert turn.events[0].data["reason"] == "insufficient_stock"
    assert at_quantity.state.name == "quantity"
    assert work.calls == []

    work.refuse["confirm_pick"] = "something_new"
    (turn,) = said(at_quantity, "three")
    assert text(turn) == "That was not accepted. Pick 3."

    del work.refuse["confirm_pick"]
    said(at_quantity, "three")
    assert work.calls == [("confirm_pick", 1, 3)]


# -- short ------------------------------------------------------------------------------


def test_short_asks_how_many_and_reports_that_many(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    (asked,) = said(at_quantity, "short")
    assert text(asked) == "How many?"
    assert at_quantity.grammar().accepts(("1",))
    (answered,) = said(at_quantity, "one")
    assert text(answered) == "Short, 1 picked. Aisle 13. Slot 1. Level B."
    assert event_names(answered) == ["short_reported", "exception_opened"]
    assert answered.events[1].data == {"kind": "short", "line_id": 1}
    assert work.inventory_calls() == [("report_short", 1, 1)]


def test_short_of_nothing_is_a_short(work: Warehouse, at_quantity: PickDialog) -> None:
    said(at_quantity, "short", "zero")
    assert work.inventory_calls() == [("report_short", 1, 0)]


def test_short_needs_less_than_the_quantity(work: Warehouse, at_quantity: PickDialog) -> None:
    _, same, more = said(at_quantity, "short", "three", "four")
    assert text(same) == "You said 3. A short is less than 3. How many?"
    assert text(more) == "You said 4. A short is less than 3. How many?"
    assert at_quantity.state.name == "short"
    assert work.inventory_calls() == []


def test_cancel_goes_back_from_short(work: Warehouse, at_quantity: PickDialog) -> None:
    _, cancelled, confirmed = said(at_quantity, "short", "cancel", "three")
    assert text(cancelled) == "Pick 3."
    assert event_names(confirmed) == ["pick_confirmed"]
    assert work.inventory_calls() == [("confirm_pick", 1, 3)]


# -- the other words --------------------------------------------------------------------


def test_skip_slot_goes_to_the_next_line(work: Warehouse) -> None:
    dialog = PickDialog(work)
    dialog.start()
    _, skipped = said(dialog, "ready", "skip slot")
    assert text(skipped) == "Slot skipped. Aisle 13. Slot 1. Level B."
    assert event_names(skipped) == ["slot_skipped"]
    said(dialog, "eight two", "one one")
    (back,) = said(dialog, "five seven")  # the skipped line came back at the end
    assert text(back) == "Pick 3."
    assert work.inventory_calls() == [("skip", 1), ("confirm_pick", 2, 11)]


def test_skip_slot_at_the_quantity(work: Warehouse, at_quantity: PickDialog) -> None:
    (turn,) = said(at_quantity, "skip slot")
    assert text(turn) == "Slot skipped. Aisle 13. Slot 1. Level B."
    assert work.inventory_calls() == [("skip", 1)]


def test_damaged_opens_an_exception_and_keeps_the_line(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    (turn,) = said(at_quantity, "damaged")
    assert text(turn) == "Damage reported. Pick 3."
    assert event_names(turn) == ["damage_reported", "exception_opened"]
    assert turn.events[1].data == {"kind": "damaged", "line_id": 1}
    assert work.inventory_calls() == [("report_damaged", 1)]
    said(at_quantity, "short", "two")
    assert work.inventory_calls()[-1] == ("report_short", 1, 2)


def test_call_supervisor_at_a_line_and_between_assignments(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    (turn,) = said(at_quantity, "call supervisor")
    assert text(turn) == "Supervisor called. Pick 3."
    assert turn.events[1].data == {"kind": "supervisor", "line_id": 1}

    said(at_quantity, "three", "eight two", "one one")
    (turn,) = said(at_quantity, "call supervisor")
    assert text(turn) == "Supervisor called. Deliver to staging 3. Say ready."
    assert [c for c in work.calls if c[0] == "call_supervisor"] == [
        ("call_supervisor", 1),
        ("call_supervisor", None),
    ]


def test_how_much_more(at_quantity: PickDialog) -> None:
    (turn,) = said(at_quantity, "how much more")
    assert text(turn) == "2 picks, 14 units to go. Pick 3."
    said(at_quantity, "three")
    (turn,) = said(at_quantity, "how much more")
    assert text(turn) == "1 pick, 11 units to go. Aisle 13. Slot 1. Level B."


def test_location_description_and_say_again(at_quantity: PickDialog) -> None:
    location, description, again = said(at_quantity, "location", "description", "say again")
    assert text(location) == "Aisle 12. Slot 4. Pick 3."
    assert text(description) == "Blue mug. Pick 3."
    assert text(again) == "Pick 3."
    assert at_quantity.repeat().text == "Pick 3."


def test_help_names_the_words_of_the_state(at_quantity: PickDialog) -> None:
    (turn,) = said(at_quantity, "help")
    assert text(turn) == (
        "Pick the quantity and say it. If the slot has less, say short. You can say: short, "
        "damaged, location, skip slot, description, how much more, call supervisor, "
        "sign off, say again. Pick 3."
    )
    said(at_quantity, "short")
    (turn,) = said(at_quantity, "help")
    assert text(turn) == (
        "Say how many you picked, or cancel. You can say: cancel, call supervisor, "
        "say again. How many?"
    )


def test_help_in_mandarin(work: Warehouse) -> None:
    dialog = PickDialog(work, locale="zh-CN")
    dialog.start()
    said(dialog, "好了")
    (turn,) = said(dialog, "帮助")
    assert text(turn).startswith("到货位后说出校验码。可以说：位置、跳过、描述、")
    assert "缺货" not in text(turn)


def test_sign_off_asks_first_and_no_goes_back(work: Warehouse, at_quantity: PickDialog) -> None:
    asked, no = said(at_quantity, "sign off", "no")
    assert text(asked) == "Sign off? Say yes or no."
    assert text(no) == "Pick 3."
    assert work.calls == []

    _, yes = said(at_quantity, "sign off", "yes")
    assert text(yes) == "Signed off. Goodbye."
    assert yes.ended and event_names(yes) == ["signed_off"]
    assert work.calls == [("sign_off",)]

    after = at_quantity.hear(("3",), 0.9, True)
    assert after == Turn(None, accepted=False, ended=True)
    assert work.inventory_calls() == []


def test_every_word_in_mandarin(work: Warehouse) -> None:
    dialog = PickDialog(work, locale="zh-CN")
    dialog.start()
    said(dialog, "好了", "五七")
    script = [
        ("还剩多少", "还剩两个拣货，十四件。拣三件。"),
        ("位置", "十二号通道。四号货位。拣三件。"),
        ("描述", "Blue mug。拣三件。"),
        ("再说一遍", "拣三件。"),
        ("破损", "已报告破损。拣三件。"),
        ("呼叫主管", "已呼叫主管。拣三件。"),
        ("退出", "确定退出吗？请说是或不是。"),
        ("不是", "拣三件。"),
        ("缺货", "拣了几件？"),
        ("取消", "拣三件。"),
        ("缺货", "拣了几件？"),
        ("两", "已记录缺货，拣了两件。十三号通道。一号货位。B层。"),
        ("跳过", "已跳过货位。十三号通道。一号货位。B层。"),
        ("退出", "确定退出吗？请说是或不是。"),
        ("是", "已退出。再见。"),
    ]
    for words, prompt in script:
        (turn,) = said(dialog, words)
        assert (turn.accepted, text(turn)) == (True, prompt), words
    assert dialog.ended
    assert work.calls == [
        ("report_damaged", 1),
        ("call_supervisor", 1),
        ("report_short", 1, 2),
        ("skip", 2),
        ("sign_off",),
    ]


def test_a_line_without_a_description_says_only_the_instruction() -> None:
    work = Warehouse([(AssignmentInfo("5", 1, "1"), [replace(mug(), description="")])])
    dialog = PickDialog(work)
    dialog.start()
    said(dialog, "ready", "five seven")
    (turn,) = said(dialog, "description")
    assert text(turn) == "Pick 3."


# -- serialised SKUs: each unit's serial by its last digits -----------------------------


def phones(*serials: str, quantity: int = 3) -> Warehouse:
    """One assignment of one serialised line (Pick 3 phones at B-02-07)."""
    work = Warehouse([(AssignmentInfo("77", 1, "2"), [phone(quantity=quantity)])])
    work.serials_at[5] = list(serials or PHONES)
    return work


def at_serials(work: Warehouse, locale: str = "en-US") -> PickDialog:
    """A dialog that has confirmed the quantity and asks for the first serial."""
    dialog = PickDialog(work, locale=locale)
    dialog.start()
    task = work.next_task()
    assert task is not None
    said(dialog, "ready", "46", str(task.quantity))
    assert dialog.state.name == "serial"
    return dialog


def test_a_serialised_line_asks_each_serial_and_confirms_once_with_all() -> None:
    work = phones()
    dialog = PickDialog(work)
    dialog.start()
    said(dialog, "ready", "four six")
    script = [
        ("three", "Serial 1 of 3. Say the last 4 digits."),
        ("zero zero one four", "Serial 2 of 3. Say the last 4 digits."),
        ("0012", "Serial 3 of 3. Say the last 4 digits."),  # keypad digits
        ("0 0 1 5", "Assignment complete. Deliver to staging 2. Say ready."),
    ]
    turns = []
    for words, prompt in script:
        (turn,) = said(dialog, words)
        assert (turn.accepted, text(turn)) == (True, prompt), words
        turns.append(turn)

    assert work.calls == [("confirm_pick", 5, 3), ("complete_assignment", "77")]
    assert work.closed_with == {5: ("SN-80010014", "SN-80010012", "SN-80010015")}
    assert event_names(turns[1]) == ["serial_taken"]
    assert event_names(turns[3])[0] == "pick_confirmed"
    assert turns[1].prompt is not None and turns[1].prompt.display == {
        "location": "B-02-07",
        "aisle": "2",
        "slot": "7",
        "quantity": 3,
        "unit": "each",
        "sku": "PHONE-X",
        "description": "Phone",
        "serial": 2,
        "serials": 3,
        "serial_digits": 4,
    }


def test_serials_in_mandarin() -> None:
    work = phones()
    dialog = PickDialog(work, locale="zh-CN")
    dialog.start()
    said(dialog, "好了", "四六")
    script = [
        ("三", "第一个序列号，共三个。请说最后四位数字。"),
        ("零零幺二", "第二个序列号，共三个。请说最后四位数字。"),
        ("零零幺二", "这个序列号已经说过了。第二个序列号，共三个。请说最后四位数字。"),
        ("九九九九", "这里没有以这些数字结尾的序列号。第二个序列号，共三个。请说最后四位数字。"),
        ("缺货", "拣了几件？"),
        ("一", "已记录缺货，拣了一件。任务完成。请送到集货区二。请说好了。"),
    ]
    for words, prompt in script:
        (turn,) = said(dialog, words)
        assert (turn.accepted, text(turn)) == (True, prompt), words
    assert work.calls[0] == ("report_short", 5, 1)
    assert work.closed_with == {5: ("SN-80010012",)}


def test_the_serial_state_listens_for_four_to_eight_digits() -> None:
    dialog = at_serials(phones())
    grammar = dialog.grammar()
    assert (grammar.min_digits, grammar.max_digits) == (4, 8)
    assert {"short", "cancel", "call_supervisor", "say_again"} <= set(grammar.commands)
    assert "ready" not in grammar.commands

    (turn,) = said(dialog, "012")  # three digits are no answer here
    assert not turn.accepted and text(turn) == "Say again. Serial 1 of 3. Say the last 4 digits."


def test_an_unknown_or_repeated_suffix_is_refused_and_never_reveals_a_serial() -> None:
    work = phones()
    dialog = at_serials(work)
    unknown, taken, repeated = said(dialog, "1234", "0013", "0013")
    assert text(unknown) == (
        "No serial here ends in those digits. Serial 1 of 3. Say the last 4 digits."
    )
    assert unknown.events[0].data["reason"] == "serial_unknown"
    assert text(taken) == "Serial 2 of 3. Say the last 4 digits."
    assert text(repeated) == "That serial was already given. Serial 2 of 3. Say the last 4 digits."
    assert dialog.state.name == "serial"

    everything = [unknown, taken, repeated, *said(dialog, "help", "location", "description")]
    shown = [
        text(t) + json.dumps(t.prompt.display if t.prompt else {}, ensure_ascii=False)
        for t in everything
    ]
    for serial in PHONES:
        for form in (serial, serial[-6:], "8001"):
            assert not any(form in s for s in shown), (form, shown)
    assert work.inventory_calls() == []


def test_an_ambiguous_suffix_asks_for_eight_digits() -> None:
    work = phones("SN-80010012", "SN-90010012", "SN-80010013", quantity=2)
    dialog = PickDialog(work)
    dialog.start()
    said(dialog, "ready", "46", "2")

    ambiguous, longer, next_one, last = said(dialog, "0012", "90010012", "0012", "80010012")
    assert text(ambiguous) == (
        "More than one serial here ends in those digits. Serial 1 of 2. Say the last 8 digits."
    )
    assert ambiguous.prompt is not None and ambiguous.prompt.display["serial_digits"] == 8
    assert text(longer) == "Serial 2 of 2. Say the last 4 digits."
    assert text(next_one).startswith("More than one serial here ends in those digits.")
    assert event_names(last)[0] == "pick_confirmed"
    assert work.closed_with == {5: ("SN-90010012", "SN-80010012")}


def test_serials_no_digits_tell_apart_go_to_a_supervisor() -> None:
    work = phones("A-12345678", "B-12345678", quantity=1)
    dialog = PickDialog(work)
    dialog.start()
    said(dialog, "ready", "46", "1", "5678")
    (turn,) = said(dialog, "12345678")
    assert text(turn) == (
        "Those digits do not tell the serials here apart. Say call supervisor. "
        "Serial 1 of 1. Say the last 8 digits."
    )
    assert turn.events[0].data["reason"] == "serials_indistinct"
    (called,) = said(dialog, "call supervisor")
    assert text(called) == "Supervisor called. Serial 1 of 1. Say the last 8 digits."
    assert work.calls == [("call_supervisor", 5)]


def test_short_while_giving_serials_closes_with_the_serials_given() -> None:
    work = phones()
    dialog = at_serials(work)
    _, asked, below, more, last = said(dialog, "0012", "short", "zero", "two", "0015")
    assert text(asked) == "How many?"
    assert text(below) == "You said 0, but gave 1 serial. How many?"
    assert text(more) == "Serial 2 of 2. Say the last 4 digits."
    assert text(last).startswith("Short, 2 picked.")
    assert event_names(last)[:2] == ["short_reported", "exception_opened"]
    assert work.inventory_calls() == [("report_short", 5, 2)]
    assert work.closed_with == {5: ("SN-80010012", "SN-80010015")}


def test_short_at_the_quantity_of_a_serialised_line_asks_the_picked_serials() -> None:
    work = phones()
    dialog = PickDialog(work)
    dialog.start()
    _, _, _, picked = said(dialog, "ready", "46", "short", "1")
    assert text(picked) == "Serial 1 of 1. Say the last 4 digits."
    said(dialog, "0014")
    assert work.inventory_calls() == [("report_short", 5, 1)]
    assert work.closed_with == {5: ("SN-80010014",)}

    work = phones()
    dialog = PickDialog(work)
    dialog.start()
    said(dialog, "ready", "46", "short", "0")  # nothing picked: no serials to give
    assert work.inventory_calls() == [("report_short", 5, 0)]
    assert work.closed_with == {}


def test_cancel_drops_the_serials_and_cancelling_a_short_goes_back_to_them() -> None:
    work = phones()
    dialog = at_serials(work)
    _, _, back, dropped = said(dialog, "0012", "short", "cancel", "cancel")
    assert text(back) == "Serial 2 of 3. Say the last 4 digits."
    assert text(dropped) == "Serials dropped. Pick 3."
    said(dialog, "3", "0013", "0012", "0014")
    assert work.closed_with == {5: ("SN-80010013", "SN-80010012", "SN-80010014")}


def test_a_serial_that_left_the_slot_starts_the_serials_again() -> None:
    work = phones(quantity=2)
    work.refuse["confirm_pick"] = "serial_elsewhere"
    dialog = at_serials(work)
    _, refused = said(dialog, "0012", "0013")
    assert text(refused) == (
        "A serial you gave has left this slot. Give the serials again. "
        "Serial 1 of 2. Say the last 4 digits."
    )
    assert work.inventory_calls() == []
    del work.refuse["confirm_pick"]
    said(dialog, "0014", "0015")
    assert work.closed_with == {5: ("SN-80010014", "SN-80010015")}


def test_another_refusal_at_the_last_serial_keeps_the_serials() -> None:
    work = phones(quantity=2)
    work.refuse["confirm_pick"] = "insufficient_stock"
    dialog = at_serials(work)
    _, refused = said(dialog, "0012", "0013")
    assert text(refused).endswith("Serial 2 of 2. Say the last 4 digits.")
    del work.refuse["confirm_pick"]
    said(dialog, "0013")
    assert work.closed_with == {5: ("SN-80010012", "SN-80010013")}


def test_a_reconnect_while_giving_serials_resumes_with_the_serials_given() -> None:
    work = phones()
    dialog = at_serials(work)
    said(dialog, "0012", "0013")
    saved = json.loads(json.dumps(dialog.snapshot()))

    resumed = PickDialog.restore(work, saved)
    assert resumed.repeat().text == "Serial 3 of 3. Say the last 4 digits."
    (repeated,) = said(resumed, "0013")
    assert text(repeated).startswith("That serial was already given.")
    said(resumed, "0015")
    assert work.calls == [("confirm_pick", 5, 3), ("complete_assignment", "77")]
    assert work.closed_with == {5: ("SN-80010012", "SN-80010013", "SN-80010015")}


def test_the_last_serial_replayed_after_a_reconnect_is_applied_once() -> None:
    work = phones(quantity=2)
    work.assignments[0][1].append(mug(6))
    dialog = at_serials(work)
    said(dialog, "0012")
    saved = dialog.snapshot()
    said(dialog, "0013")  # applied, then the connection dropped before the prompt

    resumed = PickDialog.restore(work, saved)
    assert resumed.repeat().text == "Aisle 12. Slot 4."
    (replayed,) = said(resumed, "0013")
    assert not replayed.accepted
    assert work.inventory_calls() == [("confirm_pick", 5, 2)]


# -- resuming after a reconnect ---------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "words", "prompt"),
    [
        ("en-US", ["ready"], "Aisle 12. Slot 4."),
        ("en-US", ["ready", "five seven"], "Pick 3."),
        ("en-US", ["ready", "five seven", "short"], "How many?"),
        ("en-US", ["ready", "five seven", "sign off"], "Sign off? Say yes or no."),
        ("en-US", ["ready", "5 7", "3", "8 2", "1 1"], "Deliver to staging 3. Say ready."),
        ("zh-CN", ["好了", "五七"], "拣三件。"),
    ],
)
def test_a_reconnect_resumes_at_the_same_prompt(
    work: Warehouse, locale: str, words: list[str], prompt: str
) -> None:
    dialog = PickDialog(work, locale=locale)
    dialog.start()
    said(dialog, *words)
    saved = json.loads(json.dumps(dialog.snapshot()))

    resumed = PickDialog.restore(work, saved, locale=locale)

    assert resumed.repeat() == dialog.repeat()
    assert resumed.repeat().text == prompt
    assert resumed.state.name == dialog.state.name


def test_a_replayed_confirmation_after_a_reconnect_is_applied_once(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    saved = at_quantity.snapshot()
    said(at_quantity, "three")  # applied, then the connection dropped before the prompt

    resumed = PickDialog.restore(work, saved)
    assert resumed.repeat().text == "Aisle 13. Slot 1. Level B."
    (replayed,) = said(resumed, "three")
    assert not replayed.accepted
    assert work.calls == [("confirm_pick", 1, 3)]


def test_a_confirmation_lost_in_the_drop_is_asked_for_again(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    resumed = PickDialog.restore(work, at_quantity.snapshot())
    assert resumed.repeat().text == "Pick 3."
    said(resumed, "three")
    assert work.calls == [("confirm_pick", 1, 3)]


def test_after_the_last_line_was_confirmed_a_resume_sends_to_staging(
    work: Warehouse, at_quantity: PickDialog
) -> None:
    said(at_quantity, "three", "eight two")
    saved = at_quantity.snapshot()
    work.confirm_pick(2, 11)  # confirmed, but the dialog never heard back

    resumed = PickDialog.restore(work, saved)
    assert resumed.repeat().text == "Deliver to staging 3. Say ready."
    assert work.calls[-1] == ("complete_assignment", "412")


def test_a_signed_off_snapshot_stays_ended(work: Warehouse, at_quantity: PickDialog) -> None:
    said(at_quantity, "sign off", "yes")
    resumed = PickDialog.restore(work, at_quantity.snapshot())
    assert resumed.ended


def test_a_table_naming_a_missing_handler_is_refused() -> None:
    table = Workflow("broken", (State("start", prompt="start", words={"ready": "nowhere"}),))
    with pytest.raises(TypeError, match="names no handler 'nowhere'"):
        type("BrokenDialog", (Dialog,), {"workflow": table, "initial": "start"})


def test_a_foreign_snapshot_is_refused(work: Warehouse) -> None:
    with pytest.raises(ValueError, match="not a pick dialog"):
        PickDialog.restore(work, {"workflow": "count", "version": 1, "state": "location"})
    with pytest.raises(LookupError, match="no state 'teleport'"):
        PickDialog.restore(work, {"workflow": "pick", "version": 1, "state": "teleport"})


# -- the data ---------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_state_has_a_prompt_and_help_in_every_locale(locale: str) -> None:
    prompts = load_prompts("pick", locale)
    english = load_prompts("pick", "en-US")
    assert set(prompts.templates) == set(english.templates)
    assert set(prompts.help) == set(english.help)
    for state in PICK_WORKFLOW.states:
        assert state.prompt in prompts.templates, state.name
        if not state.final:
            assert state.name in prompts.help, state.name


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_prompt_renders_from_what_the_dialog_knows(locale: str) -> None:
    work = warehouse()
    dialog = PickDialog(work, locale=locale)
    dialog.start()
    dialog.hear(("ready",), 0.9, True)
    dialog.staging = "3"
    prompts = load_prompts("pick", locale)
    for key in prompts.templates:
        rendered = dialog.say(key, said=4, picked=1, units=15, words="x")
        assert rendered and "{" not in rendered, key


@pytest.mark.parametrize(
    ("number", "mandarin"),
    [
        (0, "零"),
        (7, "七"),
        (10, "十"),
        (12, "十二"),
        (20, "二十"),
        (105, "一百零五"),
        (1010, "一千零一十"),
        (10010, "一万零一十"),
        (123456, "十二万三千四百五十六"),
    ],
)
def test_mandarin_numbers(number: int, mandarin: str) -> None:
    assert chinese_cardinal(number, load_prompts("pick", "zh-CN").numbers.digits) == mandarin


def test_numbers_read_digit_by_digit_where_pickers_expect_it() -> None:
    english = load_prompts("pick", "en-US")
    mandarin = load_prompts("pick", "zh-CN")
    assert english.fill("{n:digits}/{n:count}", {"n": "412"}) == "4 1 2/412"
    assert mandarin.fill("{n:digits}/{n:count}/{m:measure}", {"n": "412", "m": 2}) == (
        "四一二/四百一十二/两"
    )
    assert mandarin.fill("{n:count}", {"n": "B-3"}) == "B-三"
    assert english.fill("Aisle {a}.[ Level {b}.]", {"a": "3", "b": ""}) == "Aisle 3."


# -- whole answers: how long the listening waits --------------------------------------------


def test_an_answer_is_whole_when_it_has_the_digits_the_line_expects() -> None:
    """Check digits "8 2 5", quantity 11, serials by 4 digits: a shorter digit string is
    only the start of an answer, a command is always whole."""
    three = replace(cup(), check_digits="825")
    work = Warehouse([(AssignmentInfo("7", 2), [three, phone()])], serials_at={5: list(PHONES)})
    dialog = PickDialog(work)
    dialog.start()
    assert dialog.answer_complete(("ready",)) and not dialog.answer_complete(())
    said(dialog, "ready")
    assert not dialog.answer_complete(("8", "2"))
    assert dialog.answer_complete(("8", "2", "5"))
    assert dialog.answer_complete(("skip_slot",))
    assert (dialog.answer_grammar().min_digits, dialog.answer_grammar().max_digits) == (3, 3)
    assert dialog.answer_grammar().commands == ()  # read as digits, once known to be digits
    said(dialog, "eight two five")
    assert dialog.state.name == "quantity"
    assert not dialog.answer_complete(("1",)) and dialog.answer_complete(("1", "1"))
    assert dialog.answer_grammar().accepts(("1", "1"))
    assert not dialog.answer_grammar().accepts(("1",))
    said(dialog, "short")  # a short's count is anyone's: read at any length
    assert dialog.answer_grammar() == dialog.grammar()
    said(dialog, "cancel", "one one", "four six", "three")
    assert dialog.state.name == "serial"
    assert not dialog.answer_complete(("0", "0", "1"))
    assert dialog.answer_complete(("0", "0", "1", "2"))
    assert dialog.answer_grammar().max_digits == 4


def test_the_dialog_knows_the_answer_it_expects_without_acting_on_it() -> None:
    """The line's check digits at its location and its quantity at the quantity prompt,
    nothing else (serials are the warehouse's to match); asking changes nothing."""
    three = replace(cup(), check_digits="825")
    work = Warehouse([(AssignmentInfo("7", 2), [three, phone()])], serials_at={5: list(PHONES)})
    dialog = PickDialog(work)
    dialog.start()
    assert not dialog.expects(("ready",)) and dialog.expected_answer() is None
    said(dialog, "ready")
    assert dialog.expected_answer() == ("8", "2", "5") and dialog.expects(("8", "2", "5"))
    assert not any(dialog.expects(t) for t in (("8", "2"), ("5", "2", "8"), ("skip_slot",)))
    calls = list(work.calls)
    assert not dialog.expects(("9", "9", "9")) and work.calls == calls
    said(dialog, "eight two five")
    assert dialog.expects(("1", "1")) and not dialog.expects(("8", "2", "5"))
    said(dialog, "one one")
    assert dialog.state.name == "location" and not dialog.expects(("1", "1"))
    said(dialog, "four six")
    assert dialog.state.name == "quantity" and dialog.expected_answer() == ("3",)
    said(dialog, "three")
    assert dialog.state.name == "serial" and dialog.expected_answer() is None


def test_listening_hears_the_start_of_an_answer_and_digits_anywhere(work: Warehouse) -> None:
    dialog = PickDialog(work)
    dialog.start()
    ready = dialog.grammar()
    assert ready.listening().accepts(("9", "2")) and not ready.accepts(("9", "2"))
    said(dialog, "ready")
    grammar = dialog.grammar()
    assert not grammar.accepts(("5",))
    listening = grammar.listening()
    assert listening.accepts(("5",)) and listening.accepts(("5", "7", "1", "2"))
    assert listening.accepts(("skip_slot",)) and not listening.accepts(("5", "7", "1", "2", "0"))
    assert listening.tokens == grammar.tokens and listening.listening() is listening
