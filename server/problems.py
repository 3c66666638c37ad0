"""Errors as RFC 9457 problem details (`application/problem+json`) with a stable `code`.

Services raise `Problem` subclasses that name the domain failure; the handlers here turn
them, and FastAPI's own errors, into problem documents.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ProblemDocument(BaseModel):
    """The body of every error response."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class Problem(Exception):
    """A failure the client can act on. Subclasses fix the status and code; `errors` lists
    what was wrong where (rows of a file, say), `headers` go with the answer."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers
        if code:
            self.code = code
        if status:
            self.status = status


class NotFound(Problem):
    status, code = 404, "not_found"


class Conflict(Problem):
    status, code = 409, "conflict"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class Invalid(Problem):
    status, code = 422, "invalid"


class Unauthorized(Problem):
    status, code = 401, "unauthorized"


class Forbidden(Problem):
    status, code = 403, "forbidden"


class TooManyRequests(Problem):
    """Throttled: try again after `retry_after` seconds (sent as `Retry-After`)."""

    status, code = 429, "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None):
        super().__init__(detail, code=code, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


def problem_response(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    doc = ProblemDocument(
        type=f"urn:wavepick:problem:{code}",
        title=HTTPStatus(status).phrase,
        status=status,
        code=code,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return JSONResponse(
        doc.model_dump(exclude_none=True), status, headers=headers, media_type=PROBLEM_JSON
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {**(exc.headers or {})}
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return problem_response(
            exc.status,
            exc.code,
            exc.detail,
            instance=request.url.path,
            errors=exc.errors,
            headers=headers or None,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return problem_response(
            exc.status_code,
            code,
            str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return problem_response(
            422, "invalid", "The request is not valid.", instance=request.url.path, errors=errors
        )

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # values the database cannot store (NUL characters, integers out of range)
        return problem_response(
            422, "invalid_value", "A value cannot be stored.", instance=request.url.path
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal_error", "Unexpected server error.")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for problem documents of these statuses."""
    return {
        status: {
            "model": ProblemDocument,
            "content": {PROBLEM_JSON: {}},
            "description": HTTPStatus(status).phrase,
        }
        for status in statuses
    }


PROBLEM_RESPONSES = problem_responses(400, 401, 403, 404, 409, 413, 422)
