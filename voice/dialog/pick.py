"""The voice pick dialog: its table of states, its handlers, and `PickWork`, the protocol
through which it reaches the warehouse.

```
S: "Assignment 4 1 2. 12 picks. Say ready."              P: "ready"
S: "Aisle 12. Slot 4."                                    P: "five seven"  (check digits)
S: "Pick 3."                                              P: "three"       (confirms)
   ... next location ...
S: "Assignment complete. Deliver to staging 3. Say ready."
```

Serialised SKUs: once the quantity is confirmed, the picker gives each unit's serial by
the last digits on its label, as commercial voice picking does:

```
S: "Pick 2."                                              P: "two"
S: "Serial 1 of 2. Say the last 4 digits."                P: "zero zero one two"
S: "Serial 2 of 2. Say the last 4 digits."                P: "zero zero one five"
S: "Aisle 14. Slot 2."                       (the line closes once, with both serials)
```

Quantity first, serials after: the rhythm of every line stays the same, a wrong quantity
is caught before the picker starts reading labels, and the dialog knows how many serials
to ask for. `PickWork.match_serial` finds the serial of the line's SKU at its slot (and
lot) that ends in the digits; a suffix that matches none or one already given is refused,
and one that matches several asks for 8 digits (several serials still matching route the
picker to a supervisor). Nothing is said about serials that were not given, so no prompt
reveals one. The line is confirmed once, with all serials, after the last one; "short"
while giving serials asks "How many?" and closes the line with the serials given.

The server implements `PickWork` with its database services for one signed-on picker;
the dialog holds only where the picker is in the conversation (`snapshot`), so a
reconnecting headset resumes with `PickDialog.restore`. `PickWork` methods block; run the
dialog off the event loop.

Events a `Turn` may carry, besides the engine's "not_understood" and "rejected":
"assignment_started" {assignment}, "wrong_check_digits" {line_id},
"pick_confirmed" {line_id, quantity}, "serial_taken" {line_id, count},
"short_reported" {line_id, picked, quantity}, "damage_reported" {line_id},
"supervisor_called" {line_id}, "slot_skipped" {line_id},
"exception_opened" {kind: "short" | "damaged" | "supervisor", line_id},
"assignment_completed" {assignment, staging}, "signed_off" {}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from voice.dialog.machine import Dialog, DialogEvent, Prompt, Reply, State, Workflow, WorkRejected
from voice.grammar import SERIAL_SUFFIX_DIGITS, Grammar

SNAPSHOT_VERSION = 1


@dataclass(frozen=True)
class AssignmentInfo:
    """The picker's current assignment: its number, how many picks, where it goes."""

    number: str
    picks: int
    staging: str = ""


@dataclass(frozen=True)
class PickTask:
    """One pick line, as the picker hears it. `check_digits` is only ever compared with
    what the picker says; no prompt and no display shows it."""

    line_id: int
    location: str
    aisle: str
    slot: str
    level: str
    check_digits: str
    quantity: int
    sku: str
    description: str = ""
    unit: str = ""
    picks_remaining: int = 0
    serialized: bool = False  # each unit's serial is given before the line closes


class PickRejected(WorkRejected):
    """The warehouse refused a pick action; `reason` is a code such as
    "insufficient_stock" or "line_closed" (spoken via the locale's ``[reasons]``)."""


class PickWork(Protocol):
    """The warehouse as one signed-on picker's dialog sees it (the server implements it).

    `next_task` returns the first open line of the current assignment in walking order:
    the same line until it is confirmed, shorted or skipped. `confirm_pick`, `report_short`
    and `skip` return the line to pick after theirs, as `next_task` would (read with the
    change, so that the next prompt waits for one round trip, not two). `confirm_pick`
    applies at most once per line, whatever the dialog or the network repeat. Any method
    may raise `PickRejected`; the dialog then says why and changes nothing.
    """

    def current_assignment(self) -> AssignmentInfo | None:
        """The assignment to work on (assigning the next one if need be), or None."""
        ...

    def next_task(self) -> PickTask | None:
        """The first open line of the current assignment, or None when all are done."""
        ...

    def match_serial(self, line_id: int, digits: str) -> str:
        """The serial of the line's SKU at its slot (and lot) whose digits end in `digits`.
        Raises `PickRejected` "serial_unknown" when none does, "serial_ambiguous" when
        several do."""
        ...

    def confirm_pick(
        self, line_id: int, quantity: int, serials: Sequence[str] = ()
    ) -> PickTask | None:
        """The picker took `quantity` (the full quantity of the line), with one serial per
        unit for a serialised SKU."""
        ...

    def report_short(
        self, line_id: int, picked: int, serials: Sequence[str] = ()
    ) -> PickTask | None:
        """The picker found only `picked` (< the line's quantity), with one serial per
        picked unit for a serialised SKU; opens an exception."""
        ...

    def skip(self, line_id: int) -> PickTask | None:
        """Leave the line for later (the server decides when it comes back)."""
        ...

    def report_damaged(self, line_id: int) -> None:
        """Goods at the slot are damaged; opens an exception."""
        ...

    def call_supervisor(self, line_id: int | None) -> None:
        """The picker asks for help (at a line, or not); opens an exception."""
        ...

    def complete_assignment(self) -> str:
        """Close the assignment; returns the staging location to deliver it to."""
        ...

    def sign_off(self) -> None:
        """The picker ends the session."""
        ...

    def remaining(self) -> tuple[int, int]:
        """(picks, units) still to pick in the current assignment."""
        ...


