"""Speech for hands-free picking: recognition (STT), synthesis (TTS), grammars, endpointing
and the dialogs (pick, count, ...) with their per-locale words and prompts; recognition in
worker processes beside an app (`workers`) or on any host, found through Redis (`broker`).

A library: no FastAPI and no import of `server`. It talks to the warehouse through small
protocols the server implements, so it can be used from a notebook or a test on its own.
"""
