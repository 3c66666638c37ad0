"""Who picks an assignment: a supervisor gives one nobody has started to a picker, or a
manager settling an exception hands what is left of one over to another picker."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.problems import Conflict, Invalid, NotFound
from server.tables import Assignment, AssignmentStatus, Role, User


def assign_picker(session: Session, number: int, picker: str | None) -> Assignment:
    """Hand an assignment nobody has started to `picker` (None: back to the pool); the
    picker gets it at their next sign-on, before the pool's work, and no one else does.

    Only a `ready` assignment is (re)assigned: one in progress is in someone's headset and
    one completed is done (409 `assignment_in_progress`, `assignment_completed`). The
    picker must be an active user with the picker role (422 `not_a_picker`) who works in
    the assignment's warehouse (422 `picker_not_member`). A picker signing on at the same
    moment wins: the change is a compare-and-set on the status."""
    assignment = _assignment(session, number)
    if assignment.status != AssignmentStatus.ready:
        raise Conflict(
            f"assignment {number} is in progress with {assignment.picker}",
            code="assignment_in_progress",
        )
    if picker is not None:
        _check_picker(session, picker, assignment)
    changed = session.execute(
        update(Assignment)
        .where(Assignment.id == number, Assignment.status == AssignmentStatus.ready)
        .values(picker=picker),
        execution_options={"synchronize_session": False},
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"assignment {number} was just started", code="assignment_in_progress")
    session.refresh(assignment)
    return assignment


def hand_over(session: Session, number: int, picker: str) -> Assignment:
    """Give what is left of an assignment, started or not, to `picker`, who resumes it at
    its next unpicked line when they sign on (the lines picked stay picked, by whoever
    picked them). The one who had it writes nothing more to it. `picker` must be free:
    another assignment in progress is 409 `picker_busy`."""
    assignment = _assignment(session, number)
    _check_picker(session, picker, assignment)
    busy = session.scalar(
        select(Assignment.id).where(
            Assignment.picker == picker,
            Assignment.status == AssignmentStatus.in_progress,
            Assignment.id != number,
        )
    )
    if busy is not None:
        raise Conflict(f"{picker} is picking assignment {busy}", code="picker_busy")
    changed = session.execute(
        update(Assignment)
        .where(Assignment.id == number, Assignment.status != AssignmentStatus.completed)
        .values(picker=picker),
        execution_options={"synchronize_session": False},
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"assignment {number} is completed", code="assignment_completed")
    session.refresh(assignment)
    return assignment


def _assignment(session: Session, number: int) -> Assignment:
    assignment = session.get(Assignment, number)
    if assignment is None:
        raise NotFound(f"no assignment {number}", code="assignment_not_found")
    if assignment.status == AssignmentStatus.completed:
        raise Conflict(f"assignment {number} is completed", code="assignment_completed")
    return assignment


def _check_picker(session: Session, picker: str, assignment: Assignment) -> None:
    user = session.scalar(select(User).where(User.username == picker))
    if user is None or not user.active or user.role != Role.picker:
        raise Invalid(f"{picker} is not an active picker", code="not_a_picker")
    if assignment.warehouse_id not in {w.id for w in user.warehouses}:
        raise Invalid(
            f"{picker} does not work in warehouse {assignment.warehouse.code}",
            code="picker_not_member",
        )
