"""A room: the participants of one call, each with one peer connection to the server,
which forwards every participant's tracks to every other participant.

The room knows nothing of sockets: each participant comes with a `Sink` that delivers the
room's frames to its client (and ends its connection when the room gives it up).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc.contrib.media import MediaRelay

from rtc import Forwarding
from rtc.forwarding import Source
from rtc.ice import IceConfig
from rtc.peer import Peer, Timeouts
from rtc.tasks import spawn

log = logging.getLogger(__name__)

KINDS = ("audio", "video")


class Sink(Protocol):
    """How the room reaches one participant's client."""

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame for the client (never waits)."""
        ...

    async def removed(self, code: str, message: str) -> None:
        """The room gave the participant up (its media vanished, the room closed): tell
        the client why and end its connection."""
        ...


class RoomError(Exception):
    """A join the room refuses (`code` for the client's error frame)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RoomConfig:
    ice: IceConfig = field(default_factory=IceConfig)
    forwarding: Forwarding = Forwarding.encoded
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_participants: int = 16
    server_turn_user: str = "wavepick"  # the TURN user of the server's own peer connections


@dataclass(frozen=True)
class Member:
    """Who joins: the user, the name shown to the others, and their role."""

    user: str
    display_name: str
    role: str


@dataclass(eq=False)
class Participant:
    id: str
    member: Member
    peer: Peer
    sink: Sink
    joined_at: dt.datetime
    muted: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(KINDS, False))

    def describe(self) -> dict[str, Any]:
        """The participant as the others see it. The tracks the server forwards of it are
        in a MediaStream whose id is `id`."""
        return {
            "id": self.id,
            "user": self.member.user,
            "display_name": self.member.display_name,
            "role": self.member.role,
            "joined_at": self.joined_at.isoformat(),
            "muted": dict(self.muted),
        }


class Room:
    """One call's live media on this process: its participants and their peers. The
    room's record (who opened it, for which exception) is kept by the server."""

    def __init__(
        self,
        key: str,
        config: RoomConfig = RoomConfig(),
        *,
        on_empty: Callable[[Room], None] | None = None,
    ) -> None:
        self.key = key
        self.config = config
        self.participants: dict[str, Participant] = {}
        self.closed = False
        self._on_empty = on_empty
        self._relay = MediaRelay()

    def __repr__(self) -> str:
        return f"Room({self.key}, {len(self.participants)} participants)"

    def join(self, member: Member, sink: Sink) -> Participant:
        """Add a participant: the others are told, and everything live is forwarded to it
        once it is negotiated."""
        if self.closed:
            raise RoomError("room_closed", "this room is closed")
        if len(self.participants) >= self.config.max_participants:
            raise RoomError("room_full", f"this room holds at most {self.config.max_participants}")
        participant_id = f"p-{secrets.token_hex(6)}"
        now = dt.datetime.now(dt.UTC)
        peer = Peer(
            participant_id,
            self.config.ice.rtc_configuration(self.config.server_turn_user, now=now),
            signal=_signal_through(sink),
            events=self,
            forwarding=self.config.forwarding,
            relay=self._relay,
            timeouts=self.config.timeouts,
        )
        participant = Participant(participant_id, member, peer, sink, now)
        for other in self.participants.values():
            other.sink.send({"type": "participant_joined", "participant": participant.describe()})
        self.participants[participant_id] = participant
        for other in self.participants.values():
            for source in other.peer.sources.values():
                if other is not participant and source.live:
                    peer.subscribe(source)
        log.info("%s joined room %s as %s", member.user, self.key, participant_id)
        return participant

    def others(self, participant_id: str) -> list[dict[str, Any]]:
        return [p.describe() for p in self.participants.values() if p.id != participant_id]

    async def leave(self, participant_id: str) -> None:
        """Remove a participant (once): the others stop receiving it and are told."""
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            return
        for source in participant.peer.sources.values():
            source.withdraw()
        for other in self.participants.values():
            other.sink.send({"type": "participant_left", "participant": participant.describe()})
        await participant.peer.close()
        log.info("%s left room %s", participant.member.user, self.key)
        if not self.participants and self._on_empty is not None:
            self._on_empty(self)

    def mute(self, participant_id: str, kind: str, muted: bool) -> None:
        """Stop (or start again) forwarding one kind of a participant's media."""
        participant = self.participants.get(participant_id)
        if participant is not None:
            participant.muted[kind] = muted
            participant.peer.set_muted(kind, muted)

    async def close(self, code: str = "room_closed", message: str = "this room is closed") -> None:
        """End the call for everyone in it."""
        self.closed = True
        for participant in list(self.participants.values()):
            await participant.sink.removed(code, message)
            await self.leave(participant.id)

    # ---- PeerEvents ----

    def source_live(self, peer: Peer, source: Source) -> None:
        for other in self.participants.values():
            if other.peer is not peer:
                other.peer.subscribe(source)

    def source_gone(self, peer: Peer, source: Source) -> None:
        for other in self.participants.values():
            other.peer.unsubscribe(source)

    def peer_failed(self, peer: Peer, code: str, message: str) -> None:
        participant = self.participants.get(peer.owner)
        if participant is not None:
            spawn(self._give_up(participant, code, message), f"give-up-{participant.id}")

    async def _give_up(self, participant: Participant, code: str, message: str) -> None:
        await participant.sink.removed(code, message)
        await self.leave(participant.id)


def _signal_through(sink: Sink) -> Callable[[dict[str, Any]], Any]:
    async def signal(frame: dict[str, Any]) -> None:
        sink.send(frame)

    return signal
