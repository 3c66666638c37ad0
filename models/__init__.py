"""Speech model registry: manifests (name, language, official URL, SHA-256, size), the local
model store in the user data directory, and the `wavepick models ...` commands.

Nothing here downloads unless asked to by `wavepick models fetch NAME`.
"""
