"""The arq worker: every job and cron, each safe to run twice, each a thin call into a flow.

Start it with `nudger worker`. Run as
many workers as you like against one Redis and one database: rows are claimed, jobs are keyed by row,
crons are unique per tick, and the IMAP poller holds a Redis lock per mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, cast

from arq import Retry, cron, func
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker
from redis.exceptions import LockError, RedisError

from nudger.app import Services, open_services
from nudger.clock import Clock
from nudger.config import Secrets, Settings
from nudger.conversations.circles import close_rounds, nudge_quiet_circles
from nudger.errors import ImapError, StoreUnavailable
from nudger.inbound.accept import stale_inbound
from nudger.inbound.imap import ImapAccount, ImapMailbox
from nudger.inbound.ingest import Outcome as InboundOutcome
from nudger.inbound.ingest import process_inbound as process_inbound_flow
from nudger.inbound.ingest import process_inbound_many, process_received
from nudger.inbound.poll import max_message_bytes, poll_mailbox
from nudger.mail.outbox import Outcome, deliver, deliver_many, stale_work
from nudger.mail.smtp import Transport
from nudger.privacy import purge_raw_mail
from nudger.programmes.nudges import plan_due
from nudger.queue import redis_settings
from nudger.reports.send import send_due_reports
from nudger.store.db import transaction

log = logging.getLogger(__name__)

JOB_TIMEOUT = 120
PLAN_TIMEOUT = 3600
#: send batches one worker runs at once: two keep every pooled connection busy (one claims or writes
#: back while the other sends); more only multiply claims and write-backs competing for the CPU
SEND_BATCHES_AT_ONCE = 2
SHUTDOWN_GRACE = 20
INBOUND_GRACE = timedelta(minutes=2)
IMAP_LOCK_SECONDS = 300
REDIS_RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


def services(ctx: dict[str, Any]) -> Services:
    return cast(Services, ctx["services"])


async def send_batch(ctx: dict[str, Any], outbox_ids: list[int]) -> dict[str, int]:
    """Deliver a batch of outbox rows over the pooled connections; rows to try again later (a 4xx,
    not yet due, not reached in time) go back on the queue for their own time."""
    s = services(ctx)
    async with cast(asyncio.Semaphore, ctx["send_gate"]):
        now = s.clock.now()
        results = await deliver_many(
            s.sessions, s.transport, outbox_ids, now, concurrency=s.settings.smtp.connections
        )
    later = [
        (outbox_id, now + r.retry_in)
        for outbox_id, r in results.items()
        if r.outcome in (Outcome.RETRY, Outcome.NOT_DUE) and r.retry_in is not None
    ]
    await s.queue.send_mail(later)
    return dict(Counter(str(r.outcome) for r in results.values()))


async def send_mail(ctx: dict[str, Any], outbox_id: int) -> str:
    """One row (jobs queued before batches existed, or by hand)."""
    s = services(ctx)
    result = await deliver(s.sessions, s.transport, outbox_id, s.clock.now())
    if result.outcome in (Outcome.RETRY, Outcome.NOT_DUE) and result.retry_in is not None:
        raise Retry(defer=max(result.retry_in.total_seconds(), 1.0))
    return str(result.outcome)


async def process_inbound(ctx: dict[str, Any], inbound_id: int) -> str:
    s = services(ctx)
    try:
        outcome = await process_inbound_flow(s.sessions, s.ingest, s.queue, inbound_id, s.clock.now())
    except StoreUnavailable as exc:
        raise _inbound_retry(ctx, exc) from exc
    return _verdict(outcome)


def _verdict(outcome: InboundOutcome | None) -> str:
    """What a processing job reports for one message (None: another run processed it already)."""
    return outcome.verdict if outcome else "already processed"


def _inbound_retry(ctx: dict[str, Any], exc: StoreUnavailable) -> Retry:
    tries = int(ctx.get("job_try", 1))
    log.warning("%s; retrying (try %s)", exc, tries)
    return Retry(defer=min(5 * 2**tries, 300))


async def process_inbound_batch(ctx: dict[str, Any], inbound_ids: list[int]) -> dict[str, int]:
    """Process a batch of stored messages (the poller's, the sweeper's): chunked, one transaction a chunk."""
    s = services(ctx)
    try:
        outcomes = await process_inbound_many(s.sessions, s.ingest, s.queue, inbound_ids, s.clock.now())
    except StoreUnavailable as exc:
        raise _inbound_retry(ctx, exc) from exc
    return dict(Counter(map(_verdict, outcomes.values())))


#: a coalesced wake-up takes at most this many waiting rows per pass, and this many passes
WAITING_PASS, WAITING_PASSES = 1000, 20


async def process_waiting(ctx: dict[str, Any]) -> dict[str, int]:
    """A coalesced wake-up ("there is new mail", from the listener): every row still waiting."""
    s = services(ctx)
    verdicts: Counter[str] = Counter()
    for _ in range(WAITING_PASSES):
        try:
            outcomes = await process_received(
                s.sessions, s.ingest, s.queue, s.clock.now(), limit=WAITING_PASS
            )
        except StoreUnavailable as exc:
            raise _inbound_retry(ctx, exc) from exc
        verdicts.update(map(_verdict, outcomes.values()))
        if len(outcomes) < WAITING_PASS:
            break
    return dict(verdicts)


async def plan(ctx: dict[str, Any]) -> int:
    s = services(ctx)
    return await plan_due(s.sessions, s.settings.programmes, s.composer, s.queue, s.clock.now())


async def connect(ctx: dict[str, Any]) -> int:
    s = services(ctx)
    formed = await close_rounds(s.sessions, s.programmes, s.composer, s.queue, s.clock.now())
    await nudge_quiet_circles(s.sessions, s.programmes, s.composer, s.queue, s.clock.now())
    return formed


async def report(ctx: dict[str, Any]) -> int:
    s = services(ctx)
    return await send_due_reports(s, s.clock.now())


async def sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Re-enqueue work whose job was lost (worker killed, Redis emptied): the database is the truth."""
    s = services(ctx)
    now = s.clock.now()
    async with transaction(s.sessions) as session:
        outbox = await stale_work(session, now)
        inbound = await stale_inbound(session, now - INBOUND_GRACE)
        purged = await purge_raw_mail(session, now, s.settings.service.retention_days)
    await s.queue.send_mail(outbox)
    await s.queue.process_inbound(inbound)
    if outbox or inbound:
        log.info("sweeper re-enqueued %s outbox and %s inbound rows", len(outbox), len(inbound))
    return {"outbox": len(outbox), "inbound": len(inbound), "purged": purged}


