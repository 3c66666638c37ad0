"""A picker's headset in the video call their exception opened: the server joins the room
as the picker (over in-process signaling, with its own peer connection), sends the
headset's microphone into it and mixes what the others say back to the headset.

The call is waited for in the background while the picker goes on working; it takes over
the headset's audio when someone else joins (`on_started`) and gives it back when they
have all left or the room is closed (`on_ended`). The picker's own shelf camera (the call
page framed by the headset page) is in the call with them, not someone to talk to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
from av import AudioFrame
from av.frame import Frame

from rtc.client import RoomClient
from rtc.hub import RoomHub
from rtc.loopback import LoopbackSignaling
from rtc.pcm import PcmMixer, PcmTrack
from rtc.recorder import RECORDER_ROLE
from rtc.room import Member

log = logging.getLogger(__name__)

WAIT_FOR_OTHERS_S = 30 * 60  # a call nobody joins is given up (the exception stays open)
CALL_LIMIT_S = 4 * 3600


class HeadsetCall:
    def __init__(
        self,
        hub: RoomHub,
        room_id: int,
        member: Member,
        sample_rate: int,
        *,
        on_started: Callable[[HeadsetCall], Awaitable[None]],
        on_ended: Callable[[HeadsetCall], Awaitable[None]],
        wait_for_others_s: float = WAIT_FOR_OTHERS_S,
    ) -> None:
        self.room_id = room_id
        self.member = member
        self.microphone = PcmTrack(sample_rate)
        self.mixer = PcmMixer(sample_rate)
        self.signaling = LoopbackSignaling(hub.room(str(room_id)), member)
        self.client = RoomClient(
            url="",
            display_name=member.display_name,
            tracks=[self.microphone],
            on_frame=self._heard,
            connection=self.signaling,
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
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

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
