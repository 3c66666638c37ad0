"""The WavePick server: HTTP API, WebSockets, auth, persistence and domain services.

`server` composes the libraries `voice` (speech) and `rtc` (WebRTC); they never import it.
Domain rules live in plain services under `server.services`; routes under `server.api`
only translate HTTP to service calls.
"""
