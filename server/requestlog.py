"""Structured logs: JSON lines, and one access line per request with its request id, user,
status and duration. No secret reaches a log line: tokens, tickets, passwords and
`Authorization` values are replaced by `[redacted]`, in our lines and in uvicorn's (whose
lines carry the request's URL with its query)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.security import bearer_username

access_log = logging.getLogger("wavepick.access")

REDACTED = "[redacted]"
_SECRETS = (
    # key=value in a query string or form: ?token=…, &ticket=…, password=…
    re.compile(
        r"(?i)\b((?:access_|refresh_|id_)?token|ticket|password|passwd|secret|api_key)=[^&\s\"'#]+"
    ),
    # an Authorization header or field, with or without its scheme
    re.compile(
        r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic)\s+)?[^\s\"',]+"
    ),
    # a JSON field: "password": "…"
    re.compile(
        r"(?i)(\"(?:(?:access_|refresh_)?token|ticket|password|passwd|secret)\"\s*:\s*\")[^\"]*"
    ),
    # a bare JWT anywhere
    re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+"),
)


def scrub(text: str) -> str:
    """`text` with every secret it carries replaced by `[redacted]`."""
    text = _SECRETS[0].sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _SECRETS[1].sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _SECRETS[2].sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _SECRETS[3].sub(REDACTED, text)


class SecretFilter(logging.Filter):
    """Scrubs a record's message and arguments before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: scrub(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "wavepick.access")


def scrub_server_logs() -> None:
    """Put a `SecretFilter` on the server's own loggers (once), however logging is set up:
    `wavepick serve` or `uvicorn server.app:create_app` with uvicorn's log config."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretFilter) for f in logger.filters):
            logger.addFilter(SecretFilter())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


class RequestLogMiddleware:
    """Gives every request an id (`X-Request-ID`, kept when the client sends one) and logs
    one line when it ends."""

    def __init__(self, app: ASGIApp, *, signing_key: Callable[[], str]) -> None:
        self.app = app
        self.signing_key = signing_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            # a socket's frames (a headset's prompt audio) go straight out: only an HTTP
            # response has a status and headers to add
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            if access_log.isEnabledFor(logging.INFO):  # the line's fields cost CPU too
                access_log.info(
                    "%s %s %s",
                    scope.get("method", "WS"),
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "method": scope.get("method", "WEBSOCKET"),
                            "path": scope["path"],
                            "user": bearer_username(
                                headers.get("authorization", ""), key=self.signing_key()
                            ),
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        }
                    },
                )
