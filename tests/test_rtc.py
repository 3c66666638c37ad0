"""The `rtc` library on its own, in-process and without the server: TURN credentials and
ICE settings, keyframes, signaling frames, and rooms over a bare WebSocket whose
server-side objects are looked at — forwarded media is never decoded or encoded there."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fractions
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import websockets
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame

from rtc import Forwarding, _aiortc
from rtc.client import RoomClient
from rtc.forwarding import is_keyframe
from rtc.hub import RoomHub
from rtc.ice import IceConfig, IceConfigError, turn_credentials
from rtc.room import Member, Room, RoomConfig
from rtc.signaling import FrameError, RoomSession, ice_candidate, parse_frame
from rtc.synthetic import ColorTrack, ToneTrack, dominant_frequency, mean_rgb, read_stamp
from server.config import Settings

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


# ---- ICE ----


def test_turn_credentials_follow_the_coturn_rest_scheme() -> None:
    expires = dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    credentials = turn_credentials("north-wind", "manager", expires)
    assert credentials.username == "1700000000:manager"
    # `printf %s 1700000000:manager | openssl dgst -sha1 -hmac north-wind -binary | base64`
    assert credentials.credential == "AW09nuUOzWyPpd2WTHHeriwcP+Y="


def test_ice_servers_for_a_user() -> None:
    config = IceConfig(
        stun_urls=("stun:stun.example.org:3478",),
        turn_urls=("turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"),
        turn_secret="north-wind",
        turn_ttl=dt.timedelta(hours=8),
    )
    stun, turn = (s.as_json() for s in config.servers("ana", now=NOW))
    assert stun == {"urls": ["stun:stun.example.org:3478"]}
    assert turn["urls"] == list(config.turn_urls)
    assert turn["username"] == f"{int((NOW + dt.timedelta(hours=8)).timestamp())}:ana"
    # never past the user's sign-in
    signed_in_until = NOW + dt.timedelta(minutes=30)
    capped = config.servers("ana", now=NOW, not_after=signed_in_until)[1]
    assert capped.username == f"{int(signed_in_until.timestamp())}:ana"
    assert "north-wind" not in repr(config)
    assert IceConfig().servers("ana", now=NOW) == []


@pytest.mark.parametrize(
    "settings",
    [
        {"turn_urls": ("turn:t.example.org",)},  # no secret
        {"stun_urls": ("http://stun.example.org",)},
        {"stun_urls": ("turn:t.example.org",), "turn_secret": "s"},
        {"relay_only": True},
        {"turn_urls": ("turn:t.example.org?transport=sctp",), "turn_secret": "s"},
    ],
)
def test_unusable_ice_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(IceConfigError):
        IceConfig(**settings)


def test_ice_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVEPICK_STUN_URLS", "stun:a.example.org:3478, stun:b.example.org")
    monkeypatch.setenv("WAVEPICK_TURN_URLS", "turn:t.example.org:3478?transport=tcp")
    monkeypatch.setenv("WAVEPICK_TURN_SECRET", "x" * 40)
    ice = Settings().ice
    assert ice.stun_urls == ("stun:a.example.org:3478", "stun:b.example.org")
    assert ice.turn_urls == ("turn:t.example.org:3478?transport=tcp",)
    monkeypatch.delenv("WAVEPICK_TURN_SECRET")
    with pytest.raises(ValueError, match="shared secret"):
        Settings()
    monkeypatch.setenv("WAVEPICK_TURN_SECRET", "weak")
    with pytest.raises(ValueError, match="WAVEPICK_TURN_SECRET"):
        Settings(environment="production", secret_key="k" * 20 + "abcdefghijklmnop")


# ---- keyframes ----


def _encoded_frames(mime_type: str, count: int, *, forced: int) -> list[bytes]:
    """Whole encoded frames as aiortc's jitter buffer hands them on: encoded by aiortc,
    packetized for RTP, then depayloaded and joined again."""
    codec = RTCRtpCodecParameters(mimeType=mime_type, clockRate=90000, payloadType=97)
    encoder: Any = get_encoder(codec)
    track = ColorTrack((120, 80, 80))
    frames = []
    for n in range(count):
        frame = VideoFrame.from_ndarray(track._planes.copy(), format="yuv420p")
        frame.pts, frame.time_base = n * 3000, fractions.Fraction(1, 90000)
        payloads, _timestamp = encoder.encode(frame, force_keyframe=n == forced)
        frames.append(b"".join(depayload(codec, p) for p in payloads))
    return frames


@pytest.mark.parametrize("mime_type", ["video/VP8", "video/H264"])
def test_keyframes_are_told_from_other_frames(mime_type: str) -> None:
    codec = RTCRtpCodecParameters(mimeType=mime_type, clockRate=90000, payloadType=97)
    frames = _encoded_frames(mime_type, 5, forced=3)
    assert [is_keyframe(codec, data) for data in frames] == [True, False, False, True, False]


# ---- signaling frames ----


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("nope", "malformed_json"),
        ('"join"', "malformed_frame"),
        ('{"type": 3}', "malformed_frame"),
        ('{"type": "hello"}', "unknown_type"),
        ('{"type": "offer"}', "invalid_frame"),
        ('{"type": "offer", "sdp": ""}', "invalid_frame"),
        ('{"type": "mute", "kind": "audio", "muted": "maybe"}', "invalid_frame"),
        ('{"type": "join", "display_name": "' + "x" * 101 + '"}', "invalid_frame"),
        ("[" * 70_000, "frame_too_large"),
    ],
)
def test_bad_frames_are_named(text: str, code: str) -> None:
    with pytest.raises(FrameError) as bad:
        parse_frame(text)
    assert bad.value.code == code


def test_trickled_candidates() -> None:
    line = "candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host generation 0"
    frame = parse_frame(
        '{"type": "candidate", "candidate": {"candidate": "' + line + '", "sdpMid": "0"}}'
    )
    candidate = ice_candidate(frame.candidate)  # type: ignore[union-attr]
    assert candidate is not None and (candidate.ip, candidate.port) == ("192.0.2.7", 50000)
    assert candidate.sdpMid == "0"
    end = parse_frame('{"type": "candidate", "candidate": {"candidate": ""}}')
    assert ice_candidate(end.candidate) is None  # type: ignore[union-attr]
    for bad in ("candidate:1 1 udp", "1 1 udp 1 192.0.2.7 notaport typ host"):
        frame = parse_frame(
            '{"type": "candidate", "candidate": {"candidate": "' + bad + '", "sdpMid": "0"}}'
        )
        with pytest.raises(FrameError):
            ice_candidate(frame.candidate)  # type: ignore[union-attr]


# ---- rooms, in-process ----


class _Socket:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)


@contextlib.asynccontextmanager
async def serving(hub: RoomHub) -> AsyncIterator[str]:
    """Room signaling over a bare WebSocket (no sign-in: the path names the user): the
    part of the server's socket that is not authentication."""

    async def handler(ws: Any) -> None:
        user = ws.request.path.rsplit("/", 1)[-1]
        session = RoomSession(hub.room("r"), Member(user, user, "manager"), _Socket(ws))
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                if isinstance(message, str):
                    await session.handle_text(message)
                else:
                    await session.handle_binary()
        await session.disconnected()

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def _sees(client: RoomClient, other: RoomClient, rgb: tuple[int, int, int], tone: float) -> bool:
    assert other.participant is not None
    video = client.last_frame(other.participant, "video")
    audio = client.last_frame(other.participant, "audio")
    return (
        video is not None
        and audio is not None
        and client.received[(other.participant, "video")] >= 5
        and all(abs(a - b) <= 40 for a, b in zip(mean_rgb(video), rgb, strict=True))
        and abs(dominant_frequency(audio) - tone) <= 60
    )


async def _two_in_a_room(
    hub: RoomHub, look: Callable[[Room], None], video_codec: str | None = None
) -> None:
    """Two participants, each receiving and decoding the other's audio and video; then
    `look` at the server's side of the call while both are in it."""
    async with serving(hub) as base:
        ana = RoomClient(
            f"{base}/ana",
            tracks=[ToneTrack(400), ColorTrack((200, 40, 40))],
            video_codec=video_codec,
        )
        ben = RoomClient(f"{base}/ben", tracks=[ToneTrack(1000), ColorTrack((40, 40, 200))])
        try:
            await ana.join()
            await ben.join()
            await ana.until(
                lambda: (
                    _sees(ana, ben, (40, 40, 200), 1000) and _sees(ben, ana, (200, 40, 40), 400)
                ),
                60,
            )
            room = hub.get("r")
            assert room is not None and len(room.participants) == 2
            look(room)
        finally:
            await ana.close()
            await ben.close()


@pytest.mark.parametrize("video_codec", ["video/VP8", "video/H264"])
def test_forwarded_media_is_neither_decoded_nor_encoded_on_the_server(video_codec: str) -> None:
    """Two participants receive and decode each other's audio and video (one sends
    `video_codec`, the other VP8), while the server's receivers hand every frame on
    encoded (nothing reaches their decoders) and its senders only packetize (their
    encoders never encoded a frame)."""

    def look(room: Room) -> None:
        peers = [p.peer for p in room.participants.values()]
        receivers = [t.receiver for peer in peers for t in peer.sources]
        slots = [slot for peer in peers for slot in peer.slots]
        assert len(receivers) == 4 and len(slots) == 4
        for receiver in receivers:
            assert isinstance(receiver._RTCRtpReceiver__decoder_queue, _aiortc._FrameTap)
            assert receiver.track._queue.empty()  # no decoded frame was ever queued
        encoders = set()
        for slot in slots:
            assert slot.outlet is not None and slot.outlet.sent > 0
            encoder = slot.sender._RTCRtpSender__encoder
            encoders.add(type(encoder).__name__)
            if slot.kind == "video":
                assert encoder.codec is None  # libvpx / libx264 never opened
            else:
                assert encoder.first_packet_pts is None  # set by the first encode only
        h264 = {"H264Encoder"} if video_codec == "video/H264" else set()
        assert encoders == {"OpusEncoder", "Vp8Encoder"} | h264

    asyncio.run(_two_in_a_room(RoomHub(), look, video_codec))


def test_transcoded_forwarding_decodes_and_encodes_again() -> None:
    """The comparison mode: aiortc's MediaRelay, a decoder per source and an encoder per
    receiver."""

    def look(room: Room) -> None:
        slots = [s for p in room.participants.values() for s in p.peer.slots]
        videos = [s for s in slots if s.kind == "video"]
        assert len(videos) == 2
        assert all(s.sender._RTCRtpSender__encoder.codec is not None for s in videos)

    asyncio.run(_two_in_a_room(RoomHub(RoomConfig(forwarding=Forwarding.transcoded)), look))


def test_stamped_frames_carry_their_time_through_vp8() -> None:
    """What the benchmark measures latency with survives encoding and decoding."""
    track = ColorTrack((90, 90, 90), width=640, height=480, stamped=True)
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)

    async def main() -> list[tuple[int, int]]:
        encoder: Any = get_encoder(codec)
        decoder = get_decoder(codec)
        pairs = []
        for _ in range(5):
            frame = await track.recv()
            sent = read_stamp(frame)
            payloads, timestamp = encoder.encode(frame)
            data = b"".join(depayload(codec, p) for p in payloads)
            for decoded in decoder.decode(JitterFrame(data, timestamp)):
                assert isinstance(decoded, VideoFrame)
                pairs.append((sent, read_stamp(decoded)))
        return pairs

    pairs = asyncio.run(main())
    assert pairs and all(sent == read for sent, read in pairs)
