"""Send benchmark: a round for N people, planned → rendered → outbox → delivered by the real arq worker
through aiosmtplib to an aiosmtpd sink in a separate process, against the ceiling measured in the same
run (raw aiosmtplib with the same connection count to the same sink, no nudger code).

    python bench/send.py --people 2000

Prints messages/s for both and their ratio. Needs `redis-server` on PATH (a private one is started).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from nudger.app import open_services
from nudger.clock import ManualClock
from nudger.config import Secret, Secrets, parse_settings
from nudger.embedded import free_port, local_redis
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.store.db import transaction
from nudger.worker import build_worker

START = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)


def _sink_process(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    from aiosmtpd.smtp import SMTP

    class Counter:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: SMTP(Counter(), hostname="sink"), "127.0.0.1", port)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def ceiling(port: int, count: int, connections: int) -> float:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@bench.test", "b@bench.test", "ceiling"
    msg.set_content("x" * 1500)
    raw = msg.as_bytes()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def pump() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench") as client:
            while not queue.empty():
                queue.get_nowait()
                await client.sendmail("a@bench.test", ["b@bench.test"], raw)

    t0 = time.perf_counter()
    await asyncio.gather(*(pump() for _ in range(connections)))
    return count / (time.perf_counter() - t0)


async def nudger_round(port: int, people: int, connections: int, folder: Path) -> dict[str, float]:
    async with local_redis(folder) as redis_url:
        settings = parse_settings(
            {
                "service": {"from_address": "nudger@bench.test", "reply_domain": "reply.bench.test"},
                "database": {"url": f"sqlite+aiosqlite:///{folder / 'bench.db'}"},
                "redis": {"url": redis_url},
                "smtp": {"host": "127.0.0.1", "port": port, "tls": "none", "connections": connections},
                "programme": [{"key": "w", "name": "Weekly", "questions": [{"text": "What did you learn?"}]}],
            }
        )
        secrets_ = Secrets(Secret(secrets.token_hex(16)), Secret(""), Secret(""))
        clock = ManualClock(START)
        async with open_services(settings, secrets_, clock=clock) as s:
            async with transaction(s.sessions) as session:
                rows = [
                    RosterRow(i, f"p{i}@bench.test", f"P {i}", f"t{i % 7}", "Europe/London")
                    for i in range(people)
                ]
                await upsert_people(session, rows, settings.programmes, START, consent_how="bench")
            assert s.redis is not None
            await s.redis.enqueue_job("plan")
        worker = build_worker(
            settings,
            secrets_,
            burst=True,
            crons=False,
            clock=clock,
            handle_signals=False,
            poll_delay=0.01,
            max_jobs=connections * 4,
        )
        t0 = time.perf_counter()
        await worker.main()
        elapsed = time.perf_counter() - t0
        await worker.close()
        return {"seconds": elapsed, "per_second": people / elapsed}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    port = free_port()
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=_sink_process, args=(port, ready), daemon=True)
    sink.start()
    ready.wait(10)
    try:
        raw = await ceiling(port, args.people, args.connections)
        with tempfile.TemporaryDirectory() as tmp:
            ours = await nudger_round(port, args.people, args.connections, Path(tmp))
    finally:
        sink.terminate()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "people": args.people,
        "connections": args.connections,
        "ceiling_msgs_per_s": round(raw, 1),
        "nudger_msgs_per_s": round(ours["per_second"], 1),
        "ratio": round(ours["per_second"] / raw, 3),
        "plan_and_send_seconds": round(ours["seconds"], 2),
        "peak_rss_mb": round(peak_mb, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
