"""The worker's poll on a real Redis: jobs it is already running cost no Redis round trips."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq import create_pool
from arq.worker import func

from nudger.queue import redis_settings
from nudger.worker import NudgerWorker

pytestmark = pytest.mark.slow


async def _watch_calls(pool: Any) -> int:
    stats = await pool.info("commandstats")
    return int(stats.get("cmdstat_watch", {}).get("calls", 0))


async def test_a_busy_worker_does_not_ask_redis_about_its_own_running_jobs(redis_url: str) -> None:
    release = asyncio.Event()
    started: list[int] = []

    async def parked(ctx: dict[str, Any], n: int) -> int:  # like a send batch waiting at the gate
        started.append(n)
        await release.wait()
        return n

    pool = await create_pool(redis_settings(redis_url))
    try:
        await pool.flushdb()
        for n in range(5):
            await pool.enqueue_job("parked", n)
        worker = NudgerWorker(
            functions=[func(parked, name="parked")],
            redis_settings=redis_settings(redis_url),
            burst=True,
            poll_delay=0.05,
            max_jobs=20,
            keep_result=0,
            handle_signals=False,
        )
        running = asyncio.create_task(worker.main())
        for _ in range(200):
            if len(started) == 5:
                break
            await asyncio.sleep(0.02)
        assert sorted(started) == [0, 1, 2, 3, 4]

        before = await _watch_calls(pool)
        await asyncio.sleep(0.6)  # about a dozen polls while all five jobs are still running
        asked = await _watch_calls(pool) - before
        # arq alone checks each queued job id with WATCH/EXISTS/ZSCORE on every poll: ~60 here
        assert asked == 0

        await pool.enqueue_job("parked", 5)  # a new job is still picked up while the others run
        for _ in range(200):
            if 5 in started:
                break
            await asyncio.sleep(0.02)
        assert 5 in started
        release.set()
        await asyncio.wait_for(running, 30)  # burst: returns once the queue is empty
        assert sorted(started) == [0, 1, 2, 3, 4, 5]  # each ran once
        assert await pool.zcard("arq:queue") == 0
        await worker.close()
    finally:
        await pool.flushdb()
        await pool.aclose()
