"""Redis restarted empty (no AOF) in the middle of a round: the queue is rebuilt from the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudger.store.models import Outbox, OutboxStatus
from tests.faults.conftest import (
    ROUND_SIZE,
    Children,
    RedisProcess,
    Sink,
    arq_redis,
    people,
    report,
    round_a_third_through,
    status_counts,
    sweep_until,
)

pytestmark = pytest.mark.slow


async def test_redis_restarted_empty_mid_round_loses_nothing(
    round_db: str, redis_proc: RedisProcess, sink: Sink, children: Children, tmp_path: Path
) -> None:
    worker = await round_a_third_through(round_db, redis_proc, sink, children, tmp_path)
    redis_proc.kill()
    at_restart = await status_counts(round_db, Outbox)
    received_at_restart = len(sink.records())
    redis_proc.start()
    async with arq_redis(redis_proc.url) as redis:
        jobs_left = await redis.zcard("arq:queue")

    async def all_sent() -> bool:
        assert worker.alive, worker.output()  # it must ride out the outage, not exit
        return (await status_counts(round_db, Outbox))[OutboxStatus.SENT] == ROUND_SIZE

    settled = await sweep_until(redis_proc.url, all_sent, 240)
    worker_survived = worker.alive
    worker.stop()
    final = await status_counts(round_db, Outbox)
    by_id = sink.by_message_id()
    received = sum(by_id.values())
    lost = len(set(people(ROUND_SIZE)) - sink.recipients())
    report(
        "52 Redis restarted empty mid-round",
        f"redis-server SIGKILLed after {received_at_restart}/{ROUND_SIZE} nudges reached the sink "
        f"({at_restart[OutboxStatus.PENDING]} rows still pending), restarted empty ({jobs_left} jobs left)",
        sent=final[OutboxStatus.SENT],
        received=received,
        duplicated=received - len(by_id),
        lost=lost,
        worker_survived=worker_survived,
    )
    assert settled, worker.output()
    assert lost == 0
    assert received == len(by_id) == ROUND_SIZE
