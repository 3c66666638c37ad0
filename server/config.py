"""Settings: every `WAVEPICK_*` environment variable, read once into one object."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from contextlib import suppress
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from limits import parse
from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rtc import Forwarding
from rtc.ice import IceConfig, IceConfigError, check_url


class Environment(StrEnum):
    development = "development"
    production = "production"


MIN_SECRET_LENGTH = 32


def _strong(secret: str | None) -> bool:
    """Long enough, and not a short pattern repeated ("aaaa…", "changeme" × 4)."""
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        return False
    return len(set(secret)) >= 12


class Settings(BaseSettings):
    """Server settings. Defaults are the embedded ones: SQLite in the working directory."""

    model_config = SettingsConfigDict(env_prefix="WAVEPICK_", env_file=".env", extra="ignore")

    environment: Environment = Environment.development
    database_url: str = "sqlite:///./wavepick.db"
    redis_url: str | None = Field(
        None,
        description="Redis (redis://host:6379/0): events between several server processes, "
        "and sign-in throttling counts they share.",
    )
    events_stream: str = Field(
        "wavepick:events",
        min_length=1,
        description="The Redis stream that carries events between processes (one per "
        "deployment sharing a Redis).",
    )
    redis_prefix: str = Field(
        "wavepick",
        min_length=1,
        description="What the names of WavePick's Redis keys start with (headset dialog "
        "snapshots and session leases; one per deployment sharing a Redis).",
    )
    headset_lease_seconds: float = Field(
        5.0,
        ge=1,
        le=60,
        description="With Redis: how long a headset session's hold on its operator outlives "
        "a process that died (renewed every third of it while the session runs); the "
        "picker's reconnect to another process waits at most this long.",
    )
    headset_snapshot_hours: float = Field(
        12.0,
        gt=0,
        description="How long a headset dialog is kept after its last answer for the "
        "operator's next session to resume (in Redis with WAVEPICK_REDIS_URL, on this "
        "process otherwise).",
    )
    events_queue: int = Field(
        256,
        ge=8,
        description="Frames an events socket may fall behind before it is closed (4408).",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    secret_key: str | None = Field(
        None, description="Signs access tokens. Development keeps a generated one on disk."
    )
    token_ttl_minutes: int = Field(12 * 60, ge=1)
    ticket_ttl_seconds: int = Field(
        30, ge=1, le=300, description="Lifetime of a one-use socket ticket."
    )
    session_check_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="How often an open socket re-checks its user (disabled, role changed, "
        "token revoked or expired); changes made on this process end sockets at once.",
    )
    master_cache_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="How long a process keeps users, memberships, warehouses, SKUs and "
        "locations it has read; a change made on the same process applies at once, one "
        "made on another process within this time. 0 reads them on every request.",
    )
    demo_password: str = Field("wavepick", min_length=8)
    data_dir: Path = Field(default_factory=lambda: user_data_path("wavepick"))
    model_dir: Path | None = None
    log_level: str = "INFO"
    db_pool_size: int = Field(20, ge=1)
    stt_engine: Literal["auto", "fusion", "templates", "pocketsphinx", "vosk", "whisper"] = "auto"
    min_confidence: float = Field(0.5, ge=0, le=1)
    idempotency_claim_seconds: float = Field(
        120,
        gt=0,
        description="An Idempotency-Key claim older than this, with nothing committed, was "
        "left by a crash: a retry takes it over.",
    )
    login_user_limit: str = Field(
        "10 per 15 minutes",
        description="Failed sign-ins for one user name before it is refused (429).",
    )
    login_client_limit: str = Field(
        "60 per 15 minutes",
        description="Failed sign-ins from one client address before it is refused (429).",
    )
    password_hash_concurrency: int = Field(
        2, ge=1, description="Passwords checked at once (argon2: 64 MiB and ~0.5 s each)."
    )
    login_queue: int = Field(
        16, ge=0, description="Sign-ins waiting for a password check before 503."
    )
    hsts_seconds: int = Field(
        365 * 24 * 3600,
        ge=0,
        description="Strict-Transport-Security max-age on answers to requests that came "
        "over TLS (0: never sent).",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Reverse proxies whose X-Forwarded-For/-Proto `wavepick serve` trusts "
        "(the client's address for throttling, https for HSTS).",
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body (JSON), refused with 413."
    )
    max_upload_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest multipart upload (the CSV import)."
    )
    ws_max_message_bytes: int = Field(
        128 * 1024,
        ge=1024,
        description="Largest WebSocket message the server takes (audio frames are at most "
        "64 KiB); a larger one closes the socket (1009) before it is buffered.",
    )
    import_batch_orders: int = Field(
        200,
        ge=1,
        description="Orders a CSV import creates per transaction (other writers wait for "
        "one batch, not for the whole file).",
    )
    rtc_headset_audio: bool = Field(
        True,
        description="Headsets may send and receive their audio over WebRTC (rtc_offer on "
        "/ws/headset); off, they are told so and use binary socket frames.",
    )
    rooms_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s?#]+$",
        description="The WavePick process that hosts video calls, when it is not this one "
        "(http://host:port): this process forwards /api/v1/rooms and /ws/rooms to it and "
        "joins its headsets' calls there. It shares this one's database and "
        "WAVEPICK_SECRET_KEY. `wavepick serve --workers N` sets it for all but its first "
        "process.",
    )
    speech_workers: int | None = Field(
        None,
        ge=0,
        description="Processes that recognise and synthesise speech beside the app: "
        "default one per core; 0 runs speech in the app's own threads.",
    )
    speech_brokered: bool = Field(
        False,
        description="Answers are read by the speech workers sharing WAVEPICK_REDIS_URL, on "
        "this host or others (`wavepick speech-worker`), whichever is free first; this "
        "process starts WAVEPICK_SPEECH_WORKERS of them itself (0: only the others).",
    )
    speech_reply_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="With brokered speech: how long an answer waits for a worker to read "
        "it before the headset is told speech is unavailable (error `speech_unavailable`).",
    )
    speech_warm_up: bool = Field(
        True, description="Load speech models and voices at start, not at the first answer."
    )
    recordings_dir: Path | None = Field(
        None,
        description="Where the calls of warehouses that record them are kept; default "
        "<data_dir>/recordings.",
    )
    recording_days: int = Field(
        30, ge=1, le=3650, description="Days a call recording is kept, then deleted."
    )
    speech_cache_dir: Path | None = Field(
        None,
        description="Where speech keeps what it computes once and reuses after a restart "
        "(the words in synthetic voices); default <data_dir>/speech-cache. Processes may "
        "share it.",
    )
    stun_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="STUN servers for room calls, comma-separated (stun:host:3478).",
    )
    turn_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="TURN servers for room calls, comma-separated "
        "(turn:host:3478?transport=udp, turns:host:5349); they need `turn_secret`.",
    )
    turn_secret: SecretStr | None = Field(
        None,
        description="The secret shared with the TURN server (coturn `static-auth-secret`): "
        "it signs short-lived TURN credentials.",
    )
    turn_ttl_seconds: int = Field(
        8 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="How long TURN credentials last (never past the user's sign-in).",
    )
    rtc_relay_only: bool = Field(
        False, description="The server's own peer connections use TURN-relayed paths only."
    )
    room_max_participants: int = Field(16, ge=2, le=64)
    room_silence_seconds: float = Field(
        8.0,
        ge=2,
        le=60,
        description="A room participant from whom no packet has come for this long, while "
        "it should be sending, is removed.",
    )
    room_forwarding: Forwarding = Field(
        Forwarding.encoded,
        description="`encoded` forwards media as it came; `transcoded` decodes and encodes "
        "it again per receiver (aiortc's MediaRelay; for comparison only).",
    )

    @field_validator("login_user_limit", "login_client_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '10 per 15 minutes': {value!r}") from exc
        return value

    @field_validator("stun_urls", "turn_urls", mode="before")
    @classmethod
    def _urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [url.strip() for url in value.split(",") if url.strip()]
        if isinstance(value, list):
            for url in value:
                try:
                    check_url(str(url))
                except IceConfigError as exc:
                    raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment is Environment.production and not _strong(self.secret_key):
            raise ValueError(
                "WAVEPICK_SECRET_KEY must be set to a random secret of at least "
                f"{MIN_SECRET_LENGTH} characters when WAVEPICK_ENVIRONMENT=production "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.speech_brokered and not self.redis_url:
            raise ValueError("WAVEPICK_SPEECH_BROKERED needs WAVEPICK_REDIS_URL, the broker")
        try:
            self.ice  # noqa: B018  (checks the STUN/TURN settings together)
        except IceConfigError as exc:
            raise ValueError(str(exc)) from exc
        turn_secret = self.turn_secret.get_secret_value() if self.turn_secret else None
        if self.turn_urls and self.is_production and not _strong(turn_secret):
            raise ValueError(
                "WAVEPICK_TURN_SECRET must be a random secret of at least "
                f"{MIN_SECRET_LENGTH} characters when WAVEPICK_ENVIRONMENT=production"
            )
        return self

    @property
    def ice(self) -> IceConfig:
        """STUN and TURN for room calls."""
        return IceConfig(
            stun_urls=tuple(self.stun_urls),
            turn_urls=tuple(self.turn_urls),
            turn_secret=self.turn_secret.get_secret_value() if self.turn_secret else None,
            turn_ttl=dt.timedelta(seconds=self.turn_ttl_seconds),
            relay_only=self.rtc_relay_only,
        )

    @property
    def rooms_socket_url(self) -> str | None:
        """`rooms_url` for WebSockets (ws://host:port), if rooms are hosted elsewhere."""
        if self.rooms_url is None:
            return None
        return "ws" + self.rooms_url.removeprefix("http")

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def signing_key(self) -> str:
        """The token key; in development one is generated once and kept in the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        path.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):  # created with its mode: never readable by others
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as secret:
                secret.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    @property
    def recordings_path(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def speech_cache_path(self) -> Path:
        return self.speech_cache_dir or self.data_dir / "speech-cache"

    @property
    def models_path(self) -> Path:
        return self.model_dir or self.data_dir / "models"