_ALWAYS = {"say_again": "again", "help": "help"}
_AT_LINE = {
    "skip_slot": "skip_slot",
    "description": "describe",
    "how_much_more": "how_much_more",
    "call_supervisor": "call_supervisor",
    "sign_off": "ask_sign_off",
}
_WHERE = ("location", "aisle", "slot", "level")
_WHAT = ("quantity", "unit", "sku", "description")
SHORT_SUFFIX, LONG_SUFFIX = SERIAL_SUFFIX_DIGITS

PICK_WORKFLOW = Workflow(
    name="pick",
    states=(
        State(
            "assignment",
            prompt="assignment",
            words={
                "ready": "begin",
                "how_much_more": "how_much_more",
                "call_supervisor": "call_supervisor",
                "sign_off": "ask_sign_off",
                **_ALWAYS,
            },
            display=("assignment", "picks"),
        ),
        State(
            "location",
            prompt="location",
            words={"location": "again", **_AT_LINE, **_ALWAYS},
            digits=(2, 3),
            on_digits="check_location",
            display=_WHERE,
        ),
        State(
            "quantity",
            prompt="quantity",
            words={
                "short": "ask_short",
                "damaged": "report_damaged",
                "location": "say_location",
                **_AT_LINE,
                **_ALWAYS,
            },
            digits=(1, 4),
            on_digits="confirm_quantity",
            display=_WHERE + _WHAT,
        ),
        State(
            "serial",
            prompt="serial",
            words={
                "short": "ask_short",
                "cancel": "drop_serials",
                "damaged": "report_damaged",
                "location": "say_location",
                **_AT_LINE,
                **_ALWAYS,
            },
            digits=SERIAL_SUFFIX_DIGITS,
            on_digits="take_serial",
            display=_WHERE + _WHAT + ("serial", "serials", "serial_digits"),
        ),
        State(
            "short",
            prompt="short",
            words={"cancel": "cancel_short", "call_supervisor": "call_supervisor", **_ALWAYS},
            digits=(1, 4),
            on_digits="report_short",
            display=_WHERE + _WHAT,
        ),
        State(
            "deliver",
            prompt="deliver",
            words={
                "ready": "next_assignment",
                "location": "again",
                "call_supervisor": "call_supervisor",
                "sign_off": "ask_sign_off",
                **_ALWAYS,
            },
            display=("staging",),
        ),
        State(
            "no_work",
            prompt="no_work",
            words={"ready": "next_assignment", "sign_off": "ask_sign_off", **_ALWAYS},
        ),
        State(
            "sign_off",
            prompt="sign_off",
            words={"yes": "sign_off", "no": "stay", "cancel": "stay", **_ALWAYS},
        ),
        State("signed_off", prompt="signed_off", final=True),
    ),
)

_AT_LINE_STATES = ("location", "quantity", "serial", "short")


@dataclass(frozen=True)
class SerialCapture:
    """The serials being given for the current line: how many units they are for, whether
    they close the line as a short, the serials matched so far, and how many digits to ask
    for next."""

    wanted: int = 0
    short: bool = False
    said: tuple[str, ...] = ()
    digits: int = SHORT_SUFFIX

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SerialCapture:
        if not data:
            return cls()
        return cls(
            wanted=int(data["wanted"]),
            short=bool(data["short"]),
            said=tuple(str(s) for s in data["said"]),
            digits=int(data["digits"]),
        )


