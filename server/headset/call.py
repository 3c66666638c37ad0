"""A picker's headset in the video call their exception opened: the server joins the room
as the picker (over in-process signaling, with its own peer connection), sends the
headset's microphone into it and mixes what the others say back to the headset.

The call is waited for in the background while the picker goes on working; it takes over
the headset's audio when someone else joins (`on_started`) and gives it back when they
have all left or the room is closed (`on_ended`). The picker's own shelf camera (the call
page framed by the headset page) is in the call with them, not someone to talk to.

Where the call is depends on where rooms are hosted: in this process (`HereCalls`, over
in-process signaling), or in the process `WAVEPICK_ROOMS_URL` names (`ForwardedCalls`,
over its `/ws/rooms` as any client, with a token of the picker's).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from av import AudioFrame
from av.frame import Frame

from rtc.client import RoomClient
from rtc.hub import RoomHub
from rtc.loopback import LoopbackSignaling
from rtc.pcm import PcmMixer, PcmTrack
from rtc.recorder import RECORDER_ROLE
from rtc.room import Member
from rtc.tasks import stopped
from server.config import Settings
from server.security import issue_token
from server.services.rooms import call_member
from server.sockets import Grant
from server.tables import User

log = logging.getLogger(__name__)

WAIT_FOR_OTHERS_S = 30 * 60  # a call nobody joins is given up (the exception stays open)
CALL_LIMIT_S = 4 * 3600


class CallJoiner(Protocol):
    """How a picker's headset joins the calls of its rooms."""

    @property
    def member(self) -> Member:
        """Who the headset is in its calls."""
        ...

    def client(self, room_id: int, **options: Any) -> RoomClient:
        """A client of room `room_id` as `member`, not yet joined."""
        ...


@dataclass(frozen=True)
class HereCalls:
    """Calls hosted by this process: joined over in-process signaling."""

    hub: RoomHub
    member: Member

    def client(self, room_id: int, **options: Any) -> RoomClient:
        signaling = LoopbackSignaling(self.hub.room(str(room_id)), self.member)
        return RoomClient(
            url="", display_name=self.member.display_name, connection=signaling, **options
        )


@dataclass(frozen=True)
class ForwardedCalls:
    """Calls hosted by another process: joined over its `/ws/rooms` (`url`: ws://host:port)
    with the picker's `bearer` token, as a browser would."""

    url: str
    member: Member
    bearer: str

    def client(self, room_id: int, **options: Any) -> RoomClient:
        return RoomClient(
            url=f"{self.url}/ws/rooms/{room_id}",
            headers={"Authorization": f"Bearer {self.bearer}"},
            display_name=self.member.display_name,
            **options,
        )


class HeadsetCall:
    def __init__(
        self,
        calls: CallJoiner,
        room_id: int,
        sample_rate: int,
        *,
        on_started: Callable[[HeadsetCall], Awaitable[None]],
        on_ended: Callable[[HeadsetCall], Awaitable[None]],
        wait_for_others_s: float = WAIT_FOR_OTHERS_S,
    ) -> None:
        self.room_id = room_id
        self.member = calls.member
        self.microphone = PcmTrack(sample_rate)
        self.mixer = PcmMixer(sample_rate)
        self.client = calls.client(
            room_id, tracks=[self.microphone], on_frame=self._heard, decode=("audio",)
        )
        self.on_started = on_started
        self.on_ended = on_ended
        self.wait_for_others_s = wait_for_others_s
        self.started = False
        self._task = asyncio.create_task(self._run(), name=f"headset-call-{room_id}")

    def push(self, pcm: np.ndarray) -> None:
        """The headset's microphone, while the call has its audio."""
        self.microphone.push(pcm)

    def chunks(self) -> AsyncIterator[bytes]:
        """What the others say, mixed, at the headset's rate."""
        return self.mixer.chunks()

    def when_over(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the headset is out of the room, however that came about."""
        self._task.add_done_callback(lambda _: callback())

    async def hang_up(self) -> None:
        """Leave the call (the headset went away)."""
        await stopped(self._task)

    async def _run(self) -> None:
        client = self.client
        hung_up = False
        try:
            await client.join()
            await client.until(
                lambda: self._anyone_else() or client.close_code is not None,
                self.wait_for_others_s,
            )
            if client.close_code is not None:
                return
            self.started = True
            await self.on_started(self)
            await client.until(
                lambda: not self._anyone_else() or client.close_code is not None, CALL_LIMIT_S
            )
        except asyncio.CancelledError:
            hung_up = True
            raise
        except TimeoutError:
            log.info("call %s: nobody came, or it went on too long", self.room_id)
        except Exception:
            log.exception("call %s: the headset could not stay in the call", self.room_id)
        finally:
            self.mixer.close()
            self.microphone.stop()
            with contextlib.suppress(Exception):
                await client.close()
            if self.started and not hung_up:
                with contextlib.suppress(Exception):
                    await self.on_ended(self)

    def _anyone_else(self) -> bool:
        """Whether a person is in the call with the picker (neither a recorder nor the
        picker's own shelf camera is one)."""
        return any(
            p.get("role") != RECORDER_ROLE and p.get("user") != self.member.user
            for p in self.client.participants.values()
        )

    def _heard(self, participant: str, kind: str, frame: Frame) -> None:
        if kind == "audio" and isinstance(frame, AudioFrame):
            self.mixer.add(participant, frame)


def call_joiner(settings: Settings, rooms: RoomHub, user: User, grant: Grant) -> CallJoiner:
    """How this user's headset joins a call: in this process's rooms, or over the socket
    of the process that hosts them, with a token that ends when the headset's grant does."""
    member = call_member(user)
    if settings.rooms_socket_url is None:
        return HereCalls(rooms, member)
    bearer = issue_token(
        user.username,
        user.role,
        key=settings.signing_key,
        ttl=grant.expires_at - dt.datetime.now(dt.UTC),
        version=grant.token_version,
    )
    return ForwardedCalls(settings.rooms_socket_url, member, bearer)
