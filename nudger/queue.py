"""The Redis/arq edge: how flows hand work to each other. Redis is a wake-up, never the truth.

Every job is keyed by its database row (`send:<outbox id>`, `inbound:<inbound id>`), so enqueueing
twice is a no-op while the first is pending, and a job that runs twice finds its row already done.
If Redis loses everything, the sweeper re-enqueues from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from urllib.parse import urlparse

from arq.connections import ArqRedis, RedisSettings

from nudger.clock import Clock

log = logging.getLogger(__name__)

SEND_JOB = "send_mail"
PROCESS_JOB = "process_inbound"


class Queue(Protocol):
    async def send_mail(self, items: Sequence[tuple[int, datetime]]) -> None:
        """Deliver these outbox rows, each not before its time."""
        ...

    async def process_inbound(self, ids: Sequence[int]) -> None:
        """Process these stored inbound rows."""
        ...


def redis_settings(url: str) -> RedisSettings:
    """RedisSettings from redis://HOST:PORT/DB, rediss://…, or unix:///path/to/socket[?db=N]."""
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return RedisSettings(unix_socket_path=parsed.path)
    return RedisSettings.from_dsn(url)


class ArqQueue:
    """Enqueues arq jobs. Deferral is measured on nudger's clock (so a demo's clock can jump)."""

    def __init__(self, redis: ArqRedis, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock

    async def send_mail(self, items: Sequence[tuple[int, datetime]]) -> None:
        now = self._clock.now()
        for outbox_id, when in items:
            delay = max((when - now).total_seconds(), 0.0)
            await self._redis.enqueue_job(
                SEND_JOB, outbox_id, _job_id=f"send:{outbox_id}", _defer_by=delay if delay else None
            )

    async def process_inbound(self, ids: Sequence[int]) -> None:
        for inbound_id in ids:
            await self._redis.enqueue_job(PROCESS_JOB, inbound_id, _job_id=f"inbound:{inbound_id}")


class RecordingQueue:
    """A queue that remembers what it was asked to do (unit tests and dry runs)."""

    def __init__(self) -> None:
        self.sends: list[tuple[int, datetime]] = []
        self.processes: list[int] = []

    async def send_mail(self, items: Sequence[tuple[int, datetime]]) -> None:
        self.sends.extend(items)

    async def process_inbound(self, ids: Sequence[int]) -> None:
        self.processes.extend(ids)