def imap_account(s: Services) -> ImapAccount | None:
    cfg = s.settings.inbound.imap
    if cfg is None:
        return None
    return ImapAccount(
        host=cfg.host,
        port=cfg.port,
        tls=cfg.tls,
        username=cfg.username,
        password=s.secrets.imap_password,
        timeout=cfg.timeout_seconds,
    )


async def poll_imap(s: Services, client: ImapMailbox | None = None) -> int:
    """Poll every configured mailbox once, one poller per mailbox across all workers.

    With `client` (a connected mailbox, as the watching poller keeps one) that connection is used and
    left open; otherwise one is opened and closed for this pass.
    """
    cfg = s.settings.inbound.imap
    account = imap_account(s)
    if cfg is None or account is None:
        return 0
    stored = 0
    own = client is None
    mailbox_client = client or ImapMailbox(account)
    if own:
        await asyncio.to_thread(mailbox_client.connect)
    try:
        for mailbox in cfg.mailboxes:
            lock = (
                s.redis.lock(f"nudger:imap:{cfg.username}@{cfg.host}:{mailbox}", timeout=IMAP_LOCK_SECONDS)
                if s.redis is not None
                else None
            )
            if lock is not None and not await lock.acquire(blocking=False):
                log.info("another worker is polling %s; skipping", mailbox)
                continue
            try:
                result = await poll_mailbox(
                    s.sessions,
                    mailbox_client,
                    f"{cfg.username}@{cfg.host}",
                    mailbox,
                    s.queue,
                    s.clock.now,
                    batch_size=cfg.batch_size,
                    processed_mailbox=cfg.processed_mailbox,
                    max_bytes=max_message_bytes(s.settings.inbound),
                )
                stored += result.stored
            finally:
                if lock is not None:
                    with contextlib.suppress(LockError):  # it expired during a very long pass
                        await lock.release()
    finally:
        if own:
            await asyncio.to_thread(mailbox_client.close)
    return stored


async def poll(ctx: dict[str, Any]) -> int:
    try:
        return await poll_imap(services(ctx))
    except ImapError as exc:
        log.warning("IMAP poll failed (will try again next minute): %s", exc)
        return 0


