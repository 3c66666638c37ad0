"""A headset's WebRTC audio: the server's side of one peer connection, offered by the
headset over its socket. The microphone arrives as an audio track (Opus at 48 kHz), is
resampled to the session rate and handed on as PCM; prompts leave on a `PromptTrack`.
State changes (connected, failed, closed) are reported so the session can move audio
between the track and the socket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler

from rtc.tasks import stopped
from server.headset.prompt_track import PromptTrack

log = logging.getLogger(__name__)

# what aiortc raises for an offer it cannot take (unparsable, no common codec, bad ICE)
_REFUSED_OFFER = (
    ValueError,
    KeyError,
    IndexError,
    InternalError,
    InvalidAccessError,
    InvalidStateError,
    OperationError,
)


class OfferRefused(Exception):
    """The headset's SDP offer cannot be answered; the message says why."""


class HeadsetPeer:
    def __init__(
        self,
        configuration: RTCConfiguration,
        sample_rate: int,
        *,
        hear: Callable[[np.ndarray], Awaitable[None]],
        on_state: Callable[[HeadsetPeer, str], Awaitable[None]],
    ) -> None:
        """`hear` takes the microphone as int16 at `sample_rate`; `on_state` is told of
        every connection state ("connecting", "connected", "failed", "closed")."""
        self.sample_rate = sample_rate
        self.hear = hear
        self.on_state = on_state
        self.prompt_track = PromptTrack(sample_rate)
        self.sends_prompts = False  # the headset receives audio on its track
        self.pc = RTCPeerConnection(configuration)
        self._listening: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)

    @property
    def connected(self) -> bool:
        return self.pc.connectionState == "connected"

    async def answer(self, offer_sdp: str) -> str:
        """The SDP answer (with its ICE candidates) to the headset's offer, which must send
        audio (its microphone) and may receive it (then prompts go out on the track)."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            audio = next((t for t in self.pc.getTransceivers() if t.kind == "audio"), None)
            if audio is None:
                raise OfferRefused("the SDP offer has no audio")
            self.pc.addTrack(self.prompt_track)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except _REFUSED_OFFER as exc:
            reason = str(exc) or type(exc).__name__
            raise OfferRefused(f"the SDP offer cannot be used: {reason}") from exc
        if audio.currentDirection not in ("recvonly", "sendrecv"):
            raise OfferRefused("the SDP offer must send audio (the microphone)")
        self.sends_prompts = audio.currentDirection == "sendrecv"
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        self.prompt_track.stop()
        listening = self._listening
        if listening is not None and listening is not asyncio.current_task():
            await stopped(listening)
        await self.pc.close()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._listening is None:
            self._listening = asyncio.create_task(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        """Decoded microphone frames, as the session's PCM, until the track ends. If they
        cannot be handled, the peer connection is given up for the socket."""
        resampler = AudioResampler(format="s16", layout="mono", rate=self.sample_rate)
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                assert isinstance(frame, AudioFrame)
                for part in resampler.resample(frame):
                    await self.hear(part.to_ndarray().reshape(-1))
        except Exception:
            log.exception("headset microphone on WebRTC failed")
            await self.on_state(self, "failed")

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        log.debug("headset peer connection %s", state)
        await self.on_state(self, state)
