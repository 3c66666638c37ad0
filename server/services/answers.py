"""Answers heard on the headsets, kept for the floor's recognition figures: one row per
answer the dialog judged, tied to the picker's assignment in progress and its warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from server.tables import Assignment, AssignmentStatus, HeardAnswer


@dataclass(frozen=True)
class AnswerJudged:
    """What the dialog made of one answer (the headset's view, without its audio)."""

    dialog_state: str
    source: str  # speech, text
    text: str
    confidence: float
    accepted: bool
    reprompts: int  # answers refused at this prompt before it


def record_answer(session: Session, picker: str, answer: AnswerJudged) -> None:
    """Keep `answer`, in the warehouse of the picker's assignment in progress (none when
    they have no work: signing on, signing off)."""
    record_answers(session, [(picker, answer)])


def record_answers(session: Session, answers: Sequence[tuple[str, AnswerJudged]]) -> None:
    """`record_answer` for each (picker, answer), in one read and one insert however many
    they are. Inserted through the table: answers are never changed, and the unit of work
    was half of what keeping them cost a busy server."""
    in_progress: dict[str | None, tuple[int, int]] = {}
    for picker, assignment, warehouse in session.execute(
        select(Assignment.picker, Assignment.id, Assignment.warehouse_id)
        .where(
            Assignment.picker.in_({picker for picker, _ in answers}),
            Assignment.status == AssignmentStatus.in_progress,
        )
        .order_by(Assignment.id)
    ):
        in_progress.setdefault(picker, (assignment, warehouse))
    rows = []
    for picker, answer in answers:
        work = in_progress.get(picker)
        rows.append(
            {
                "picker": picker,
                "warehouse_id": work[1] if work else None,
                "assignment_id": work[0] if work else None,
                "dialog_state": answer.dialog_state[:32],
                "source": answer.source,
                "text": answer.text[:200],
                "confidence": answer.confidence,
                "accepted": answer.accepted,
                "reprompts": answer.reprompts,
            }
        )
    session.connection().execute(insert(HeardAnswer), rows)
