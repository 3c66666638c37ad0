"""The audit trail: who changed users, the allocation policy and shipping rates (values
before and after), and who tried to sign in and failed, when and from which address.

Events are written in the same transaction as the change they describe, and the database
refuses to change or delete them afterwards. Secrets never enter them: a password reset is
recorded as that, without the password.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.tables import AuditEvent, User

USER_FIELDS = ("role", "active", "full_name", "locale", "timezone")


def record(
    session: Session,
    action: str,
    *,
    actor: str | None,
    client: str | None,
    subject: str | None = None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        actor=actor,
        client=_clip(client, 64),
        subject=_clip(subject, 200),
        old=old,
        new=new,
    )
    session.add(event)
    session.flush()
    return event


def failed_login(session: Session, name_tried: str, client: str | None) -> AuditEvent:
    """A sign-in refused: the name tried (whether or not such a user exists) and where
    from. For the login route to call, in its own transaction, before it answers 401."""
    return record(session, "auth.login_failed", actor=None, client=client, subject=name_tried)


def user_snapshot(user: User) -> dict[str, Any]:
    """What an admin can change about a user, as recorded before and after a change."""
    values: dict[str, Any] = {name: getattr(user, name) for name in USER_FIELDS}
    values["role"] = str(user.role)
    values["warehouses"] = sorted(w.code for w in user.warehouses)
    return values


def user_snapshot_of(session: Session, username: str) -> dict[str, Any]:
    """The snapshot of the user named, or an empty one when there is none (yet)."""
    user = session.scalar(select(User).where(User.username == username))
    return {} if user is None else user_snapshot(user)


def user_created(session: Session, user: User, *, actor: str | None, client: str | None) -> None:
    record(
        session,
        "user.create",
        actor=actor,
        client=client,
        subject=user.username,
        new=user_snapshot(user),
    )


def user_changed(
    session: Session,
    username: str,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    password_reset: bool = False,
    actor: str | None,
    client: str | None,
) -> None:
    """One event per kind of change, so each can be looked for by its action:
    `user.role`, `user.disable`/`user.enable`, `user.warehouses`, `user.password_reset`
    and `user.update` (name, locale, time zone)."""
    changed = {name for name in after if after[name] != before.get(name)}
    groups = {
        "user.role": {"role"},
        "user.enable" if after.get("active") else "user.disable": {"active"},
        "user.warehouses": {"warehouses"},
        "user.update": {"full_name", "locale", "timezone"},
    }
    for action, names in groups.items():
        names = names & changed
        if names:
            record(
                session,
                action,
                actor=actor,
                client=client,
                subject=username,
                old={n: before.get(n) for n in sorted(names)},
                new={n: after[n] for n in sorted(names)},
            )
    if password_reset:
        record(session, "user.password_reset", actor=actor, client=client, subject=username)


def list_events(
    session: Session,
    *,
    actor: str | None,
    action: str | None,
    subject: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEvent], int]:
    """A page of the trail, newest first, and how many events match in all. An `action`
    ending in `.` matches every action under it (`user.`)."""
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        if action.endswith("."):
            query = query.where(AuditEvent.action.startswith(action, autoescape=True))
        else:
            query = query.where(AuditEvent.action == action)
    if subject:
        query = query.where(AuditEvent.subject == subject)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def _clip(text: str | None, size: int) -> str | None:
    # what a client typed may be long or hold NUL, which PostgreSQL refuses in text
    return None if text is None else text.replace("\x00", "\ufffd")[:size]
