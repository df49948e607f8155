"""Fault-injection harness: child processes (worker, poller, sink), a restartable Redis, a fresh
PostgreSQL schema per test, and the fault report printed at the end of the run (CI keeps it).

Every fault test calls `report(...)` with what it injected and what it counted; the lines are printed
when the test runs and again, all together, in a "fault injection report" section of pytest's summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from arq import create_pool
from arq.connections import ArqRedis
from sqlalchemy import func, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select

from nudger.app import open_services
from nudger.clock import ManualClock
from nudger.config import Secret, Secrets, parse_settings
from nudger.programmes.nudges import plan_due
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.queue import ArqQueue, redis_settings
from nudger.store.db import make_engine, make_sessionmaker, transaction
from nudger.store.models import Inbound, Outbox, OutboxStatus
from tests.fixtures import DOMAIN, SIGNING_KEY, _reset_postgres, settings_dict
from tests.services import DEFAULT_PG_URL, HOST, free_port, redis_ping, tail, unavailable, wait_until

ROOT = Path(__file__).resolve().parents[2]
#: a Tuesday after 10:00 UTC: the weekly programme's round is due for everyone in UTC
START = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)
FAULT_REPORT: list[str] = []


def report(fault: str, injected: str, **counted: object) -> str:
    """Print (and keep for the summary) one line: the fault, what was injected, what was counted."""
    figures = ", ".join(f"{key}={value}" for key, value in counted.items())
    line = f"FAULT {fault}: injected: {injected} | counted: {figures}"
    print(line)
    FAULT_REPORT.append(line)
    return line


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FAULT_REPORT:
        terminalreporter.section("fault injection report (tests/faults)")
        for line in FAULT_REPORT:
            terminalreporter.write_line(line)


async def eventually(check: Callable[[], Awaitable[bool]], within: float, interval: float = 0.1) -> bool:
    """Await `check` until it is true or `within` seconds pass (a bounded wait, not a time assertion)."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------- child processes


class Child:
    """A `python -m tests.faults.runner ...` child, its output in a log file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.runner", *args],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the OOM killer or a power cut strikes."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, grace: float = 15.0) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self, lines: int = 40) -> str:
        return tail(self.log, lines)


@dataclass
class Children:
    folder: Path
    started: list[Child] = field(default_factory=list)

    def start(self, *args: str, name: str) -> Child:
        child = Child(list(args), self.folder / f"{name}.log")
        self.started.append(child)
        return child

    def worker(self, config: Path, name: str = "worker") -> Child:
        return self.start("worker", str(config), name=name)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    kids = Children(tmp_path)
    yield kids
    for child in kids.started:
        child.kill()


# --------------------------------------------------------------------------- Redis we can restart


class RedisProcess:
    """A redis-server without persistence on a fixed port: killed, it comes back empty."""

    def __init__(self, folder: Path) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server not found on PATH (apt-get install redis-server)")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        with (self.folder / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--bind", HOST, "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--dir", str(self.folder)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if not wait_until(lambda: redis_ping(self.port), 10.0):
            raise RuntimeError(f"redis-server did not start: {tail(self.folder / 'redis.log')}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisProcess(folder)
    server.start()
    yield server
    server.kill()


# --------------------------------------------------------------------------- PostgreSQL, sink


ROUND_SIZE = 2000


def _admin_url() -> URL:
    return make_url(os.environ.get("NUDGER_TEST_PG_URL", DEFAULT_PG_URL)).set(drivername="postgresql+asyncpg")


async def _pg(statement: str) -> None:
    engine = create_async_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def round_template(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database holding one planned round of ROUND_SIZE nudges (composed once: that is the slow
    part), used as a PostgreSQL template so that each test starts from a copy of it."""
    name = f"nudger_fault_tpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    url = _admin_url().set(database=name).render_as_string(hide_password=False)
    try:
        # the jobs this enqueues go to a scratch Redis that is thrown away: tests enqueue their own
        folder = tmp_path_factory.mktemp("template-redis")
        scratch = RedisProcess(folder)
        scratch.start()
        try:
            planned = asyncio.run(plan_round(fault_settings(url, scratch.url, 25), people(ROUND_SIZE)))
        finally:
            scratch.kill()
        assert planned == ROUND_SIZE
        yield name
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def round_db(round_template: str) -> Iterator[str]:
    """A fresh copy of the planned round: ROUND_SIZE people, nudges and pending outbox rows."""
    name = f"nudger_fault_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}" TEMPLATE "{round_template}"'))
    try:
        yield _admin_url().set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def enqueue_pending(db_url: str, redis_url: str) -> int:
    """Enqueue a send job for every pending outbox row (what planning did, into this test's Redis)."""
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            pending = select(Outbox.id, Outbox.next_attempt_at).where(
                col(Outbox.status) == OutboxStatus.PENDING
            )
            rows = (await session.exec(pending)).all()
    finally:
        await engine.dispose()
    async with arq_redis(redis_url) as pool:
        await ArqQueue(pool, ManualClock(START)).send_mail([(int(i), when) for i, when in rows if i])
    return len(rows)


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """The session's PostgreSQL database with an empty schema (emptied again afterwards)."""
    asyncio.run(_reset_postgres(postgres_url))
    yield postgres_url
    asyncio.run(_reset_postgres(postgres_url))


