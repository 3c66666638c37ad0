"""The socket registry re-checks every open socket in one call each interval, ends only
those whose users may no longer be there, and re-checks one socket alone when asked."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection

from server.sockets import REVOKED, Ending, Grant, SocketRegistry

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


class Socket:
    def __init__(self) -> None:
        self.ended: Ending | None = None
        self.closed = asyncio.Event()

    async def end(self, ending: Ending) -> None:
        self.ended = ending
        self.closed.set()


class Users:
    """Who may still be here, as the database would say: everyone not revoked."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.calls: list[set[str]] = []

    async def still_allowed(self, grants: Collection[Grant]) -> set[Grant]:
        self.calls.append({grant.username for grant in grants})
        return {grant for grant in grants if grant.username not in self.revoked}


async def serve(registry: SocketRegistry, name: str, socket: Socket) -> None:
    async with registry.hold("headset", Grant(name, 0, LATER), socket, exclusive=True):
        await socket.closed.wait()


def test_every_socket_is_re_checked_in_one_call_and_only_the_revoked_end() -> None:
    users = Users()

    async def main() -> dict[str, Ending | None]:
        registry = SocketRegistry(users.still_allowed, interval=0.2)
        sockets = {name: Socket() for name in ("ana", "bo", "cy")}
        served = [asyncio.create_task(serve(registry, n, s)) for n, s in sockets.items()]
        await asyncio.sleep(0.05)
        users.revoked.add("bo")
        await asyncio.wait_for(sockets["bo"].closed.wait(), 2)
        await asyncio.sleep(0.3)  # another sweep: the others stay
        ended = {name: socket.ended for name, socket in sockets.items()}
        await registry.close_all()
        await asyncio.gather(*served)
        return ended

    ended = asyncio.run(main())
    assert ended == {"ana": None, "bo": REVOKED, "cy": None}
    assert users.calls[0] == {"ana", "bo", "cy"}
    assert users.calls[1] == {"ana", "cy"}


def test_a_recheck_asks_for_that_user_alone_at_once() -> None:
    users = Users()

    async def main() -> Ending | None:
        registry = SocketRegistry(users.still_allowed, interval=60)
        ana, bo = Socket(), Socket()
        served = [
            asyncio.create_task(serve(registry, "ana", ana)),
            asyncio.create_task(serve(registry, "bo", bo)),
        ]
        await asyncio.sleep(0.05)
        users.revoked.add("ana")
        registry.recheck("ana")
        await asyncio.wait_for(ana.closed.wait(), 2)
        await registry.close_all()
        await asyncio.gather(*served)
        return ana.ended

    assert asyncio.run(main()) == REVOKED
    assert users.calls == [{"ana"}]
