"""The composition root: one async context builds every client from settings and closes them.

Only entry points (CLI, worker, listener, demo) call `open_services`; flows receive what they need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import jinja2
from arq import create_pool
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from nudger.clock import Clock, SystemClock
from nudger.config import Programme, Secrets, Settings
from nudger.inbound.ingest import IngestDeps
from nudger.mail.compose import Composer
from nudger.mail.message import Identity, Keys
from nudger.mail.smtp import SmtpTransport, Transport
from nudger.mail.templating import make_environment
from nudger.queue import ArqQueue, Queue, RecordingQueue, redis_settings
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate


@dataclass
class Services:
    settings: Settings
    secrets: Secrets
    identity: Identity
    keys: Keys
    engine: AsyncEngine
    sessions: SessionMaker
    env: jinja2.Environment
    transport: Transport
    queue: Queue
    clock: Clock
    redis: ArqRedis | None = None
    programmes: dict[str, Programme] = field(default_factory=dict)

    @property
    def composer(self) -> Composer:
        return Composer(self.env, self.identity, self.keys)

    @property
    def ingest(self) -> IngestDeps:
        return IngestDeps(self.composer, self.programmes, self.settings.inbound.authserv_id)


@asynccontextmanager
async def open_services(
    settings: Settings,
    secrets: Secrets,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    use_redis: bool = True,
    migrate_db: bool = True,
) -> AsyncIterator[Services]:
    engine = make_engine(settings.database.url)
    redis: ArqRedis | None = None
    own_transport = transport is None
    smtp: Transport = transport or SmtpTransport(settings.smtp, secrets.smtp_password)
    try:
        if migrate_db:
            await migrate(engine)
        queue: Queue
        clock = clock or SystemClock()
        if use_redis:
            redis = await create_pool(redis_settings(settings.redis.url))
            queue = ArqQueue(redis, clock)
        else:
            queue = RecordingQueue()
        yield Services(
            settings=settings,
            secrets=secrets,
            identity=Identity.from_config(settings.service),
            keys=Keys(secrets.signing_key.reveal().encode("utf-8")),
            engine=engine,
            sessions=make_sessionmaker(engine),
            env=make_environment(),
            transport=smtp,
            queue=queue,
            clock=clock,
            redis=redis,
            programmes={p.key: p for p in settings.programmes},
        )
    finally:
        if own_transport:
            await smtp.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
