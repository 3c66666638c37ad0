"""The ASGI application: settings, database, middleware, problem handlers and routes."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from rtc.hub import RoomHub
from rtc.peer import Timeouts
from rtc.room import RoomConfig
from server import apidocs, masterdata
from server.api import TAGS, include_api
from server.bodylimit import BodyLimitMiddleware
from server.call_recordings import CallRecordings
from server.config import Settings
from server.db import Database, make_engine, make_session_factory
from server.events import EventBus
from server.eventsocket import router as events_router
from server.headset.endpoint import router as headset_router
from server.headset.floor import HeardAnswers
from server.headset.leases import LocalLeases, RedisLeases
from server.headset.snapshots import MemorySnapshots, RedisSnapshots
from server.headset.speech import make_speech_services
from server.idempotency import IdempotencyMiddleware, record_outcome
from server.login import LoginGuard
from server.problems import install_problem_handlers
from server.requestlog import RequestLogMiddleware, scrub_server_logs
from server.rooms_forwarding import forwarded, rooms_client
from server.rooms_forwarding import router as rooms_forwarding_router
from server.rooms_socket import router as rooms_socket_router
from server.securityheaders import SecurityHeadersMiddleware
from server.services import users
from server.sockets import Grant, SocketRegistry

CLIENT_WEB = Path(__file__).resolve().parent.parent / "client_web"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    scrub_server_logs()
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    sessions = make_session_factory(engine)
    masterdata.attach(sessions, ttl_seconds=settings.master_cache_seconds)
    bus = EventBus(redis_url=settings.redis_url, stream=settings.events_stream)
    bus.attach(sessions)  # what a unit of work records is published once it commits

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.speech_warm_up:
            warm_up = threading.Thread(
                target=app.state.speech.warm_up, name="speech-warm-up", daemon=True
            )
            warm_up.start()
        await bus.start()
        await database.start()
        await app.state.headset_leases.start()
        expiry = None
        if settings.rooms_url is None:  # recordings are kept and expired where calls are held
            expiry = asyncio.create_task(app.state.recordings.expire_hourly())
        yield
        if expiry is not None:
            expiry.cancel()
        await app.state.sockets.close_all()
        await app.state.heard_answers.close()
        await app.state.recordings.stop_all()
        await app.state.rooms.close_all()
        if app.state.rooms_http is not None:
            await app.state.rooms_http.aclose()
        await app.state.headset_leases.stop()
        if redis is not None:
            await redis.aclose()
        await bus.stop()
        await database.stop()
        await asyncio.to_thread(app.state.speech.close)
        engine.dispose()

    app = FastAPI(
        title="WavePick",
        version="0.1.0",
        description="Voice-directed picking and stock ledger for cross-border warehouses.",
        lifespan=lifespan,
        docs_url=None,  # served from bundled assets by server.apidocs
        redoc_url=None,
        openapi_tags=TAGS,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.events = bus
    app.state.db = database = Database(
        sessions, on_write=record_outcome, writer_turns=settings.is_sqlite
    )
    app.state.login_guard = LoginGuard(settings)
    app.state.heard_answers = HeardAnswers(database)

    async def still_allowed(grants: Collection[Grant]) -> set[Grant]:
        allowed = await database.read(
            users.still_allowed, {(grant.username, grant.token_version) for grant in grants}
        )
        return {grant for grant in grants if (grant.username, grant.token_version) in allowed}

    app.state.sockets = SocketRegistry(still_allowed, interval=settings.session_check_seconds)
    app.state.speech = make_speech_services(settings)
    app.state.rooms = RoomHub(
        RoomConfig(
            ice=settings.ice,
            forwarding=settings.room_forwarding,
            timeouts=Timeouts(silence=settings.room_silence_seconds),
            max_participants=settings.room_max_participants,
        )
    )
    app.state.rooms_http = rooms_client(settings)  # rooms hosted by another process
    app.state.recordings = CallRecordings(
        app.state.db, settings.recordings_path, settings.recording_days
    )
    snapshot_ttl = settings.headset_snapshot_hours * 3600
    redis: aioredis.Redis | None = None
    if settings.redis_url:
        redis = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )  # dialogs and sessions shared by every process
        app.state.headset_snapshots = RedisSnapshots(
            redis, prefix=settings.redis_prefix, ttl=snapshot_ttl
        )
        app.state.headset_leases = RedisLeases(
            redis,
            aioredis.Redis.from_url(settings.redis_url, socket_keepalive=True),
            prefix=settings.redis_prefix,
            ttl=settings.headset_lease_seconds,
        )
    else:
        app.state.headset_snapshots = MemorySnapshots(snapshot_ttl)
        app.state.headset_leases = LocalLeases()
    install_problem_handlers(app)
    if settings.rooms_url is not None:  # matched before the rooms' own routes
        app.include_router(rooms_forwarding_router)
    include_api(app)
    app.include_router(headset_router)
    app.include_router(rooms_socket_router)
    app.include_router(events_router)
    app.include_router(apidocs.router)
    app.mount(apidocs.ASSETS_URL, apidocs.assets(), name="docs_assets")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if CLIENT_WEB.is_dir():
        app.mount("/", StaticFiles(directory=CLIENT_WEB, html=True), name="client_web")

    app.add_middleware(
        IdempotencyMiddleware,
        db=app.state.db,
        signing_key=lambda: settings.signing_key,
        claim_timeout=dt.timedelta(seconds=settings.idempotency_claim_seconds),
        passes_on=forwarded if settings.rooms_url is not None else lambda path: False,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts_seconds=settings.hsts_seconds)
    app.add_middleware(RequestLogMiddleware, signing_key=lambda: settings.signing_key)
    return app
