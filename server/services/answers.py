"""Answers heard on the headsets, kept for the floor's recognition figures: one row per
answer the dialog judged, tied to the picker's assignment in progress and its warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Session

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


def _in_progress(column: InstrumentedAttribute[Any]) -> ScalarSelect[Any]:
    """`column` of the answering picker's assignment in progress (their first, should they
    somehow have two), or NULL."""
    return (
        select(column)
        .where(
            Assignment.picker == bindparam("b_picker"),
            Assignment.status == AssignmentStatus.in_progress,
        )
        .order_by(Assignment.id)
        .limit(1)
        .scalar_subquery()
    )


# Each answer's assignment and warehouse are looked up by the database as it inserts.
_KEEP = insert(HeardAnswer).values(
    picker=bindparam("b_picker"),
    assignment_id=_in_progress(Assignment.id),
    warehouse_id=_in_progress(Assignment.warehouse_id),
)


def record_answers(session: Session, answers: Sequence[tuple[str, AnswerJudged]]) -> None:
    """`record_answer` for each (picker, answer), in one statement however many they are.
    Inserted through the table: answers are never changed, and the unit of work was half
    of what keeping them cost a busy server."""
    rows = [
        {
            "b_picker": picker,
            "dialog_state": answer.dialog_state[:32],
            "source": answer.source,
            "text": answer.text[:200],
            "confidence": answer.confidence,
            "accepted": answer.accepted,
            "reprompts": answer.reprompts,
        }
        for picker, answer in answers
    ]
    session.connection().execute(_KEEP, rows)
