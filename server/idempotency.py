"""`Idempotency-Key` for every mutation: the first answer is kept and replayed on retries.

A key belongs to the user who sent it. The same key with the same request replays the
stored answer (header `Idempotent-Replayed: true`) and changes nothing; the same key with
another request is refused (422). A key is claimed before the request runs, so two
concurrent retries cannot both apply it; an answer of 5xx releases the claim so the client
may try again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import suppress

import anyio.to_thread
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.problems import problem_response
from server.security import bearer_username
from server.tables import IdempotencyRecord

MUTATIONS = {"POST", "PUT", "PATCH", "DELETE"}
MAX_KEY_LENGTH = 200
MAX_BODY = 4 * 1024 * 1024
KEPT_HEADERS = {"content-type", "location"}


class IdempotencyMiddleware:
    def __init__(
        self, app: ASGIApp, *, sessions: sessionmaker[Session], signing_key: Callable[[], str]
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.signing_key = signing_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATIONS:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        principal = bearer_username(headers.get("authorization", ""), key=self.signing_key())
        if key is None or principal is None:  # unauthenticated requests fail in the route
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
        claim = await anyio.to_thread.run_sync(self._claim, principal, key, scope, fingerprint)
        if claim is not None:
            return await claim(scope, receive, send)

        status, response_headers, chunks = await _run(self.app, scope, body)
        payload = b"".join(chunks)
        if status >= 500:
            await anyio.to_thread.run_sync(self._release, principal, key)
        else:
            kept = {k: v for k, v in response_headers if k in KEPT_HEADERS}
            await anyio.to_thread.run_sync(self._complete, principal, key, status, kept, payload)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in response_headers],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _claim(self, principal: str, key: str, scope: Scope, fingerprint: str) -> Response | None:
        """None when this request now owns the key; otherwise the response to send."""
        with self.sessions() as session:
            try:
                with session.begin():
                    session.add(
                        IdempotencyRecord(
                            principal=principal,
                            key=key,
                            method=scope["method"],
                            path=scope["path"],
                            request_hash=fingerprint,
                        )
                    )
                return None
            except IntegrityError:
                pass
            with session.begin():
                record = session.scalar(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                    )
                )
        if record is None:  # released between our insert and read: let the client retry
            return problem_response(409, "idempotency_in_progress", "retry this request")
        if record.request_hash != fingerprint:
            return problem_response(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
        if not record.completed:
            return problem_response(
                409, "idempotency_in_progress", "a request with this key is still running"
            )
        headers = dict(record.response_headers or {})
        headers["idempotent-replayed"] = "true"
        return Response(
            content=record.response_body or "",
            status_code=record.response_status or 200,
            headers=headers,
        )

    def _complete(
        self, principal: str, key: str, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        with self.sessions() as session, session.begin():
            record = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )
            if record is not None:
                record.completed = True
                record.response_status = status
                record.response_headers = headers
                record.response_body = body.decode("utf-8", errors="replace")

    def _release(self, principal: str, key: str) -> None:
        with self.sessions() as session, session.begin():
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
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
