"""Headset protocol v1 frames (see DESIGN.md and docs/headset-protocol.md): parsing what a
headset sends, and building what the server answers from what the conversation tells it.
Bad input becomes a `FrameError` with a stable code, sent back as an `error` frame; the
session stays open unless the error is fatal to the protocol."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from server.headset.conversation import (
    Failed,
    HeadsetMessage,
    Heard,
    PromptEnded,
    PromptStarted,
    SignedOff,
)
from server.sockets import FORBIDDEN, GOING_AWAY, SESSION_REPLACED, UNAUTHORIZED

PROTOCOL_VERSION = 1
MAX_TEXT_FRAME = 16 * 1024
MAX_AUDIO_FRAME = 64 * 1024  # 2 s at 16 kHz; clients send 20–200 ms chunks
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
PROTOCOL_ERROR = 4400
# 4401 unauthorized (also when the user is disabled, changed or the token expires while
# connected), 4403 the role may not pick, 4409 taken over by a newer connection of the
# same operator, 1001 server shutdown: the close codes of every socket.
__all__ = ["FORBIDDEN", "GOING_AWAY", "SESSION_REPLACED", "UNAUTHORIZED"]


class FrameError(Exception):
    """A frame the server cannot take. `fatal` errors close the socket with 4400."""

    def __init__(self, code: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal


class AudioFormat(BaseModel):
    encoding: Literal["pcm_s16le"] = "pcm_s16le"
    sample_rate: int = 16000


class Hello(BaseModel):
    type: Literal["hello"]
    protocol: int
    device: str = Field("", max_length=128)
    locale: str = Field("en-US", max_length=16)
    audio: AudioFormat = AudioFormat()


class Say(BaseModel):
    type: Literal["say"]
    text: str = Field(max_length=200)


class Bye(BaseModel):
    type: Literal["bye"]


class RtcOffer(BaseModel):
    """The headset offers WebRTC audio: an SDP offer with its ICE candidates gathered."""

    type: Literal["rtc_offer"]
    sdp: str = Field(min_length=1)


class RtcClose(BaseModel):
    """The headset leaves WebRTC audio (its peer connection failed): binary frames again."""

    type: Literal["rtc_close"]


Frame = Hello | Say | Bye | RtcOffer | RtcClose
ClientFrame = Annotated[Frame, Field(discriminator="type")]
_client_frame: TypeAdapter[Frame] = TypeAdapter(ClientFrame)
KNOWN_TYPES = {"hello", "say", "bye", "rtc_offer", "rtc_close"}


def parse_text_frame(text: str) -> Frame:
    if len(text.encode()) > MAX_TEXT_FRAME:
        raise FrameError("frame_too_large", f"text frames are at most {MAX_TEXT_FRAME} bytes")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FrameError("malformed_json", "a text frame must be a JSON object") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError("malformed_frame", 'a frame is a JSON object with a "type"')
    if data["type"] not in KNOWN_TYPES:
        raise FrameError("unknown_type", f"unknown frame type {data['type']!r}")
    try:
        frame = _client_frame.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or data["type"]
        raise FrameError("invalid_frame", f"{where}: {first['msg']}") from exc
    if isinstance(frame, Hello):
        if frame.protocol != PROTOCOL_VERSION:
            raise FrameError(
                "unsupported_protocol",
                f"this server speaks protocol {PROTOCOL_VERSION}",
                fatal=True,
            )
        if frame.audio.sample_rate not in SAMPLE_RATES:
            raise FrameError(
                "unsupported_sample_rate", f"sample_rate must be one of {SAMPLE_RATES}", fatal=True
            )
    return frame


def check_audio_frame(data: bytes) -> None:
    if len(data) > MAX_AUDIO_FRAME:
        raise FrameError("frame_too_large", f"audio frames are at most {MAX_AUDIO_FRAME} bytes")
    if len(data) % 2:
        raise FrameError("invalid_audio", "PCM s16le frames hold whole 2-byte samples")


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def message_frame(message: HeadsetMessage) -> dict[str, Any] | None:
    """The text frame that tells the headset of what its conversation says (None: the socket
    closes instead, after a sign-off)."""
    if isinstance(message, PromptStarted):
        prompt = message.prompt
        return {
            "type": "prompt",
            "id": message.id,
            "text": prompt.text,
            "state": prompt.state,
            "display": prompt.display,
        }
    if isinstance(message, PromptEnded):
        return {"type": "prompt_end", "id": message.id} | (
            {"interrupted": True} if message.interrupted else {}
        )
    if isinstance(message, Heard):
        heard = {"type": "heard", "text": message.text, "confidence": message.confidence}
        heard |= {"accepted": message.accepted, "source": message.source}
        return heard | ({"dropped": message.dropped} if message.dropped else {})
    if isinstance(message, Failed):
        return error(message.code, message.message)
    assert isinstance(message, SignedOff)
    return None
