"""Answers heard on the headsets, kept for the floor's recognition figures: one row per
answer the dialog judged, tied to the picker's assignment in progress and its warehouse."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from server.services import picking
from server.tables import HeardAnswer


@dataclass(frozen=True)
class AnswerJudged:
    """What the dialog made of one answer (the headset's view, without its audio)."""

    dialog_state: str
    source: str  # speech, text
    text: str
    confidence: float
    accepted: bool
    reprompts: int  # answers refused at this prompt before it


def record_answer(session: Session, picker: str, answer: AnswerJudged) -> HeardAnswer:
    """Keep `answer`, in the warehouse of the picker's assignment in progress (none when
    they have no work: signing on, signing off)."""
    in_progress = picking.current_assignment(session, picker)
    row = HeardAnswer(
        picker=picker,
        warehouse_id=in_progress.warehouse_id if in_progress else None,
        assignment_id=in_progress.id if in_progress else None,
        dialog_state=answer.dialog_state[:32],
        source=answer.source,
        text=answer.text[:200],
        confidence=answer.confidence,
        accepted=answer.accepted,
        reprompts=answer.reprompts,
    )
    session.add(row)
    session.flush()
    return row
