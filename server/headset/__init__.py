"""The headset: protocol v1 over a WebSocket, speech in and out, and the pick dialog behind
it (the dialog itself lives in `voice.dialog`; the server supplies the warehouse work)."""
