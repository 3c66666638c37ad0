"""The warehouse behind one picker's headset dialog: `PickWork` on the database services.

Each call is its own short transaction (a confirmation is committed before the dialog moves
on, so a crash afterwards loses nothing). Refusals from the domain become `PickRejected`
with the problem's stable code, which the dialog speaks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Database
from server.problems import Forbidden, Problem, Unauthorized
from server.services import membership, picking, rooms, users
from server.tables import Assignment, AssignmentStatus, ExceptionKind
from voice.dialog import AssignmentInfo, PickRejected, PickTask

T = TypeVar("T")
log = logging.getLogger(__name__)


class DatabasePickWork:
    """`voice.dialog.PickWork` for `operator`, run synchronously (the dialog is called from a
    worker thread).

    With a `token_version` (the version of the token the socket was opened with) every
    write first locks the operator's row and checks they are still active at that version:
    once a user is disabled, demoted or their password changed, their session writes
    nothing more, even before its socket is closed."""

    def __init__(
        self,
        db: Database,
        operator: str,
        warehouse: str | None = None,
        *,
        token_version: int | None = None,
        on_room: Callable[[int], None] | None = None,
    ) -> None:
        """`on_room` hears of each video room the picker's words opened (its id), once
        committed, on the dialog's worker thread."""
        self.db = db
        self.operator = operator
        self.warehouse = warehouse
        self.token_version = token_version
        self.on_room = on_room

    def _run(self, work: Callable[..., T], *args: Any, write: bool = True, **kwargs: Any) -> T:
        try:
            return self.db.run(self._as_operator, work, write, *args, write=write, **kwargs)
        except Problem as exc:
            log.info("%s: %s refused: %s (%s)", self.operator, work.__name__, exc.detail, exc.code)
            raise PickRejected(exc.code, exc.detail) from exc

    def _as_operator(
        self, session: Session, work: Callable[..., T], write: bool, *args: Any, **kwargs: Any
    ) -> T:
        if write:
            self._may_still_write(session)
        return work(session, *args, **kwargs)

    def _may_still_write(self, session: Session) -> None:
        """The operator is still active at the socket's token version (their row locked),
        and a picker taken off a warehouse mid-assignment writes nothing more there (the
        REST routes check the same on every request)."""
        user = users.lock_standing(session, self.operator)
        if self.token_version is not None and (user is None or not user.allows(self.token_version)):
            raise Unauthorized(f"{self.operator} may no longer pick here", code="session_revoked")
        if user is None or membership.assigned_outside(session, user.id, self.operator, user.role):
            raise Forbidden(
                f"{self.operator} no longer works in this warehouse", code="warehouse_forbidden"
            )

    def _assignment(self, session: Session) -> Assignment:
        assignment = picking.current_assignment(session, self.operator)
        if assignment is None:
            raise Problem("no assignment in progress", code="no_assignment", status=409)
        return assignment

    def _help_assignment(self, session: Session) -> Assignment:
        """What a call for help away from a line is about: the assignment in progress, or
        else the one the picker completed last (on the way to staging with it)."""
        assignment = picking.current_assignment(session, self.operator)
        if assignment is None:
            assignment = session.scalar(
                select(Assignment)
                .where(
                    Assignment.picker == self.operator,
                    Assignment.status == AssignmentStatus.completed,
                )
                .order_by(Assignment.completed_at.desc(), Assignment.id.desc())
                .limit(1)
            )
        if assignment is None:
            raise Problem("no assignment to ask about", code="no_assignment", status=409)
        return assignment

    def current_assignment(self) -> AssignmentInfo | None:
        """The picker's assignment in progress, or the next ready one of a warehouse they
        work in, now theirs."""

        def sign_on(session: Session) -> AssignmentInfo | None:
            within = membership.warehouse_ids(session, self.operator)
            assignment = picking.sign_on(session, self.operator, self.warehouse, within=within)
            if assignment is None:
                return None
            brief = picking.brief(session, assignment)
            return AssignmentInfo(
                number=str(brief.number), picks=brief.lines, staging=brief.staging_location
            )

        return self._run(sign_on)

    def next_task(self) -> PickTask | None:
        return self._run(self._next_task, write=False)

    def _next_task(
        self, session: Session, remaining: int | None = None, assignment_id: int | None = None
    ) -> PickTask | None:
        """The line to pick next in the picker's assignment in progress (or in
        `assignment_id`, when the caller knows it)."""
        assignment_id = assignment_id or self._assignment(session).id
        task = picking.next_task(session, assignment_id, remaining)
        if task is None:
            return None
        return PickTask(
            line_id=task.line_id,
            location=task.location,
            aisle=task.aisle,
            slot=task.slot,
            level=task.level,
            check_digits=task.check_digits,
            quantity=task.quantity,
            sku=task.sku,
            description=task.description,
            unit=task.unit,
            picks_remaining=task.remaining,
            serialized=task.serialized,
        )

    def match_serial(self, line_id: int, digits: str) -> str:
        return self._run(picking.match_serial, line_id, digits, self.operator, write=False)

    def confirm_pick(
        self, line_id: int, quantity: int, serials: Sequence[str] = ()
    ) -> PickTask | None:
        return self._run(self.close_line, picking.confirm_pick, line_id, quantity, serials)

    def report_short(
        self, line_id: int, picked: int, serials: Sequence[str] = ()
    ) -> PickTask | None:
        return self._run(self.close_line, picking.report_short, line_id, picked, serials)

    def close_line(
        self,
        session: Session,
        close: Callable[..., picking.PickResult],
        line_id: int,
        quantity: int,
        serials: Sequence[str],
    ) -> PickTask | None:
        """`close` the line, then read the line after it in the same transaction: the
        picker's next prompt waits for one round of the database, not two. One answer per
        line: a repeated one carries the same token and replays."""
        result = close(
            session,
            line_id,
            quantity,
            self.operator,
            idempotency_token=f"headset:{line_id}",
            serials=serials,
        )
        assignment = result.context.assignment  # the picker's (`close` checked)
        if assignment.status != AssignmentStatus.in_progress:
            return self._next_task(session, result.remaining)  # whatever is in progress, if any
        return self._next_task(session, result.remaining, assignment.id)

    def skip(self, line_id: int) -> PickTask | None:
        def skip(session: Session) -> PickTask | None:
            picking.skip_line(session, line_id, self.operator)
            return self._next_task(session)

        return self._run(skip)

    def report_damaged(self, line_id: int) -> None:
        def damaged(session: Session) -> int:
            exception = picking.report_exception(
                session, ExceptionKind.damage, self.operator, line_id=line_id
            )
            return rooms.open_room_for_exception(session, exception.id, self.operator).id

        self._room_opened(self._run(damaged))

    def call_supervisor(self, line_id: int | None) -> None:
        """A call for help opens its exception and the exception's video room at once, so
        a manager notified of it can join the picker straight away."""

        def call(session: Session) -> int:
            assignment_id = None if line_id is not None else self._help_assignment(session).id
            exception = picking.report_exception(
                session,
                ExceptionKind.help,
                self.operator,
                line_id=line_id,
                assignment_id=assignment_id,
            )
            return rooms.open_room_for_exception(session, exception.id, self.operator).id

        self._room_opened(self._run(call))

    def _room_opened(self, room_id: int) -> None:
        if self.on_room is not None:
            self.on_room(room_id)

    def complete_assignment(self) -> str:
        def complete(session: Session) -> str:
            staging = picking.complete_assignment(
                session, self._assignment(session).id, self.operator
            )
            return staging.code

        return self._run(complete)

    def sign_off(self) -> None:
        self._run(picking.sign_off, self.operator)

    def remaining(self) -> tuple[int, int]:
        def remaining(session: Session) -> tuple[int, int]:
            return picking.remaining_work(session, self._assignment(session).id)

        return self._run(remaining, write=False)