@dataclass
class Sink:
    """An aiosmtpd sink in a process of its own: what reached it survives any worker's death."""

    port: int
    log: Path

    def records(self) -> list[dict[str, str]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def by_message_id(self) -> Counter[str]:
        return Counter(r["message_id"] for r in self.records())

    def recipients(self) -> set[str]:
        return {r["rcpt"] for r in self.records()}


def _accepts(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1) as sock:
        return sock.recv(64).startswith(b"220")
    return False


@pytest.fixture
def sink(children: Children, tmp_path: Path) -> Sink:
    port = free_port()
    log = tmp_path / "sink.jsonl"
    child = children.start("sink", str(port), str(log), name="sink")
    if not wait_until(lambda: _accepts(port), 15.0):
        raise RuntimeError(f"the sink did not start: {child.output()}")
    return Sink(port, log)


# --------------------------------------------------------------------------- settings and a round


def secrets(imap_password: str = "") -> Secrets:
    return Secrets(Secret(SIGNING_KEY), Secret(""), Secret(imap_password))


def fault_settings(db_url: str, redis_url: str, smtp_port: int, **overrides: Any) -> dict[str, Any]:
    return settings_dict(
        database={"url": db_url},
        redis={"url": redis_url},
        smtp={"host": HOST, "port": smtp_port, "tls": "none", "connections": 8, "timeout_seconds": 10},
        **overrides,
    )


def write_config(
    folder: Path,
    name: str,
    settings: dict[str, Any],
    *,
    at: datetime | None = None,
    imap_password: str = "",
    crons: bool = False,
) -> Path:
    path = folder / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "settings": settings,
                "imap_password": imap_password,
                "at": at.isoformat() if at else None,
                "crons": crons,
            }
        )
    )
    return path


def people(count: int) -> list[str]:
    return [f"p{n:05d}@{DOMAIN}" for n in range(count)]


async def plan_round(settings: dict[str, Any], addresses: list[str], at: datetime = START) -> int:
    """These people, one round planned at `at`: nudges, outbox rows, and send jobs in Redis."""
    parsed = parse_settings(settings, "fault settings")
    async with open_services(parsed, secrets(), clock=ManualClock(at)) as s:
        async with transaction(s.sessions) as session:
            rows = [
                RosterRow(n, address, f"Person {n}", f"team{n % 7}", "UTC")
                for n, address in enumerate(addresses)
            ]
            await upsert_people(session, rows, parsed.programmes, at, consent_how="test")
        return await plan_due(s.sessions, parsed.programmes, s.composer, s.queue, at)


@contextlib.asynccontextmanager
async def arq_redis(url: str) -> AsyncIterator[ArqRedis]:
    """An arq pool on `url` (it is a redis.asyncio.Redis too)."""
    pool = await create_pool(redis_settings(url))
    try:
        yield pool
    finally:
        await pool.aclose()


async def status_counts(db_url: str, model: type[Outbox] | type[Inbound]) -> Counter[str]:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.exec(select(model.status, func.count()).group_by(model.status))
            return Counter({str(status): int(n) for status, n in rows.all()})
    finally:
        await engine.dispose()


async def expire_in_progress(redis_url: str) -> int:
    """What the passing of time does to a dead worker's arq claims (TTL = job timeout + 10 s)."""
    async with arq_redis(redis_url) as redis:
        keys = [key async for key in redis.scan_iter(match="arq:in-progress:*")]
        for key in keys:
            await redis.delete(key)
        return len(keys)


async def sweep_until(redis_url: str, done: Callable[[], Awaitable[bool]], within: float) -> bool:
    """Enqueue the sweeper (the cron does so every minute) until `done()` holds."""

    async def check() -> bool:
        if await done():
            return True
        async with arq_redis(redis_url) as redis:
            await redis.enqueue_job("sweep")
        return False

    return await eventually(check, within, interval=1.0)


async def round_a_third_through(
    round_db: str, redis_proc: RedisProcess, sink: Sink, children: Children, tmp_path: Path
) -> Child:
    """Queue the planned round, start one worker, and return it once a third of the round reached the
    sink (the moment the round-level faults strike)."""
    settings = fault_settings(round_db, redis_proc.url, sink.port)
    assert await enqueue_pending(round_db, redis_proc.url) == ROUND_SIZE
    worker = children.worker(write_config(tmp_path, "worker", settings, at=START))

    async def a_third_arrived() -> bool:
        assert worker.alive, worker.output()
        return len(sink.records()) >= ROUND_SIZE // 3

    assert await eventually(a_third_arrived, 180), worker.output()
    return worker