class PickDialog(Dialog):
    """One picker's pick dialog.

    ``dialog = PickDialog(work, locale="zh-CN")``; send ``dialog.start()``; listen with
    ``dialog.grammar()``; for each final utterance send ``dialog.hear(tokens, confidence,
    accepted).prompt``; keep ``dialog.snapshot()`` to resume with `PickDialog.restore`.
    """

    workflow = PICK_WORKFLOW
    initial = "no_work"
    # "yes" only confirms a sign-off; "sign_off" itself only asks, but it is named too.
    # "call_supervisor" opens an exception and a call a manager is asked to join: a walk
    # (george, 16 kHz, 40 ms pauses) heard his "zero two four four" as it at 0.576.
    work_changing = frozenset(
        {"sign_off", "yes", "short", "skip_slot", "damaged", "cancel", "call_supervisor"}
    )

    def __init__(self, work: PickWork, locale: str = "en-US", min_confidence: float = 0.5):
        super().__init__(locale=locale, min_confidence=min_confidence)
        self.work = work
        self.assignment: AssignmentInfo | None = None
        self.task: PickTask | None = None
        self.staging = ""
        self.resume_state = "assignment"
        self.capture = SerialCapture()
        self._closed_line: int | None = None

    def start(self) -> Prompt:
        """Sign-on: the picker's first prompt (their assignment, or "no work")."""
        with self._lock:
            self.assignment = self.work.current_assignment()
            self.go("assignment" if self.assignment else "no_work")
            return self.repeat()

    # -- resume after a reconnect ------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Where the picker is in the conversation (JSON-safe; the rest is in PickWork)."""
        with self._lock:
            return {
                "workflow": self.workflow.name,
                "version": SNAPSHOT_VERSION,
                "state": self.state.name,
                "line_id": self.task.line_id if self.task else None,
                "resume_state": self.resume_state,
                "staging": self.staging,
                "serials": asdict(self.capture),
            }

    @classmethod
    def restore(
        cls,
        work: PickWork,
        snapshot: Mapping[str, Any],
        locale: str = "en-US",
        min_confidence: float = 0.5,
    ) -> PickDialog:
        """A dialog that continues where `snapshot` was taken; send ``repeat()`` to the
        headset. If the line it was at has been closed meanwhile (the confirmation went
        through before the connection dropped), it continues at the next line."""
        if snapshot.get("workflow") != cls.workflow.name:
            raise ValueError(f"not a {cls.workflow.name} dialog snapshot: {snapshot!r}")
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown snapshot version {snapshot.get('version')!r}")
        dialog = cls(work, locale=locale, min_confidence=min_confidence)
        state = cls.workflow.state(str(snapshot["state"])).name
        resume = cls.workflow.state(str(snapshot.get("resume_state", "assignment"))).name
        dialog.staging = str(snapshot.get("staging", ""))
        dialog.resume_state = resume
        if state == "signed_off":
            dialog.go(state)
            return dialog
        dialog.assignment = work.current_assignment()
        at_line = state in _AT_LINE_STATES or (state == "sign_off" and resume in _AT_LINE_STATES)
        if at_line:
            task = work.next_task() if dialog.assignment else None
            if task is not None and task.line_id == snapshot.get("line_id"):
                dialog.task = task
                dialog.capture = SerialCapture.from_json(snapshot.get("serials"))
                dialog.go(state)
            elif task is not None:
                dialog.task = task
                dialog.go("location")
            elif dialog.assignment is not None:
                dialog._turn(dialog._advance(None), accepted=True)
            else:
                dialog.go("no_work")
        elif state == "assignment" and dialog.assignment is None:
            dialog.go("no_work")
        else:
            dialog.go(state)
        return dialog

    # -- prompt values -----------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        values: dict[str, Any] = {"staging": self.staging}
        if self.assignment is not None:
            values.update(assignment=self.assignment.number, picks=self.assignment.picks)
        task = self.task
        if task is not None:  # every field but the check digits
            values.update(
                location=task.location,
                aisle=task.aisle,
                slot=task.slot,
                level=task.level,
                quantity=task.quantity,
                unit=task.unit,
                sku=task.sku,
                description=task.description,
                picks_remaining=task.picks_remaining,
                serial=len(self.capture.said) + 1,
                serials=self.capture.wanted,
                serials_given=len(self.capture.said),
                serial_digits=self.capture.digits,
            )
        return values

    def expected_digits(self) -> int:
        """The line's own length: its check digits, the quantity to confirm, the serial
        digits asked for, or the longest count a short can be."""
        task, state = self.task, self.state.name
        if task is None:
            return super().expected_digits()
        lengths = {
            "location": len(task.check_digits),
            "quantity": len(str(task.quantity)),
            "serial": self.capture.digits,
            "short": len(str(max(task.quantity - 1, 0))),
        }
        return lengths.get(state, super().expected_digits())

    def expected_answer(self) -> tuple[str, ...] | None:
        """The line's check digits at its location, its quantity at the quantity prompt.
        Not serials: a carton's are often consecutive, so a misread start of one often
        names another at the slot ("zero zero nine ..." read as "zero zero one nine")."""
        with self._lock:
            task, state = self.task, self.state.name
            if task is None:
                return None
            expected = {"location": task.check_digits, "quantity": str(task.quantity)}
            said = expected.get(state)
            return tuple(said) if said is not None and said.isdigit() else None

    def answer_grammar(self) -> Grammar:
        """Check digits, the quantity and serial digits are checked against the line, so
        they are read at the line's own length (4-digit serials: 70-80% of fsdd-dev's
        read right at 1-8 digits, more at 4). A short's count is anyone's: not narrowed."""
        grammar = self.grammar()
        if self.task is None or self.state.name not in ("location", "quantity", "serial"):
            return grammar
        return grammar.exactly(self.expected_digits())

    # -- handlers (named in PICK_WORKFLOW) ---------------------------------------------

    def begin(self, tokens: tuple[str, ...]) -> Reply:
        number = self.assignment.number if self.assignment else None
        started = DialogEvent("assignment_started", {"assignment": number})
        return self._advance(self.work.next_task(), events=(started,))

    def check_location(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        if "".join(tokens) == task.check_digits:
            return Reply("quantity")
        event = DialogEvent("wrong_check_digits", {"line_id": task.line_id})
        return Reply(say=(self.say("wrong_check_digits"),), events=(event,))

    def confirm_quantity(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        said = int("".join(tokens))
        if said != task.quantity:  # never pick a different quantity: over never, under by "short"
            return Reply(say=(self.say("quantity_mismatch", said=said),))
        if task.serialized:
            self.capture = SerialCapture(wanted=said)
            return Reply("serial")
        return self._close_picked(task)

    def take_serial(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        serial = self._match_serial(task, "".join(tokens))
        if serial in self.capture.said:
            return Reply(say=(self.say("serial_repeated"),))
        capture = replace(self.capture, said=(*self.capture.said, serial), digits=SHORT_SUFFIX)
        if len(capture.said) < capture.wanted:
            self.capture = capture
            event = DialogEvent(
                "serial_taken", {"line_id": task.line_id, "count": len(capture.said)}
            )
            return Reply(events=(event,))
        try:
            if capture.short:
                return self._close_short(task, len(capture.said), capture.said)
            return self._close_picked(task, capture.said)
        except PickRejected as exc:
            if exc.reason != "serial_elsewhere":
                raise
            # a serial given earlier left the slot meanwhile: the list is stale, start over
            self.capture = replace(capture, said=())
            return self.refused(exc)

    def drop_serials(self, tokens: tuple[str, ...]) -> Reply:
        self.capture = SerialCapture()
        return Reply("quantity", say=(self.say("serials_dropped"),))

    def ask_short(self, tokens: tuple[str, ...]) -> Reply:
        return Reply("short")

    def cancel_short(self, tokens: tuple[str, ...]) -> Reply:
        return Reply("serial" if self.capture.wanted else "quantity")

    def report_short(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        picked = int("".join(tokens))
        given = len(self.capture.said)
        if picked >= task.quantity:
            return Reply(say=(self.say("short_not_less", said=picked),))
        if picked < given:  # the serials given are the units picked: which one is not?
            return Reply(say=(self.say("short_below_serials", said=picked),))
        if task.serialized and picked > given:
            self.capture = replace(self.capture, wanted=picked, short=True)
            return Reply("serial")
        return self._close_short(task, picked, self.capture.said)

    def _close_picked(self, task: PickTask, serials: tuple[str, ...] = ()) -> Reply:
        if self._closed_line == task.line_id:  # closed already; what failed came after
            following = self.work.next_task()
        else:
            following = self.work.confirm_pick(task.line_id, task.quantity, serials)
            self._closed_line = task.line_id
        event = DialogEvent("pick_confirmed", {"line_id": task.line_id, "quantity": task.quantity})
        return self._advance(following, events=(event,))

    def _close_short(self, task: PickTask, picked: int, serials: tuple[str, ...]) -> Reply:
        if self._closed_line == task.line_id:
            following = self.work.next_task()
        else:
            following = self.work.report_short(task.line_id, picked, serials)
            self._closed_line = task.line_id
        data = {"line_id": task.line_id, "picked": picked, "quantity": task.quantity}
        events = (
            DialogEvent("short_reported", data),
            DialogEvent("exception_opened", {"kind": "short", "line_id": task.line_id}),
        )
        said = self.say("short_reported", picked=picked)
        return self._advance(following, say=(said,), events=events)

    def report_damaged(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        self.work.report_damaged(task.line_id)
        events = (
            DialogEvent("damage_reported", {"line_id": task.line_id}),
            DialogEvent("exception_opened", {"kind": "damaged", "line_id": task.line_id}),
        )
        lead = self.say("damage_reported")
        return self._advance(
            self.work.next_task(), say=(lead,), events=events, same_line="quantity"
        )

    def skip_slot(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        following = self.work.skip(task.line_id)
        event = DialogEvent("slot_skipped", {"line_id": task.line_id})
        return self._advance(following, say=(self.say("slot_skipped"),), events=(event,))

    def call_supervisor(self, tokens: tuple[str, ...]) -> Reply:
        line_id = self.task.line_id if self.task and self.state.name in _AT_LINE_STATES else None
        self.work.call_supervisor(line_id)
        events = (
            DialogEvent("supervisor_called", {"line_id": line_id}),
            DialogEvent("exception_opened", {"kind": "supervisor", "line_id": line_id}),
        )
        return Reply(say=(self.say("supervisor_called"),), events=events)

    def how_much_more(self, tokens: tuple[str, ...]) -> Reply:
        picks, units = self.work.remaining()
        return Reply(say=(self.say("remaining", picks=picks, units=units),))

    def describe(self, tokens: tuple[str, ...]) -> Reply:
        return Reply(say=(self.say("description"),))

    def say_location(self, tokens: tuple[str, ...]) -> Reply:
        return Reply(say=(self.say("location"),))

    def next_assignment(self, tokens: tuple[str, ...]) -> Reply:
        assignment = self.work.current_assignment()
        self.assignment, self.task, self.staging = assignment, None, ""
        return Reply("assignment" if assignment else "no_work")

    def ask_sign_off(self, tokens: tuple[str, ...]) -> Reply:
        self.resume_state = self.state.name
        return Reply("sign_off")

    def sign_off(self, tokens: tuple[str, ...]) -> Reply:
        self.work.sign_off()
        return Reply("signed_off", events=(DialogEvent("signed_off"),))

    def stay(self, tokens: tuple[str, ...]) -> Reply:
        return Reply(self.resume_state)

    # -- helpers -----------------------------------------------------------------------

    def _task(self) -> PickTask:
        if self.task is None:
            raise RuntimeError(f"state {self.state.name!r} needs a pick line and has none")
        return self.task

    def _match_serial(self, task: PickTask, digits: str) -> str:
        """The serial `digits` name; when they name several, ask for the long suffix next,
        and when even that does not tell them apart, refuse with "serials_indistinct"."""
        try:
            return self.work.match_serial(task.line_id, digits)
        except PickRejected as exc:
            if exc.reason != "serial_ambiguous":
                raise
            if len(digits) >= LONG_SUFFIX:
                raise PickRejected("serials_indistinct", str(exc)) from exc
            self.capture = replace(self.capture, digits=LONG_SUFFIX)
            raise

    def _advance(
        self,
        task: PickTask | None,
        say: tuple[str, ...] = (),
        events: tuple[DialogEvent, ...] = (),
        same_line: str = "location",
    ) -> Reply:
        """Go to `task`, the next open line; `same_line` is where to be if it is still this
        one. None: after the last line, complete the assignment and send the picker to
        staging."""
        if task is None:
            staging = self.work.complete_assignment()
            self.task, self.staging, self.capture = None, staging, SerialCapture()
            number = self.assignment.number if self.assignment else None
            done = DialogEvent("assignment_completed", {"assignment": number, "staging": staging})
            return Reply(
                "deliver", say=(*say, self.say("assignment_complete")), events=(*events, done)
            )
        same = self.task is not None and task.line_id == self.task.line_id
        self.task, self.capture = task, SerialCapture()
        return Reply(same_line if same else "location", say=say, events=events)
