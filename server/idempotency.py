"""`Idempotency-Key` for every mutation: the first answer is kept and replayed on retries.

A key belongs to the user who sent it. The same key with the same request replays the
stored answer (header `Idempotent-Replayed: true`) and changes nothing; the same key with
another request is refused (422).

A key is claimed (a row) before the request runs, so two concurrent retries cannot both
apply it. The outcome is then written by the request's own write transaction
(`record_outcome`, the `Database` hook): the stock moves and the key's answer commit
together or not at all. After the response the exact answer (status, body, `Location`)
replaces that record; when that last write fails the client still gets the real answer.
So a retry never meets a key whose work was done but whose answer is unknown:

- work committed: the retry replays its answer (as recorded with the work, or the exact
  one when it was stored after);
- work not committed and the claim still fresh: 409 `idempotency_in_progress`;
- a claim left by a crash (older than `WAVEPICK_IDEMPOTENCY_CLAIM_SECONDS`, nothing
  committed): the retry takes it over and runs the request. The claim's row id fences the
  old owner: its outcome can no longer be recorded, so it cannot apply as well.

An answer of 5xx releases an uncommitted claim so the client may try again; when the work
had committed (a failure after it), the recorded outcome is answered instead of the 5xx.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.db import Database
from server.problems import Conflict, problem_response
from server.security import bearer_username
from server.tables import IdempotencyRecord, utcnow

log = logging.getLogger(__name__)

MUTATIONS = {"POST", "PUT", "PATCH", "DELETE"}
MAX_KEY_LENGTH = 200
MAX_BODY = 4 * 1024 * 1024
KEPT_HEADERS = {"content-type", "location"}
COMPLETION_ATTEMPTS = 3


@dataclass
class Claim:
    """The key this request owns: its row (the fence), and the request's scope, where
    routing leaves the route (and so the status a success answers)."""

    record_id: int
    scope: Scope

    @property
    def success_status(self) -> int:
        return getattr(self.scope.get("route"), "status_code", None) or 200

    def answer_body(self, result: Any) -> str | None:
        """The work's result as the route answers it: through its response model (so an
        ORM row gives the model's fields only, never, say, a password hash), or a pydantic
        model as it is; None for anything else."""
        model = getattr(self.scope.get("route"), "response_model", None)
        if model is not None:
            adapter = _adapter(model)
            value = adapter.validate_python(result, from_attributes=True)
            return adapter.dump_json(value).decode()
        if isinstance(result, BaseModel):
            return result.model_dump_json()
        return None


_claim: ContextVar[Claim | None] = ContextVar("idempotency_claim", default=None)


class ClaimLost(Conflict):
    code = "idempotency_claim_lost"


def record_outcome(session: Session, result: Any) -> None:
    """Record the answer of the request's work in its own write transaction (the
    `Database` hook). Refuses, rolling the work back, when the claim was taken over."""
    claim = _claim.get()
    if claim is None:
        return
    values: dict[str, Any] = {"completed": True, "response_status": claim.success_status}
    try:
        body = claim.answer_body(result) if result is not None else None
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        log.warning(
            "the answer of idempotency claim %s is kept after the request only", claim.record_id
        )
        body = None
    if body is not None:
        values["response_body"] = body
        values["response_headers"] = {"content-type": "application/json"}
    updated = session.execute(
        update(IdempotencyRecord).where(IdempotencyRecord.id == claim.record_id).values(**values)
    )
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        raise ClaimLost("this Idempotency-Key was taken over by a retry; nothing was applied")


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        db: Database,
        signing_key: Callable[[], str],
        claim_timeout: dt.timedelta,
        passes_on: Callable[[str], bool] = lambda path: False,
    ) -> None:
        """`passes_on(path)`: requests another process carries out (and keeps the key
        of), which go through here untouched."""
        self.app = app
        self.db = db
        self.signing_key = signing_key
        self.claim_timeout = claim_timeout
        self.passes_on = passes_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATIONS:
            return await self.app(scope, receive, send)
        if self.passes_on(scope["path"]):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        if key is None:
            return await self.app(scope, receive, send)
        principal = bearer_username(headers.get("authorization", ""), key=self.signing_key())
        if principal is None:  # unauthenticated requests fail in the route
            return await self.app(scope, receive, send)
        if not key or len(key) > MAX_KEY_LENGTH:
            response = problem_response(
                400,
                "invalid_idempotency_key",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
            )
            return await response(scope, receive, send)

        body = await _read_body(receive)
        if body is None:
            response = problem_response(413, "payload_too_large", f"at most {MAX_BODY} bytes")
            return await response(scope, receive, send)
        fingerprint = _fingerprint(scope, body)
        claimed = await anyio.to_thread.run_sync(self._claim, principal, key, scope, fingerprint)
        if isinstance(claimed, Response):
            return await claimed(scope, receive, send)

        claim = Claim(record_id=claimed, scope=scope)
        token = _claim.set(claim)
        try:
            status, response_headers, chunks = await _run(self.app, scope, body)
        finally:
            _claim.reset(token)
        payload = b"".join(chunks)
        if status >= 500:
            recorded = await anyio.to_thread.run_sync(self._release, claim)
            if recorded is not None:  # the work committed before the failure: its answer
                return await recorded(scope, receive, send)
        else:
            kept = {k: v for k, v in response_headers if k in KEPT_HEADERS}
            await anyio.to_thread.run_sync(self._complete, claim, status, kept, payload)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in response_headers],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _claim(self, principal: str, key: str, scope: Scope, fingerprint: str) -> int | Response:
        """The id of the claim this request now owns, or the response to send instead."""
        for _ in range(3):
            with suppress(IntegrityError), self.db.write_transaction() as session:
                record = IdempotencyRecord(
                    principal=principal,
                    key=key,
                    method=scope["method"],
                    path=scope["path"],
                    request_hash=fingerprint,
                    created_at=utcnow(),
                )
                session.add(record)
                session.flush()
                return record.id
            with self.db.write_transaction() as session:
                found = session.scalar(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                    )
                )
                if found is None:  # released meanwhile: claim it again
                    continue
                if found.request_hash != fingerprint:
                    return problem_response(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for a different request",
                    )
                if found.completed:
                    return _replay(found)
                if utcnow() - found.created_at < self.claim_timeout:
                    return problem_response(
                        409,
                        "idempotency_in_progress",
                        "a request with this key is still running",
                        headers={"Retry-After": "1"},
                    )
                # a claim left by a crash, with nothing committed: take it over
                log.warning("idempotency claim %s expired; a retry takes it over", found.id)
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.id == found.id, IdempotencyRecord.completed.is_(False)
                    )
                )
        return problem_response(
            409, "idempotency_in_progress", "retry this request", headers={"Retry-After": "1"}
        )

    def _complete(self, claim: Claim, status: int, headers: dict[str, str], body: bytes) -> None:
        """Store the exact answer; the work's outcome is already recorded with it, so a
        failure here is logged and never turns a done request into an error."""
        for attempt in range(1, COMPLETION_ATTEMPTS + 1):
            try:
                with self.db.write_transaction() as session:
                    session.execute(
                        update(IdempotencyRecord)
                        .where(IdempotencyRecord.id == claim.record_id)
                        .values(
                            completed=True,
                            response_status=status,
                            response_headers=headers,
                            response_body=body.decode("utf-8", errors="replace"),
                        )
                    )
                return
            except OperationalError:
                log.warning("storing an idempotent answer failed (attempt %d)", attempt)
        log.error("the answer of idempotency claim %s was not stored", claim.record_id)

    def _release(self, claim: Claim) -> Response | None:
        """Free an uncommitted claim after a 5xx; when the work had committed, its answer."""
        with suppress(OperationalError), self.db.write_transaction() as session:
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == claim.record_id,
                    IdempotencyRecord.completed.is_(False),
                )
            )
            record = session.get(IdempotencyRecord, claim.record_id)
            return _replay(record, replayed=False) if record is not None else None
        return None  # left as it is, the claim expires


@lru_cache(maxsize=256)
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _replay(record: IdempotencyRecord, *, replayed: bool = True) -> Response:
    headers = dict(record.response_headers or {})
    if replayed:
        headers["idempotent-replayed"] = "true"
    return Response(
        content=record.response_body or "",
        status_code=record.response_status or 200,
        headers=headers,
    )


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode()):
        digest.update(part.encode() + b"\0")
    with suppress(ValueError, UnicodeDecodeError):  # same JSON, other spacing: same request
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest.update(body)
    return digest.hexdigest()


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when it is larger than MAX_BODY."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _run(
    app: ASGIApp, scope: Scope, body: bytes
) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    """Run the app on a buffered request and capture its whole response."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await anyio.sleep_forever()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 500
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, chunks
