"""Security headers on every HTTP answer, pages and API alike: a Content-Security-Policy
that lets pages load only from this server (never framed, but for the call page, which the
headset page frames for the shelf camera), `nosniff`, no referrer, and HSTS
when the request came over TLS (directly, or from a trusted reverse proxy that says so in
`X-Forwarded-Proto`). A response that sets its own policy (the ReDoc page) keeps it."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# blob: scripts: the headset page's audio worklet is built from a Blob; inline styles: the
# pages' own <style> elements. Sockets and fetches go to this server only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

FRAMED_BY_OWN_PAGES = frozenset({"/call.html"})
FRAMED_POLICY = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", "frame-ancestors 'self'")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts_seconds: int) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_seconds}; includeSubDomains" if hsts_seconds else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        over_tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                framed = scope["path"] in FRAMED_BY_OWN_PAGES
                policy = FRAMED_POLICY if framed else CONTENT_SECURITY_POLICY
                headers.setdefault("Content-Security-Policy", policy)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "SAMEORIGIN" if framed else "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if over_tls and self.hsts:
                    headers.setdefault("Strict-Transport-Security", self.hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)
