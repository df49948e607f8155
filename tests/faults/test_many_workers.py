"""Scaling out: three workers (processes) on PostgreSQL send one round, with every send job enqueued
twice under different arq job ids, so that arq cannot keep two workers off one row: only the row claim
in the database can. And three pollers at once on one mailbox: the Redis lock lets one poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from arq.jobs import Job
from sqlmodel import select

from nudger.app import open_services
from nudger.config import parse_settings
from nudger.inbound.imap import FetchedMessage, ImapMailbox
from nudger.store.models import Inbound, Outbox, OutboxStatus
from nudger.worker import poll_imap
from tests.faults.conftest import (
    ROUND_SIZE,
    START,
    Children,
    RedisProcess,
    Sink,
    arq_redis,
    enqueue_pending,
    eventually,
    fault_settings,
    people,
    report,
    secrets,
    status_counts,
    write_config,
)
from tests.faults.test_imap_faults import mail
from tests.services import LD_USER, DovecotServer, imap_connect

pytestmark = pytest.mark.slow

WORKERS = 3


async def test_three_workers_send_one_round_without_a_double_send(
    round_db: str, redis_proc: RedisProcess, sink: Sink, children: Children, tmp_path: Path
) -> None:
    settings = fault_settings(round_db, redis_proc.url, sink.port)
    assert await enqueue_pending(round_db, redis_proc.url) == ROUND_SIZE
    async with arq_redis(redis_proc.url) as redis:  # and a one-row job for every row, under another id
        batches = await redis.zrange("arq:queue", 0, -1, withscores=True)
        for job_id, _score in batches:
            info = await Job(job_id.decode(), redis).info()
            assert info is not None
            for outbox_id in info.args[0]:
                await redis.enqueue_job("send_mail", outbox_id, _job_id=f"again:{outbox_id}")
        # the batches come due a moment after the one-row jobs: every worker takes one-row jobs (a
        # poll takes at most 20), while the batches claim the same rows under them
        await redis.zadd("arq:queue", {job_id: score + 500 for job_id, score in batches})
        jobs = await redis.zcard("arq:queue")
    config = write_config(tmp_path, "worker", settings, at=START)
    workers = [children.worker(config, name=f"worker{n}") for n in range(WORKERS)]

    async def drained() -> bool:
        for worker in workers:
            assert worker.alive, worker.output()
        async with arq_redis(redis_proc.url) as redis:
            return int(await redis.zcard("arq:queue")) == 0

    assert await eventually(drained, 240), [w.output(10) for w in workers]
    for worker in workers:
        worker.stop()
    final = await status_counts(round_db, Outbox)
    by_id = sink.by_message_id()
    received = sum(by_id.values())
    lost = len(set(people(ROUND_SIZE)) - sink.recipients())
    shares = [w.log.read_text(errors="replace").count("sent outbox=") for w in workers]
    report(
        "58 three workers, one round",
        f"{WORKERS} worker processes on PostgreSQL; {jobs} jobs for {ROUND_SIZE} rows (each row in a batch"
        " job and in a one-row job)",
        sent=final[OutboxStatus.SENT],
        received=received,
        duplicated=received - len(by_id),
        lost=lost,
        sends_per_worker=shares,
    )
    assert dict(final) == {OutboxStatus.SENT: ROUND_SIZE}
    assert received == len(by_id) == ROUND_SIZE
    assert lost == 0
    assert sum(shares) == ROUND_SIZE
    assert sum(share > 0 for share in shares) >= 2  # the work was shared: the claims really competed


async def test_one_poller_per_mailbox_at_a_time(
    pg_url: str,
    redis_proc: RedisProcess,
    dovecot: DovecotServer,
    fresh_mailbox: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    count = 30
    with imap_connect(dovecot) as client:
        for n in range(count):
            client.append(fresh_mailbox, mail(100 + n))
    raw = fault_settings(
        pg_url,
        redis_proc.url,
        25,
        inbound={
            "imap": {
                "host": dovecot.host,
                "port": dovecot.port,
                "tls": "none",
                "username": LD_USER,
                "mailboxes": [fresh_mailbox],
                "batch_size": 10,
            }
        },
    )
    settings = parse_settings(raw, "fault settings")
    fetched: Counter[int] = Counter()
    real_fetch = ImapMailbox.fetch
    others_tried = threading.Event()

    class Skips(logging.Handler):
        seen = 0

        def emit(self, record: logging.LogRecord) -> None:
            if "another worker is polling" in record.getMessage():
                Skips.seen += 1
                if Skips.seen == WORKERS - 1:
                    others_tried.set()

    def slow_fetch(self: ImapMailbox, uids: Sequence[int]) -> list[FetchedMessage]:
        others_tried.wait(10)  # a slow server: the first poller still holds the mailbox meanwhile
        found = real_fetch(self, uids)
        fetched.update(m.uid for m in found)
        return found

    monkeypatch.setattr(ImapMailbox, "fetch", slow_fetch)
    caplog.set_level(logging.INFO, logger="nudger.worker")
    skips = Skips()
    logging.getLogger("nudger.worker").addHandler(skips)
    async with contextlib.AsyncExitStack() as stack:
        pollers = [
            await stack.enter_async_context(open_services(settings, secrets(dovecot.users[LD_USER])))
            for _ in range(WORKERS)
        ]
        try:
            results = await asyncio.gather(*(poll_imap(s) for s in pollers))
        finally:
            logging.getLogger("nudger.worker").removeHandler(skips)
        async with pollers[0].sessions() as session:
            rows = (await session.exec(select(Inbound.uid))).all()
    skipped = sum("another worker is polling" in r.getMessage() for r in caplog.records)
    report(
        "58 three pollers, one mailbox",
        f"{WORKERS} pollers started together on one mailbox of {count} messages (a slow FETCH)",
        polled=WORKERS - skipped,
        skipped_by_lock=skipped,
        stored=len(rows),
        fetched_twice=sum(n > 1 for n in fetched.values()),
    )
    assert sorted(results) == [0] * (WORKERS - 1) + [count]
    assert skipped == WORKERS - 1
    assert len(rows) == len(set(rows)) == count
    assert all(n == 1 for n in fetched.values())
