"""Speech model registry: manifests (name, language, official URL, SHA-256, size), the local
model store in the user data directory, and the `wavepick models ...` commands.

`manifest` (the data, `manifest.toml`), `registry` (`ModelStore`: where each model is, and
whether it is intact), `archive` (safe unzipping), `download` (fetch and verify) and `cli`
(the typer app `server.cli` mounts). Nothing here downloads unless asked to by
`wavepick models fetch NAME`.
"""
