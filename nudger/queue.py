"""The Redis/arq edge: how flows hand work to each other. Redis is a wake-up, never the truth.

Outbox rows travel in batches (`send_batch`: up to SEND_BATCH rows due in the same minute, one job,
one claim, sends over the pooled connections, one write-back), so a round for 100 000 people costs
Redis a thousand jobs, not a hundred thousand. Stored inbound mail is processed in batches too
(`process_inbound_batch`, up to INBOUND_BATCH rows, keyed `inbound:<first>-<last>:<count>`); the
listener, which stores one message at a time, wakes one coalesced `process_waiting` job per half
second instead of one job per message. A send batch queued twice (the sweeper, a retry) costs one
claim that finds its rows taken: rows are claimed by compare-and-set, so a job that runs twice finds
its rows already done. If Redis loses everything, the sweeper re-enqueues from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlparse

from arq.connections import ArqRedis, RedisSettings

from nudger.clock import Clock

log = logging.getLogger(__name__)

SEND_JOB = "send_batch"
PROCESS_BATCH_JOB = "process_inbound_batch"
WAITING_JOB = "process_waiting"
#: stored messages per processing job (the poller's and the sweeper's batches)
INBOUND_BATCH = 200
#: seconds: the listener's wake-ups are coalesced into one job per this much time
WAKE_BUCKET = 0.5
#: rows per send job: big enough that arq's per-job cost (a few Redis round trips) vanishes, small
#: enough that a batch's claim and write-back stay short transactions
SEND_BATCH = 200
#: rows due within the same minute share a job, which runs when the last of them is due
SEND_BUCKET = timedelta(minutes=1)


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
        self._last_wake = -1
        self._waking = -1

    async def send_mail(self, items: Sequence[tuple[int, datetime]]) -> None:
        now = self._clock.now()
        for ids, when in send_batches(items, now):
            delay = max((when - now).total_seconds(), 0.0)
            # arq's own (random) job id: a batch queued twice costs a claim that finds nothing,
            # while a reused id would silently drop the second enqueue (a retry of the same rows)
            await self._redis.enqueue_job(SEND_JOB, ids, _defer_by=delay if delay else None)

    async def process_inbound(self, ids: Sequence[int]) -> None:
        ordered = sorted(set(ids))
        if len(ordered) == 1:
            await self._wake_for_waiting()
            return
        for start in range(0, len(ordered), INBOUND_BATCH):
            chunk = ordered[start : start + INBOUND_BATCH]
            await self._redis.enqueue_job(
                PROCESS_BATCH_JOB, chunk, _job_id=f"inbound:{chunk[0]}-{chunk[-1]}:{len(chunk)}"
            )

    async def _wake_for_waiting(self) -> None:
        """One message at a time (the listener): one coalesced wake-up per WAKE_BUCKET per process,
        run after the bucket has ended, so it finds every row stored in it; no Redis round trip for
        the others. (A wake-up lost with Redis is the sweeper's, like any job.)"""
        bucket = int(asyncio.get_running_loop().time() / WAKE_BUCKET)
        if bucket in (self._last_wake, self._waking):  # queued, or being queued by another session
            return
        self._waking = bucket
        try:
            await self._redis.enqueue_job(WAITING_JOB, _defer_by=WAKE_BUCKET)
            self._last_wake = bucket  # only once it is queued: a failed enqueue is tried again next time
        finally:
            self._waking = -1


def send_batches(
    items: Sequence[tuple[int, datetime]], now: datetime, size: int = SEND_BATCH
) -> list[tuple[list[int], datetime]]:
    """Group (outbox id, due) into jobs: rows already due together, later rows by the minute they
    fall in (sent when the minute's last row is due: at most a minute late, never early); at most
    `size` ids per job, in id order."""
    buckets: dict[int, list[tuple[int, datetime]]] = {}  # 0: due now; n: in the n-th minute from now
    for outbox_id, when in items:
        key = 0 if when <= now else 1 + (when - now) // SEND_BUCKET
        buckets.setdefault(key, []).append((outbox_id, when))
    out: list[tuple[list[int], datetime]] = []
    for key in sorted(buckets):
        rows = sorted(buckets[key])
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            out.append(([i for i, _ in chunk], max(when for _, when in chunk)))
    return out


class RecordingQueue:
    """A queue that remembers what it was asked to do (unit tests and dry runs)."""

    def __init__(self) -> None:
        self.sends: list[tuple[int, datetime]] = []
        self.processes: list[int] = []

    async def send_mail(self, items: Sequence[tuple[int, datetime]]) -> None:
        self.sends.extend(items)

    async def process_inbound(self, ids: Sequence[int]) -> None:
        self.processes.extend(ids)
