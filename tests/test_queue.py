"""How outbox rows are grouped into send jobs, and that the jobs really reach Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from nudger.clock import ManualClock
from nudger.queue import SEND_BATCH, ArqQueue, send_batches

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_rows_due_now_share_jobs_of_at_most_a_batch_in_id_order() -> None:
    items = [(i, NOW - timedelta(minutes=i % 3)) for i in range(SEND_BATCH * 2 + 5, 0, -1)]
    batches = send_batches(items, NOW)
    assert [len(ids) for ids, _ in batches] == [SEND_BATCH, SEND_BATCH, 5]
    assert [i for ids, _ in batches for i in ids] == list(range(1, SEND_BATCH * 2 + 6))
    assert all(when <= NOW for _, when in batches)


def test_later_rows_go_by_minute_never_early_and_at_most_a_minute_late() -> None:
    times = {
        1: NOW + timedelta(seconds=10),
        2: NOW + timedelta(seconds=50),
        3: NOW + timedelta(seconds=70),
        4: NOW,
    }
    batches = send_batches(list(times.items()), NOW)
    assert batches == [([4], NOW), ([1, 2], times[2]), ([3], times[3])]
    for ids, when in batches:
        assert all(times[i] <= when < times[i] + timedelta(minutes=1) for i in ids)


@pytest.mark.slow
async def test_a_round_reaches_redis_as_batches(redis_url: str) -> None:
    from arq import create_pool
    from arq.jobs import Job

    from nudger.queue import redis_settings

    pool = await create_pool(redis_settings(redis_url))
    try:
        await pool.flushdb()
        items = [(i, NOW) for i in range(1, 451)]
        await ArqQueue(pool, ManualClock(NOW)).send_mail(items)
        await ArqQueue(pool, ManualClock(NOW)).send_mail(items[:3])  # queued again: a harmless extra job
        jobs = [await Job(j.decode(), pool).info() for j in await pool.zrange("arq:queue", 0, -1)]
        carried = sorted(i for job in jobs if job is not None for i in job.args[0])
        assert {job.function for job in jobs if job is not None} == {"send_batch"}
        assert len(jobs) == 4
        assert carried == sorted([*range(1, 451), 1, 2, 3])
    finally:
        await pool.flushdb()
        await pool.aclose()


@pytest.mark.slow
async def test_inbound_goes_in_batches_and_single_stores_share_one_wake_up(redis_url: str) -> None:
    from arq import create_pool
    from arq.jobs import Job

    from nudger.queue import INBOUND_BATCH, WAKE_BUCKET, redis_settings

    pool = await create_pool(redis_settings(redis_url))
    try:
        await pool.flushdb()
        queue = ArqQueue(pool, ManualClock(NOW))
        await queue.process_inbound(list(range(1, INBOUND_BATCH + 51)))  # the poller's batch
        for inbound_id in range(1000, 1010):  # the listener: one message at a time, in a burst
            await queue.process_inbound([inbound_id])
        jobs = [await Job(j.decode(), pool).info() for j in await pool.zrange("arq:queue", 0, -1)]
        by_function: dict[str, list[object]] = {}
        for job in jobs:
            assert job is not None
            by_function.setdefault(job.function, []).append(job.args)
        assert sorted(len(args[0]) for args in by_function["process_inbound_batch"]) == [50, INBOUND_BATCH]
        assert len(by_function["process_waiting"]) <= 2  # one per half-second bucket the burst touched

        await pool.flushdb()  # concurrent SMTP sessions: the first session's enqueue is still in flight
        await asyncio.sleep(WAKE_BUCKET)  # a new bucket
        await asyncio.gather(*(queue.process_inbound([i]) for i in range(2000, 2008)))
        assert 1 <= len(await pool.zrange("arq:queue", 0, -1)) <= 2
    finally:
        await pool.flushdb()
        await pool.aclose()
