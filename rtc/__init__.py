"""WebRTC with aiortc: room signaling, server-side peers (recording, bridging a headset into
a call) and ICE/TURN configuration.

A library: no FastAPI and no import of `server`.
"""
