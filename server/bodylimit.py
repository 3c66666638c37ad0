"""A cap on request bodies, applied while they stream in: before authentication, before
any parsing, whether the client declares a `Content-Length` or sends chunks.

A body declared larger than the cap is refused at once without reading a byte of it; an
undeclared (chunked) one is counted as it arrives and refused as soon as it passes the
cap. Uploads (`multipart/form-data`, the CSV import) have their own, larger cap: the
multipart parser spools them to disk, while a JSON body is held and parsed in memory.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.problems import problem_response


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the body passes the cap; the problem handlers and this
    middleware answer it with 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        upload = headers.get("content-type", "").startswith("multipart/form-data")
        limit = self.max_upload if upload else self.max_body
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _refuse(limit, scope, receive, send)

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(limit, scope, receive, send)


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(
        413,
        "payload_too_large",
        f"the request body is larger than {limit} bytes",
        instance=scope["path"],
        headers={"Connection": "close"},  # the rest of the body is not worth reading
    )
    await response(scope, receive, send)
