"""The voice pick dialog: its table of states, its handlers, and `PickWork`, the protocol
through which it reaches the warehouse.

```
S: "Assignment 4 1 2. 12 picks. Say ready."              P: "ready"
S: "Aisle 12. Slot 4."                                    P: "five seven"  (check digits)
S: "Pick 3."                                              P: "three"       (confirms)
   ... next location ...
S: "Assignment complete. Deliver to staging 3. Say ready."
```

The server implements `PickWork` with its database services for one signed-on picker;
the dialog holds only where the picker is in the conversation (`snapshot`), so a
reconnecting headset resumes with `PickDialog.restore`. `PickWork` methods block; run the
dialog off the event loop.

Events a `Turn` may carry, besides the engine's "not_understood" and "rejected":
"assignment_started" {assignment}, "wrong_check_digits" {line_id},
"pick_confirmed" {line_id, quantity}, "short_reported" {line_id, picked, quantity},
"damage_reported" {line_id}, "supervisor_called" {line_id}, "slot_skipped" {line_id},
"exception_opened" {kind: "short" | "damaged" | "supervisor", line_id},
"assignment_completed" {assignment, staging}, "signed_off" {}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from voice.dialog.machine import Dialog, Event, Prompt, Reply, State, Workflow, WorkRejected

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


class PickRejected(WorkRejected):
    """The warehouse refused a pick action; `reason` is a code such as
    "insufficient_stock" or "line_closed" (spoken via the locale's ``[reasons]``)."""


class PickWork(Protocol):
    """The warehouse as one signed-on picker's dialog sees it (the server implements it).

    `next_task` returns the first open line of the current assignment in walking order:
    the same line until it is confirmed, shorted or skipped. `confirm_pick` applies at
    most once per line, whatever the dialog or the network repeat. Any method may raise
    `PickRejected`; the dialog then says why and changes nothing.
    """

    def current_assignment(self) -> AssignmentInfo | None:
        """The assignment to work on (assigning the next one if need be), or None."""
        ...

    def next_task(self) -> PickTask | None:
        """The first open line of the current assignment, or None when all are done."""
        ...

    def confirm_pick(self, line_id: int, quantity: int) -> None:
        """The picker took `quantity` (the full quantity of the line)."""
        ...

    def report_short(self, line_id: int, picked: int) -> None:
        """The picker found only `picked` (< the line's quantity); opens an exception."""
        ...

    def skip(self, line_id: int) -> None:
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

_AT_LINE_STATES = ("location", "quantity", "short")


class PickDialog(Dialog):
    """One picker's pick dialog.

    ``dialog = PickDialog(work, locale="zh-CN")``; send ``dialog.start()``; listen with
    ``dialog.grammar()``; for each final utterance send ``dialog.hear(tokens, confidence,
    accepted).prompt``; keep ``dialog.snapshot()`` to resume with `PickDialog.restore`.
    """

    workflow = PICK_WORKFLOW
    initial = "no_work"

    def __init__(self, work: PickWork, locale: str = "en-US", min_confidence: float = 0.5):
        super().__init__(locale=locale, min_confidence=min_confidence)
        self.work = work
        self.assignment: AssignmentInfo | None = None
        self.task: PickTask | None = None
        self.staging = ""
        self.resume_state = "assignment"
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
                dialog.go(state)
            elif task is not None:
                dialog.task = task
                dialog.go("location")
            elif dialog.assignment is not None:
                dialog._turn(dialog._advance(), accepted=True)
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
            )
        return values

    # -- handlers (named in PICK_WORKFLOW) ---------------------------------------------

    def begin(self, tokens: tuple[str, ...]) -> Reply:
        number = self.assignment.number if self.assignment else None
        return self._advance(events=(Event("assignment_started", {"assignment": number}),))

    def check_location(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        if "".join(tokens) == task.check_digits:
            return Reply("quantity")
        event = Event("wrong_check_digits", {"line_id": task.line_id})
        return Reply(say=(self.say("wrong_check_digits"),), events=(event,))

    def confirm_quantity(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        said = int("".join(tokens))
        if said != task.quantity:  # never pick a different quantity: over never, under by "short"
            return Reply(say=(self.say("quantity_mismatch", said=said),))
        if self._closed_line != task.line_id:
            self.work.confirm_pick(task.line_id, said)
            self._closed_line = task.line_id
        event = Event("pick_confirmed", {"line_id": task.line_id, "quantity": said})
        return self._advance(events=(event,))

    def ask_short(self, tokens: tuple[str, ...]) -> Reply:
        return Reply("short")

    def cancel_short(self, tokens: tuple[str, ...]) -> Reply:
        return Reply("quantity")

    def report_short(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        picked = int("".join(tokens))
        if picked >= task.quantity:
            return Reply(say=(self.say("short_not_less", said=picked),))
        if self._closed_line != task.line_id:
            self.work.report_short(task.line_id, picked)
            self._closed_line = task.line_id
        data = {"line_id": task.line_id, "picked": picked, "quantity": task.quantity}
        events = (
            Event("short_reported", data),
            Event("exception_opened", {"kind": "short", "line_id": task.line_id}),
        )
        return self._advance(say=(self.say("short_reported", picked=picked),), events=events)

    def report_damaged(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        self.work.report_damaged(task.line_id)
        events = (
            Event("damage_reported", {"line_id": task.line_id}),
            Event("exception_opened", {"kind": "damaged", "line_id": task.line_id}),
        )
        lead = self.say("damage_reported")
        return self._advance(say=(lead,), events=events, same_line="quantity")

    def skip_slot(self, tokens: tuple[str, ...]) -> Reply:
        task = self._task()
        self.work.skip(task.line_id)
        event = Event("slot_skipped", {"line_id": task.line_id})
        return self._advance(say=(self.say("slot_skipped"),), events=(event,))

    def call_supervisor(self, tokens: tuple[str, ...]) -> Reply:
        line_id = self.task.line_id if self.task and self.state.name in _AT_LINE_STATES else None
        self.work.call_supervisor(line_id)
        events = (
            Event("supervisor_called", {"line_id": line_id}),
            Event("exception_opened", {"kind": "supervisor", "line_id": line_id}),
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
        return Reply("signed_off", events=(Event("signed_off"),))

    def stay(self, tokens: tuple[str, ...]) -> Reply:
        return Reply(self.resume_state)

    # -- helpers -----------------------------------------------------------------------

    def _task(self) -> PickTask:
        if self.task is None:
            raise RuntimeError(f"state {self.state.name!r} needs a pick line and has none")
        return self.task

    def _advance(
        self, say: tuple[str, ...] = (), events: tuple[Event, ...] = (), same_line: str = "location"
    ) -> Reply:
        """Go to the next open line; `same_line` is where to be if it is still this one.
        After the last line, complete the assignment and send the picker to staging."""
        task = self.work.next_task()
        if task is None:
            staging = self.work.complete_assignment()
            self.task, self.staging = None, staging
            number = self.assignment.number if self.assignment else None
            done = Event("assignment_completed", {"assignment": number, "staging": staging})
            return Reply(
                "deliver", say=(*say, self.say("assignment_complete")), events=(*events, done)
            )
        same = self.task is not None and task.line_id == self.task.line_id
        self.task = task
        return Reply(same_line if same else "location", say=say, events=events)
