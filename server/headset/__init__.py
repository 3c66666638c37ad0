"""The headset: the pick conversation (`conversation`: speech in and out, the pick dialog
behind it, which itself lives in `voice.dialog`, the server supplying the warehouse work)
and how it travels: protocol v1 over a WebSocket (`session`), its audio optionally on
WebRTC (`peer`, `prompt_track`); a headset client for programs (`client`, `client_peer`)."""
