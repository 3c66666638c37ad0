"""ICE configuration: STUN and TURN servers, and short-lived TURN credentials.

TURN credentials follow the TURN REST API scheme that coturn implements with
`use-auth-secret` / `static-auth-secret`: the username is `<unix expiry>:<user>` and the
password is base64(HMAC-SHA1(secret, username)). The TURN server shares only the secret,
checks the signature and refuses a username whose expiry has passed, so nothing per user
is stored on it and a leaked credential stops working by itself.

Browsers use every URL they are given; aiortc (the server's own peer connections) uses the
first `stun:` and the first `turn:`/`turns:` URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # settings read this module: loading aiortc waits for a peer connection
    from aiortc import RTCConfiguration

STUN_URL = re.compile(r"stuns?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?")
TURN_URL = re.compile(
    r"turns?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?(\?transport=(udp|tcp))?"
)
DEFAULT_TURN_TTL = dt.timedelta(hours=8)  # a shift; never past the sign-in it is for


class IceConfigError(ValueError):
    """An ICE server URL or the TURN settings are not usable."""


def check_url(url: str) -> str:
    """`url` when it is a STUN (`stun:host[:port]`) or TURN
    (`turn:host[:port][?transport=udp|tcp]`, `turns:`) URL, else IceConfigError."""
    if not (STUN_URL.fullmatch(url) or TURN_URL.fullmatch(url)):
        raise IceConfigError(
            f"not a STUN or TURN URL: {url!r} (stun:host[:port], "
            "turn:host[:port][?transport=udp|tcp], turns:host[:port])"
        )
    return url


@dataclass(frozen=True)
class TurnCredentials:
    username: str
    credential: str
    expires_at: dt.datetime


def turn_credentials(secret: str, user: str, expires_at: dt.datetime) -> TurnCredentials:
    """Credentials for `user` that a TURN server sharing `secret` accepts until
    `expires_at` (the coturn REST API scheme)."""
    if ":" in user:
        raise IceConfigError(f"a TURN user may not contain ':': {user!r}")
    username = f"{int(expires_at.timestamp())}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"), expires_at)


@dataclass(frozen=True)
class IceServer:
    """One entry of a peer connection's `iceServers`."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The shape of a browser's `RTCIceServer` dictionary."""
        entry: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            entry["username"] = self.username
            entry["credential"] = self.credential
        return entry


@dataclass(frozen=True)
class IceConfig:
    """Where peers find each other: STUN URLs, TURN URLs with the secret shared with the
    TURN server, and how long the credentials handed out last. `relay_only` makes the
    server's own peer connections use relayed candidates only."""

    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl: dt.timedelta = DEFAULT_TURN_TTL
    relay_only: bool = False

    def __post_init__(self) -> None:
        for url in (*self.stun_urls, *self.turn_urls):
            check_url(url)
        if any(not u.startswith("stun") for u in self.stun_urls):
            raise IceConfigError("stun_urls holds STUN URLs only")
        if any(not u.startswith("turn") for u in self.turn_urls):
            raise IceConfigError("turn_urls holds TURN URLs only")
        if self.turn_urls and not self.turn_secret:
            raise IceConfigError("TURN URLs need the TURN server's shared secret")
        if self.relay_only and not self.turn_urls:
            raise IceConfigError("relay-only peer connections need a TURN URL")
        if self.turn_ttl <= dt.timedelta(0):
            raise IceConfigError("the TURN credential lifetime must be positive")

    def servers(
        self, user: str, *, now: dt.datetime, not_after: dt.datetime | None = None
    ) -> list[IceServer]:
        """The ICE servers for `user`, with TURN credentials valid from `now` for the
        configured lifetime, but never past `not_after` (the user's sign-in)."""
        servers: list[IceServer] = []
        if self.stun_urls:
            servers.append(IceServer(self.stun_urls))
        if self.turn_urls and self.turn_secret:
            expires_at = now + self.turn_ttl
            if not_after is not None:
                expires_at = min(expires_at, not_after)
            credentials = turn_credentials(self.turn_secret, user, expires_at)
            servers.append(IceServer(self.turn_urls, credentials.username, credentials.credential))
        return servers

    def rtc_configuration(self, user: str, *, now: dt.datetime) -> RTCConfiguration:
        """The configuration of one of the server's own peer connections."""
        from aiortc import RTCConfiguration, RTCIceServer
        from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy

        return RTCConfiguration(
            iceServers=[
                RTCIceServer(list(s.urls), s.username, s.credential)
                for s in self.servers(user, now=now)
            ],
            iceTransportPolicy=(
                RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
            ),
            # one transport for every track: the forwarded tracks come and go
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )
