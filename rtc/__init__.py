"""WebRTC with aiortc: rooms hosted by the server, which forward every participant's
encoded audio and video to the others (a selective forwarding unit), their signaling, and
ICE/TURN configuration.

- `ice`: STUN/TURN servers and short-lived TURN credentials (the coturn REST scheme)
- `forwarding`: a received track (`Source`) and what one subscriber is sent of it
  (`Outlet`), without decoding; `_aiortc` is every reach into aiortc's internals
- `peer`: the server's peer connection with one participant, and its negotiation
- `room`: the participants of one call; `hub`: the live rooms of a process, by id
- `signaling`: Room signaling v1 frames, and one participant's session over any channel
- `client`: a participant over a WebSocket; `synthetic`: test media (tone, colour, stamps)
- `tasks`: background tasks started and stopped (also the server's)

A library: no FastAPI and no import of `server`.
"""

from enum import StrEnum


class Forwarding(StrEnum):
    """How a room forwards: `encoded` frames as they came (the default, no transcoding),
    or `transcoded` through aiortc's `MediaRelay` (decoded once per source, encoded once
    per subscriber; kept to measure what encoded forwarding saves)."""

    encoded = "encoded"
    transcoded = "transcoded"