def _job(coroutine: Any, name: str, *, max_tries: int | None = None, timeout: int = JOB_TIMEOUT) -> Function:
    return func(
        cast(WorkerCoroutine, coroutine), name=name, keep_result=0, max_tries=max_tries, timeout=timeout
    )


FUNCTIONS: list[Function | WorkerCoroutine] = [
    _job(send_batch, "send_batch", max_tries=20),
    _job(send_mail, "send_mail", max_tries=100),  # one row: jobs queued before batches existed
    _job(process_inbound, "process_inbound", max_tries=20),
    _job(process_inbound_batch, "process_inbound_batch", max_tries=20),
    _job(process_waiting, "process_waiting", max_tries=20, timeout=600),
    # planning a round for 100 000 people takes minutes while its first batches already go out; it
    # commits every chunk and picks up where it stopped, so a long timeout loses nothing
    _job(plan, "plan", timeout=PLAN_TIMEOUT),
    _job(connect, "connect"),
    _job(report, "report"),
    _job(sweep, "sweep"),
    _job(poll, "poll"),
]

CRON_JOBS = [
    cron(cast(WorkerCoroutine, plan), name="cron:plan", minute=set(range(0, 60, 5)), run_at_startup=True),
    cron(cast(WorkerCoroutine, connect), name="cron:connect", minute=set(range(2, 60, 5))),
    cron(cast(WorkerCoroutine, sweep), name="cron:sweep", second={30}),
    cron(cast(WorkerCoroutine, poll), name="cron:poll", second={0}),
    cron(cast(WorkerCoroutine, report), name="cron:report", minute={17}),
]


class NudgerWorker(Worker):
    """arq's Worker, except that a Redis outage is waited out (with backoff) instead of ending it.

    Plain arq lets the ConnectionError of its next poll end the process; then everything queued in that
    worker is gone until a supervisor restarts it. Here the worker keeps its jobs running (they write
    to the database, the truth), retries Redis with backoff, and carries on where Redis left it: if
    Redis came back empty, the sweeper re-enqueues from the database.
    """

    _redis_failures = 0

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:  # ConnectionError, TimeoutError, WatchError on a lost link
            if await self._redis_answers():
                # a job that ran through the outage could not record its result: its row is the truth
                log.warning("a job's result could not be recorded in Redis: %s", exc)
                return
            delay = REDIS_RETRY_DELAYS[min(self._redis_failures, len(REDIS_RETRY_DELAYS) - 1)]
            self._redis_failures += 1
            log.warning("Redis unavailable (%s); retrying in %ss", exc, delay)
            await asyncio.sleep(delay)
            return
        if self._redis_failures:
            log.warning("Redis is back after %s failed polls", self._redis_failures)
            self._redis_failures = 0

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, without the jobs this worker is running already.

        A queued job stays in the queue until it finishes, so every poll reads the running ones
        again, and arq asks Redis about each (WATCH, EXISTS, ZSCORE) only to find it in progress.
        With send batches waiting their turn at the send gate that is about 60 round trips every
        poll (1 000 a second) for nothing; whether a job runs here is known without asking.
        """
        mine = self.tasks
        await super().start_jobs([j for j in job_ids if j.decode() not in mine])

    async def _redis_answers(self) -> bool:
        try:
            await self.pool.ping()
        except (RedisError, OSError):
            return False
        return True


def build_worker(
    settings: Settings,
    secrets: Secrets,
    *,
    burst: bool = False,
    clock: Clock | None = None,
    transport: Transport | None = None,
    crons: bool = True,
    poll_delay: float = 0.05,
    max_jobs: int = 20,
    handle_signals: bool = True,
) -> Worker:
    """An arq Worker wired to nudger's jobs; its start-up opens the services (and migrates)."""
    stack = AsyncExitStack()

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["send_gate"] = asyncio.Semaphore(SEND_BATCHES_AT_ONCE)
        ctx["services"] = await stack.enter_async_context(
            open_services(settings, secrets, clock=clock, transport=transport)
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        await stack.aclose()

    return NudgerWorker(
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS if crons else None,
        redis_settings=redis_settings(settings.redis.url),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        poll_delay=poll_delay,
        max_jobs=max_jobs,
        job_timeout=JOB_TIMEOUT,
        keep_result=0,
        health_check_interval=30,
        handle_signals=handle_signals,
        # on SIGTERM/SIGINT: stop taking jobs, give running ones this long to finish, then cancel
        # (a cancelled send is retried: arq re-queues it, the outbox row makes it safe)
        job_completion_wait=SHUTDOWN_GRACE,
    )
