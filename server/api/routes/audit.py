import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from server import schemas
from server.api.pagination import PageParams
from server.deps import Admin, DatabaseDep
from server.services import audit

router = APIRouter(prefix="/audit", tags=["audit"])

Filter = Annotated[str | None, Query(max_length=200)]
Time = Annotated[dt.datetime | None, Query(description="UTC when no offset is given.")]


@router.get("", response_model=schemas.Page[schemas.AuditEventOut])
async def list_audit_events(
    _: Admin,
    db: DatabaseDep,
    page: PageParams,
    actor: Filter = None,
    action: Annotated[
        str | None,
        Query(
            max_length=64, description="An action (`user.role`), or all under a prefix (`user.`)."
        ),
    ] = None,
    subject: Filter = None,
    since: Time = None,
    until: Time = None,
) -> schemas.Page[schemas.AuditEventOut]:
    """The audit trail, newest first: user administration, allocation-policy and
    shipping-rate changes with old and new values, failed logins. `since` is inclusive,
    `until` exclusive."""
    found, total = await db.read(
        audit.list_events,
        actor=actor,
        action=action,
        subject=subject,
        since=_utc(since),
        until=_utc(until),
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([schemas.AuditEventOut.model_validate(event) for event in found], total)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)
