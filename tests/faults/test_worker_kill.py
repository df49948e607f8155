"""A worker SIGKILLed in the middle of a round (and in the middle of ingestion), then restarted.

PostgreSQL, a real Redis, the worker in a child process and the SMTP sink in another: what reached the
sink is counted there, what the database believes is counted there. Restarting "11 minutes later" is a
worker whose clock reads START + 11 min (the stale-claim threshold is 10 minutes) with arq's in-progress
keys expired (their TTL is the job timeout + 10 s, long gone by then in real life).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, parseaddr
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from nudger.clock import ManualClock
from nudger.inbound.accept import Position, store_raw
from nudger.queue import ArqQueue
from nudger.store.db import make_engine, make_sessionmaker, transaction
from nudger.store.models import Inbound, InboundStatus, Nudge, NudgeStatus, Outbox, OutboxStatus, Reply
from tests.faults.conftest import (
    ROUND_SIZE,
    START,
    Children,
    RedisProcess,
    Sink,
    arq_redis,
    eventually,
    expire_in_progress,
    fault_settings,
    people,
    report,
    round_a_third_through,
    status_counts,
    sweep_until,
    write_config,
)

pytestmark = pytest.mark.slow

REPLIES = 600


async def test_worker_sigkill_mid_round_loses_nothing(
    round_db: str, redis_proc: RedisProcess, sink: Sink, children: Children, tmp_path: Path
) -> None:
    settings = fault_settings(round_db, redis_proc.url, sink.port)
    worker = await round_a_third_through(round_db, redis_proc, sink, children, tmp_path)
    worker.kill()
    at_kill = await status_counts(round_db, Outbox)
    received_at_kill = len(sink.records())
    in_flight = at_kill[OutboxStatus.SENDING]
    expired = await expire_in_progress(redis_proc.url)

    later = START + timedelta(minutes=11)
    restarted = children.worker(write_config(tmp_path, "restarted", settings, at=later), name="restarted")

    async def all_sent() -> bool:
        assert restarted.alive, restarted.output()
        return (await status_counts(round_db, Outbox))[OutboxStatus.SENT] == ROUND_SIZE

    settled = await sweep_until(redis_proc.url, all_sent, 240)
    restarted.stop()
    final = await status_counts(round_db, Outbox)
    by_id = sink.by_message_id()
    received = sum(by_id.values())
    duplicated = received - len(by_id)
    lost = len(set(people(ROUND_SIZE)) - sink.recipients())
    report(
        "51 worker SIGKILL mid-send",
        f"SIGKILL after {received_at_kill}/{ROUND_SIZE} nudges reached the sink; "
        f"{in_flight} rows were 'sending', {expired} arq claims left behind; restarted 11 min later",
        sent=final[OutboxStatus.SENT],
        received=received,
        duplicated=duplicated,
        lost=lost,
        in_flight_at_kill=in_flight,
    )
    assert settled, f"{final}; {restarted.output()}"
    assert lost == 0
    assert len(by_id) == ROUND_SIZE  # one Message-ID per person, re-used by any re-send
    assert duplicated <= in_flight
    assert dict(final) == {OutboxStatus.SENT: ROUND_SIZE}


def reply_for(raw: bytes, sender: str, n: int) -> bytes:
    nudge = BytesHeaderParser(policy=compat32).parsebytes(raw)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = str(nudge["Reply-To"])
    msg["Subject"] = f"Re: {nudge['Subject']}"
    msg["Date"] = format_datetime(START + timedelta(hours=1))
    msg["Message-ID"] = f"<fault-reply-{n}@corp.test>"
    msg["In-Reply-To"] = str(nudge["Message-ID"])
    msg.set_content(f"Answer number {n}: I learned to check the logs before guessing.")
    return msg.as_bytes()


async def store_replies(db_url: str, count: int) -> list[int]:
    """The round went out; `count` people answered and the listener stored their replies."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        async with transaction(sessions) as session:
            await session.exec(update(Outbox).values(status=OutboxStatus.SENT, sent_at=START))
            await session.exec(update(Nudge).values(status=NudgeStatus.SENT, sent_at=START))
            rows = (await session.exec(select(Outbox).order_by(col(Outbox.id)).limit(count))).all()
            ids = []
            for n, row in enumerate(rows):
                sender = parseaddr(row.to_addr)[1]
                stored = await store_raw(
                    session, reply_for(row.raw, sender, n), Position("smtp"), START + timedelta(hours=1)
                )
                assert stored is not None
                ids.append(stored)
        return ids
    finally:
        await engine.dispose()


async def test_worker_sigkill_mid_ingestion_stores_no_reply_twice(
    round_db: str, redis_proc: RedisProcess, sink: Sink, children: Children, tmp_path: Path
) -> None:
    settings = fault_settings(round_db, redis_proc.url, sink.port)
    ids = await store_replies(round_db, REPLIES)
    async with arq_redis(redis_proc.url) as redis:
        from arq.connections import ArqRedis

        await ArqQueue(ArqRedis(connection_pool=redis.connection_pool), ManualClock(START)).process_inbound(
            ids
        )
    at = START + timedelta(hours=1)
    worker = children.worker(write_config(tmp_path, "worker", settings, at=at))

    async def a_third_processed() -> bool:
        assert worker.alive, worker.output()
        return (await status_counts(round_db, Inbound))[InboundStatus.PROCESSED] >= REPLIES // 3

    assert await eventually(a_third_processed, 180), worker.output()
    worker.kill()
    at_kill = await status_counts(round_db, Inbound)
    in_flight = at_kill[InboundStatus.PROCESSING]
    expired = await expire_in_progress(redis_proc.url)
    later = at + timedelta(minutes=15)  # past the sweeper's grace (2 min) + stale claim (10 min)
    restarted = children.worker(write_config(tmp_path, "restarted", settings, at=later), name="restarted")

    async def all_processed() -> bool:
        assert restarted.alive, restarted.output()
        return (await status_counts(round_db, Inbound))[InboundStatus.PROCESSED] == REPLIES

    settled = await sweep_until(redis_proc.url, all_processed, 180)
    restarted.stop()
    engine = make_engine(round_db)
    try:
        async with make_sessionmaker(engine)() as session:
            replies = (await session.exec(select(Reply.inbound_id, Reply.nudge_id))).all()
            verdicts = Counter((await session.exec(select(Inbound.verdict))).all())
    finally:
        await engine.dispose()
    per_message = Counter(inbound for inbound, _ in replies)
    per_nudge = Counter(nudge for _, nudge in replies)
    duplicated = sum(n - 1 for n in per_message.values()) + sum(n - 1 for n in per_nudge.values())
    report(
        "51 worker SIGKILL mid-ingest",
        f"SIGKILL after {at_kill[InboundStatus.PROCESSED]}/{REPLIES} stored replies were processed; "
        f"{in_flight} rows were 'processing', {expired} arq claims left behind; restarted 15 min later",
        processed=sum(verdicts.values()),
        replies_stored=len(replies),
        duplicated=duplicated,
        lost=REPLIES - len(per_message),
        verdicts=dict(verdicts),
    )
    assert settled, restarted.output()
    assert duplicated == 0
    assert len(per_message) == REPLIES
    assert verdicts == Counter({"reply": REPLIES})
