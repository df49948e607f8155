"""The database goes away while the SMTP listener receives: 451 4.3.0 (never 250-then-lost), and the
sending MTA's retry succeeds once it is back. A throwaway PostgreSQL cluster of our own is stopped
(immediate mode, as in a crash) and started again."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import pytest
from sqlmodel import select

from nudger.inbound.listener import InboundHandler, start_listener
from nudger.mail.tokens import TokenKind
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate
from nudger.store.models import Inbound
from tests.faults.conftest import report
from tests.fixtures import identity, keys
from tests.services import HOST, free_port, tail, unavailable

pytestmark = pytest.mark.slow

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


class Postgres:
    """A PostgreSQL cluster in a temp dir (initdb as the postgres user, trust auth, fsync off)."""

    def __init__(self) -> None:
        initdb = shutil.which("initdb") or next(
            iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None
        )
        if initdb is None or os.geteuid() != 0 or shutil.which("runuser") is None:
            unavailable("a throwaway PostgreSQL needs root, runuser and initdb (apt-get install postgresql)")
        self.bin = Path(initdb).resolve().parent
        self.dir = Path(tempfile.mkdtemp(prefix="nudger-pg.", dir="/tmp"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o700)
        self.port = free_port()
        self._as_postgres(
            self.bin / "initdb", "-D", self.dir / "data", "-A", "trust", "-U", "nudger", "--no-sync"
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://nudger@{HOST}:{self.port}/postgres"

    def _as_postgres(self, *args: object) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, args)],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.decode()} {tail(self.dir / 'postgres.log')}")

    def start(self) -> None:
        options = f"-c listen_addresses={HOST} -p {self.port} -k {self.dir} -c fsync=off"
        self._as_postgres(
            self.bin / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "postgres.log", "-o", options,
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", self.dir / "data", "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextlib.asynccontextmanager
async def listener(url: str) -> AsyncIterator[tuple[int, SessionMaker]]:
    engine = make_engine(url)
    await migrate(engine)
    sessions = make_sessionmaker(engine)
    handler = InboundHandler(sessions, identity(), keys(), RecordingQueue(), lambda: NOW)
    port = free_port()
    server = await start_listener(handler, HOST, port, max_bytes=1_000_000)
    try:
        yield port, sessions
    finally:
        server.close()
        await server.wait_closed()
        await handler.aclose()
        await engine.dispose()


RCPT = identity().reply_address(keys().token(TokenKind.NUDGE, 7))


def reply(n: int) -> bytes:
    return (
        f"From: Ana <ana@corp.test>\r\nTo: {RCPT}\r\nSubject: Re: hello\r\n"
        f"Message-ID: <db-away-{n}@corp.test>\r\nDate: Tue, 01 Dec 2026 12:00:00 +0000\r\n\r\nAnswer {n}.\r\n"
    ).encode()


async def mta_sends(port: int, raw: bytes) -> int:
    """What a sending MTA sees: the final reply code to its DATA."""
    async with aiosmtplib.SMTP(hostname=HOST, port=port, local_hostname="mx.test", timeout=30) as smtp:
        try:
            await smtp.sendmail("ana@corp.test", [RCPT], raw)
        except aiosmtplib.SMTPResponseException as exc:
            return exc.code
    return 250


async def test_database_away_answers_451_and_the_retry_succeeds(own_postgres: Postgres) -> None:
    async with listener(own_postgres.url) as (port, sessions):
        before = await mta_sends(port, reply(1))
        own_postgres.stop("immediate")  # as in a crash: connections cut, nothing flushed politely
        while_away = [await mta_sends(port, reply(2)) for _ in range(2)]
        own_postgres.start()
        retried = await mta_sends(port, reply(2))  # the MTA's queue retries later
        again = await mta_sends(port, reply(2))  # and once more (it never heard our 250, say)
        async with sessions() as session:
            rows = (await session.exec(select(Inbound.message_id))).all()
    report(
        "57 database unavailable while the listener receives",
        "PostgreSQL stopped (-m immediate) between two deliveries, started again before the MTA's retry",
        before=before,
        while_away=while_away,
        retry=retried,
        second_retry=again,
        stored=len(rows),
        duplicated=len(rows) - len(set(rows)),
        lost=2 - len(set(rows)),
    )
    assert before == 250
    assert while_away == [451, 451]
    assert (retried, again) == (250, 250)
    assert sorted(rows) == ["<db-away-1@corp.test>", "<db-away-2@corp.test>"]
