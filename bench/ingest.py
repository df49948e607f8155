"""Ingest benchmark: N replies to a planned round, taken in by IMAP and by the SMTP listener, each against
a ceiling measured in the same run.

    python bench/ingest.py --replies 2000 [--batch-size 200] [--connections 4] [--json FILE]

Set-up (untimed): a throwaway Dovecot (tests/services.py), a private Redis, a SQLite database with N
people and a planned round (the nudges' outbox rows are rendered, never sent), and N replies written
here to each nudge's Reply-To address (answers, signatures, "On … wrote:" quoted history, Outlook
headers, HTML alternatives, quoted-printable accents; In-Reply-To/References the nudge's Message-ID),
APPENDed to a Dovecot mailbox.

IMAP (timed):
  ceiling   imapclient UID FETCH BODY.PEEK[] of the same messages, in the poller's batch size, and a
            stdlib `email.message_from_bytes(raw, policy=compat32)` of each. Nothing stored. Best of two.
  nudger    in a fresh process started as `nudger worker` starts (malloc arenas capped, INFO logs as
            JSON to a file): nudger's poller (`nudger.worker.poll_imap`: SEARCH, sizes, FETCH,
            stored raw + cursor + enqueue per batch), then the real arq worker (burst) running every
            process_inbound job: parsed, classified, trimmed, routed, the answer stored.
            `nudger_per_s` = N / (poll + process). peak_rss_mb = that process's peak RSS (VmHWM).
Listener (timed):
  ceiling   one aiosmtplib client (C connections) sending the N replies to a bare aiosmtpd sink in
            another process (250 for everything, nothing kept). Best of two.
  nudger    the same client against `nudger listen` (serve_listener) in another process: each 250
            means stored raw in SQLite and enqueued. `nudger_per_s` and `ratio` are for that
            (accepted = stored). Then the real worker (burst, another fresh process) processes them:
            `processed_per_s` = N / (SMTP time + processing time), end to end.
            peak_rss_mb = the listener process's; worker_peak_rss_mb = the worker process's.

`--postgres URL` runs nudger on two fresh databases on that PostgreSQL instead of SQLite files (the
listener's a copy of the planned round). `--workers N` (IMAP) runs N worker processes as deployed at
scale: the poll is a job one of them takes, and all of them process the batches it enqueues; the
result adds each worker's CPU seconds and when the poll ended. `listener.cpu_ms_per_message` is the
listener process's CPU (from /proc) while the client sent. BENCH_RSS_TRACE=1 adds the IMAP process's
resident memory every 2 s (=0.25: every 0.25 s) (`imap.rss_trace_mb`): a plateau or still growing?

`--profile PREFIX` writes pyinstrument profiles (text and HTML) of each nudger process
(`pip install pyinstrument`; a profiled run is slower and its memory is not meaningful).

Needs root, dovecot-imapd and redis-server (as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.services` (the throwaway Dovecot) lives beside nudger
    sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402
from sqlmodel import col, func, select  # noqa: E402

from nudger.app import open_services  # noqa: E402
from nudger.clock import ManualClock  # noqa: E402
from nudger.config import Secret, Secrets, Settings, parse_settings  # noqa: E402
from nudger.embedded import free_port, local_redis  # noqa: E402
from nudger.programmes.nudges import plan_due  # noqa: E402
from nudger.programmes.roster import RosterRow, upsert_people  # noqa: E402
from nudger.queue import RecordingQueue  # noqa: E402
from nudger.store.db import transaction  # noqa: E402
from nudger.store.models import Inbound, Outbox  # noqa: E402

START = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)  # a Tuesday: the round is due for everyone
PROCESS_AT = START + timedelta(hours=3)
DOMAIN = "staff.bench.test"
IMAP_USER_PASSWORD = "ld-pw"
MAILBOX = "INBOX"
SIGNING_KEY = "bench-ingest-signing-key-0123456789"  # the same in every process of the run
FIRST = ["Ana", "Ben", "Chiara", "Dan", "Eve", "Farid", "Grete", "Hiro", "Ines", "Jonas", "Kemal", "Lena"]
LAST = ["Novak", "Okafor", "Petit", "Quinn", "Rossi", "Schmidt", "Tanaka", "Urbina", "Weber", "Yilmaz"]
TEAMS = ["Engineering", "Sales", "Support", "Finance", "People", "Design", "Legal"]
ZONES = ["Europe/London", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]


# --------------------------------------------------------------------------------------- settings


def settings_dict(db_url: str, redis_url: str, imap_port: int, imap_user: str, batch: int) -> dict[str, Any]:
    return {
        "service": {"from_address": "nudger@bench.test", "reply_domain": "reply.bench.test"},
        "database": {"url": db_url},
        "redis": {"url": redis_url},
        "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none"},  # nothing is sent in this bench
        "inbound": {
            "imap": {
                "host": "127.0.0.1",
                "port": imap_port,
                "tls": "none",
                "username": imap_user,
                "mailboxes": [MAILBOX],
                "batch_size": batch,
            },
        },
        "programme": [
            {
                "key": "weekly",
                "name": "Weekly reflection",
                "questions": [{"text": "What did you learn this week that a colleague might find useful?"}],
            }
        ],
    }


def make_secrets() -> Secrets:
    return Secrets(Secret(SIGNING_KEY), Secret(""), Secret(IMAP_USER_PASSWORD))


def load(raw: dict[str, Any]) -> Settings:
    return parse_settings(raw, "bench settings")


# --------------------------------------------------------------------------------------- the round


async def plan_round(settings: Settings, people: int) -> None:
    """N people and a planned round: nudges and their rendered outbox rows (nothing is sent)."""
    async with open_services(settings, make_secrets(), use_redis=False) as s:
        for start in range(0, people, 5000):
            async with transaction(s.sessions) as session:
                rows = [
                    RosterRow(
                        i,
                        f"p{i}@{DOMAIN}",
                        f"{FIRST[i % len(FIRST)]} {LAST[i // len(FIRST) % len(LAST)]}",
                        TEAMS[i % len(TEAMS)],
                        ZONES[i % len(ZONES)],
                    )
                    for i in range(start, min(people, start + 5000))
                ]
                await upsert_people(session, rows, settings.programmes, START, consent_how="bench")
        await plan_due(s.sessions, settings.programmes, s.composer, RecordingQueue(), START)
        await s.engine.dispose()


async def nudge_headers(settings: Settings) -> AsyncIterator[tuple[str, str, str, str, str]]:
    """(person address, name, Reply-To address, Message-ID, Subject) of each nudge, streamed."""
    async with open_services(settings, make_secrets(), use_redis=False, migrate_db=False) as s:
        last = 0
        while True:
            async with s.sessions() as session:
                rows = (
                    await session.exec(
                        select(Outbox.id, Outbox.raw)
                        .where(col(Outbox.kind) == "nudge", col(Outbox.id) > last)
                        .order_by(col(Outbox.id))
                        .limit(500)
                    )
                ).all()
            if not rows:
                break
            for outbox_id, raw in rows:
                last = int(outbox_id or 0)
                h = BytesHeaderParser(policy=compat32).parsebytes(raw)
                name, to = parseaddr(str(h["To"]))
                yield to, name, parseaddr(str(h["Reply-To"]))[1], str(h["Message-ID"]), str(h["Subject"])
        await s.engine.dispose()


# --------------------------------------------------------------------------------------- replies

ANSWERS = [
    "I learned that pairing with someone from {team} for an hour saves a week of guessing.",
    "Writing the decision down before the meeting made the meeting half as long.",
    "Our customers read the first two lines of an email and nothing else, so I now put the ask first.",
    "I finally understood how the month-end close works; it explains a lot of the questions we get.",
    "Asking 'what would make this easy for you?' got me a better answer than any survey this quarter.",
    "Small pull requests get reviewed the same day. Big ones wait for the weekend.",
    "I shadowed a support call and heard three problems we thought were solved.",
    "Saying no to a request, with a reason and an alternative, went down better than I feared.",
]
MORE = [
    "It surprised me how much context lives only in people's heads.",
    "Next week I want to try the same with the onboarding checklist.",
    "Happy to show anyone who is curious, it takes ten minutes.",
    "I'm not sure it scales, but it worked for our team of six.",
    "The hard part was the first conversation; after that it was easy.",
]
ACCENTED = [
    "Ich habe gelernt, dass kurze Rückfragen früh viel Ärger später sparen.",
    "J'ai appris qu'un schéma au tableau vaut mieux qu'un long e-mail, même très détaillé.",
    "Aprendí que preguntar «¿por qué?» tres veces llega a la raíz del problema.",
]
QUESTION = "What did you learn this week that a colleague might find useful?"


def _answer(rng: random.Random, team: str) -> str:
    lines = [rng.choice(ANSWERS).format(team=rng.choice(TEAMS))]
    if rng.random() < 0.2:
        lines.append(rng.choice(ACCENTED))
    lines.extend(rng.sample(MORE, rng.randint(0, 3)))
    paragraphs = [" ".join(lines[: max(1, len(lines) // 2)]), " ".join(lines[max(1, len(lines) // 2) :])]
    return "\n\n".join(p for p in paragraphs if p)


def _quoted_history(rng: random.Random, name: str) -> str:
    when = "Tue, 1 Dec 2026 at 10:00"
    body = [
        f"Hi {name.split()[0]},",
        "",
        QUESTION,
        "",
        "Just reply to this email. Your answer is shared with a small circle of colleagues",
        "unless you reply 'private'.",
        "",
        "-- ",
        "nudger for the L&D team · unsubscribe: https://nudger.bench.test/u",
    ]
    style = rng.random()
    if style < 0.55:
        return f"On {when}, nudger <nudger@bench.test> wrote:\n" + "\n".join(f"> {b}".rstrip() for b in body)
    if style < 0.85:  # Outlook
        return (
            "________________________________\n"
            "From: nudger <nudger@bench.test>\n"
            f"Sent: {when}\n"
            f"To: {name}\n"
            f"Subject: {QUESTION}\n\n" + "\n".join(body)
        )
    return "-----Original Message-----\nFrom: nudger\n" + "\n".join(body)


def _signature(rng: random.Random, name: str, team: str) -> str:
    style = rng.random()
    if style < 0.4:
        return f"-- \n{name}\n{team} · Example Corp\n+44 20 7946 {rng.randint(1000, 9999)}"
    if style < 0.7:
        return f"Best,\n{name.split()[0]}"
    if style < 0.85:
        return f"Thanks,\n{name}\nSent from my phone"
    return (
        f"Cheers\n{name.split()[0]}\n\n{team} | Example Corp | Confidentiality notice: this email is private."
    )


def _html(text: str, history: str) -> str:
    def paras(s: str) -> str:
        return "".join(f"<div>{p.replace(chr(10), '<br>')}</div><div><br></div>" for p in s.split("\n\n"))

    quoted = "<br>".join(line.removeprefix("> ").removeprefix(">") for line in history.splitlines()[1:])
    attribution = history.splitlines()[0]
    return (
        f'<html><head><meta charset="utf-8"></head><body><div dir="ltr">{paras(text)}</div>'
        f'<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">{attribution}<br></div>'
        f'<blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;'
        f'padding-left:1ex">{quoted}</blockquote></div></body></html>'
    )


def make_reply(i: int, person: str, name: str, reply_to: str, message_id: str, subject: str) -> bytes:
    """One realistic answer to a nudge (deterministic in i)."""
    rng = random.Random(i)
    team = TEAMS[i % len(TEAMS)]
    answer = _answer(rng, team)
    text = f"{answer}\n\n{_signature(rng, name, team)}"
    history = _quoted_history(rng, name)
    msg = EmailMessage()
    msg["From"] = f"{name} <{person}>"
    msg["To"] = f"Weekly reflection <{reply_to}>"
    msg["Subject"] = f"Re: {subject}"
    msg["Date"] = format_datetime(START + timedelta(minutes=5 + i % 600))
    msg["Message-ID"] = f"<reply-{i}-{secrets.token_hex(4)}@{DOMAIN}>"
    msg["In-Reply-To"] = message_id
    msg["References"] = message_id
    msg["MIME-Version"] = "1.0"
    if rng.random() < 0.3:
        msg["X-Mailer"] = "Microsoft Outlook 16.0"
    msg.set_content(f"{text}\n\n{history}\n", cte="quoted-printable" if rng.random() < 0.5 else None)
    if rng.random() < 0.4:  # an HTML alternative, as Gmail and Outlook send
        msg.add_alternative(_html(text, history), subtype="html")
    raw = msg.as_bytes()
    received = (
        f"Received: from mail-{i % 50}.example.net (mail-{i % 50}.example.net [192.0.2.{i % 250}])\r\n"
        f"\tby mx.bench.test with ESMTPS id {secrets.token_hex(6)}\r\n"
        f"\tfor <{reply_to}>; {format_datetime(START)}\r\n"
        f"Authentication-Results: mx.bench.test; dkim=pass header.d=example.net; spf=pass\r\n"
        f"Delivered-To: {reply_to}\r\n"
    ).encode()
    return received + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def write_replies(settings: Settings, path: Path) -> int:
    """Write one reply per nudge to `path`: records of (rcpt, raw), length-prefixed."""
    count = 0
    with path.open("wb") as out:
        async for person, name, reply_to, message_id, subject in nudge_headers(settings):
            raw = make_reply(count, person, name, reply_to, message_id, subject)
            rcpt = reply_to.encode()
            out.write(struct.pack(">II", len(rcpt), len(raw)) + rcpt + raw)
            count += 1
    return count


def read_replies(path: Path) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as f:
        while head := f.read(8):
            rlen, mlen = struct.unpack(">II", head)
            rcpt = f.read(rlen).decode()
            yield rcpt, f.read(mlen)


# --------------------------------------------------------------------------------------- IMAP


def append_all(server: Any, user: str, path: Path) -> None:
    from tests.services import imap_connect

    with imap_connect(server, user, timeout=60) as client:
        chunk: list[bytes] = []
        for _rcpt, raw in read_replies(path):
            chunk.append(raw)
            if len(chunk) == 200:
                client.multiappend(MAILBOX, chunk)
                chunk = []
        if chunk:
            client.multiappend(MAILBOX, chunk)


def imap_ceiling(server: Any, user: str, batch: int) -> dict[str, float]:
    """UID SEARCH, then FETCH BODY.PEEK[] in batches and a compat32 parse of each: nothing stored."""
    from tests.services import imap_connect

    t0, c0 = time.perf_counter(), time.process_time()
    parsed = 0
    with imap_connect(server, user, timeout=60) as client:
        client.select_folder(MAILBOX)
        uids = sorted(client.search(["UID", "1:*"]))
        for start in range(0, len(uids), batch):
            response = client.fetch(uids[start : start + batch], [b"BODY.PEEK[]"])
            for data in response.values():
                msg = message_from_bytes(data[b"BODY[]"], policy=compat32)
                parsed += msg.get("Message-ID") is not None
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": elapsed, "per_second": parsed / elapsed, "messages": parsed, "cpu_seconds": cpu}


async def _verdicts(settings: Settings) -> dict[str, int]:
    async with open_services(settings, make_secrets(), use_redis=False, migrate_db=False) as s:
        async with s.sessions() as session:
            rows = (
                await session.exec(select(Inbound.verdict, func.count()).group_by(col(Inbound.verdict)))
            ).all()
        await s.engine.dispose()
    return {str(v or "(unprocessed)"): int(n) for v, n in rows}


async def _drain(settings: Settings) -> float:
    """Run the real arq worker in burst mode until the queue is empty; its wall time."""
    from nudger.worker import build_worker

    worker = build_worker(
        settings,
        make_secrets(),
        burst=True,
        crons=False,
        clock=ManualClock(PROCESS_AT),
        handle_signals=False,  # poll_delay: the deployed default (`nudger worker`), 50 ms
    )
    t0 = time.perf_counter()
    try:
        await worker.main()
    finally:
        await worker.close()
    return time.perf_counter() - t0


def _peak_rss_mb() -> float:
    from send import peak_rss_mb  # bench/send.py, beside this file

    return peak_rss_mb()


async def _nudger_imap(raw_settings: dict[str, Any], profile: str, overlap: bool) -> dict[str, Any]:
    from nudger.worker import poll_imap

    settings = load(raw_settings)
    profiler = _profiler(profile)
    if overlap:  # as deployed: the poll is a job of the worker, which processes batches as they come
        async with open_services(settings, make_secrets(), clock=ManualClock(PROCESS_AT)) as s:
            assert s.redis is not None
            await s.redis.enqueue_job("poll")
        c0 = time.process_time()
        total_s = await _drain(settings)
        total_cpu = time.process_time() - c0
        _stop_profiler(profiler, profile)
        return {
            "poll_seconds": 0.0,
            "process_seconds": total_s,
            "poll_cpu_seconds": 0.0,
            "process_cpu_seconds": total_cpu,
            "stored": None,
            "verdicts": await _verdicts(settings),
            "peak_rss_mb": _peak_rss_mb(),
        }
    async with open_services(settings, make_secrets(), clock=ManualClock(PROCESS_AT)) as s:
        t0, c0 = time.perf_counter(), time.process_time()
        stored = await poll_imap(s)
        poll_s, poll_cpu = time.perf_counter() - t0, time.process_time() - c0
    c1 = time.process_time()
    process_s = await _drain(settings)
    process_cpu = time.process_time() - c1
    _stop_profiler(profiler, profile)
    return {
        "poll_seconds": poll_s,
        "process_seconds": process_s,
        "poll_cpu_seconds": poll_cpu,
        "process_cpu_seconds": process_cpu,
        "stored": stored,
        "verdicts": await _verdicts(settings),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _as_deployed(raw_settings: dict[str, Any], name: str) -> None:
    """Start a nudger process as `nudger worker` / `nudger listen` start: malloc arenas capped, INFO
    logs (JSON, as in production; one line per message processed) to a file beside the database."""
    from nudger.logs import configure_logging
    from nudger.process import limit_malloc_arenas

    if "MALLOC_ARENA_MAX" not in os.environ:
        limit_malloc_arenas()
    folder = Path(os.environ[_LOGS_ENV])
    sys.stderr = open(folder / f"{name}-{os.getpid()}.log", "w")  # noqa: SIM115 (the process's life)
    configure_logging("INFO", fmt="json")


def _profiler(path: str) -> Any:
    if not path:
        return None
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled", interval=0.0005)
    profiler.start()
    return profiler


def _stop_profiler(profiler: Any, path: str) -> None:
    if profiler is not None:
        profiler.stop()
        Path(path).write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        Path(path).with_suffix(".html").write_text(profiler.output_html())
        if profiler.last_session is not None:  # re-render: pyinstrument --load PATH.pyisession
            profiler.last_session.save(str(Path(path).with_suffix(".pyisession")))


# --------------------------------------------------------------------------------------- listener


def _sink_process(port: int) -> None:
    from aiosmtpd.smtp import SMTP

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        factory = lambda: SMTP(Sink(), hostname="sink", decode_data=False, enable_SMTPUTF8=True)  # noqa: E731
        server = await loop.create_server(factory, "127.0.0.1", port)
        await stop.wait()
        server.close()

    asyncio.run(main())


def _listener_process(raw_settings: dict[str, Any], port: int, result: Any, profile: str) -> None:
    from nudger.serve import serve_listener

    _as_deployed(raw_settings, "listener")
    profiler = _profiler(profile)
    asyncio.run(serve_listener(load(raw_settings), make_secrets(), host="127.0.0.1", port=port))
    _stop_profiler(profiler, profile)
    result.put(_peak_rss_mb())


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


async def smtp_client(port: int, path: Path, connections: int) -> dict[str, float]:
    """Send every reply to its Reply-To address over `connections` parallel SMTP sessions."""
    records = read_replies(path)
    sent = 0
    refused: list[str] = []

    async def pump() -> None:
        nonlocal sent
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="mx.example.net") as c:
            for rcpt, raw in records:  # one shared iterator: each record goes out once
                errors, answer = await c.sendmail(f"bounce@{DOMAIN}", [rcpt], raw)
                if errors:
                    refused.append(answer)
                sent += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(pump() for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    if refused:
        raise RuntimeError(f"{len(refused)} refused, e.g. {refused[0]}")
    return {"seconds": elapsed, "per_second": sent / elapsed, "messages": sent}


def _drain_process(raw_settings: dict[str, Any], result: Any, profile: str) -> None:
    _as_deployed(raw_settings, "worker")

    async def main() -> dict[str, Any]:
        settings = load(raw_settings)
        profiler = _profiler(profile)
        seconds = await _drain(settings)
        _stop_profiler(profiler, profile)
        return {"seconds": seconds, "verdicts": await _verdicts(settings), "peak_rss_mb": _peak_rss_mb()}

    result.put(asyncio.run(main()))


def _pool_worker(raw_settings: dict[str, Any], result: Any, ready: Any, go: Any) -> None:
    """One of `--workers N` worker processes: ready once imported, then drains the queue (burst) from
    the moment the parent says go; its end time (wall clock), CPU seconds and peak memory."""
    _as_deployed(raw_settings, "imap-worker")
    settings = load(raw_settings)
    ready.put(os.getpid())
    go.wait()
    c0 = time.process_time()
    asyncio.run(_drain(settings))
    result.put({"end": time.time(), "cpu_seconds": time.process_time() - c0, "peak_rss_mb": _peak_rss_mb()})


def _poll_end(raw_settings: dict[str, Any], t0: float) -> float | None:
    """Seconds from t0 to the poller's "polled …" log line (the workers log JSON beside the database)."""
    folder = Path(os.environ[_LOGS_ENV])
    for log in folder.glob("imap-worker-*.log"):
        for line in log.read_text().splitlines():
            if '"polled ' in line:
                return round(datetime.fromisoformat(json.loads(line)["time"]).timestamp() - t0, 2)
    return None


async def _imap_pool(raw_settings: dict[str, Any], workers: int) -> dict[str, Any]:
    """As deployed at scale: `workers` worker processes; the poll is a job one of them takes, and all of
    them process the batches it enqueues. Timed from the poll's enqueue to the last worker's end."""
    ctx = multiprocessing.get_context("spawn")
    results, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_pool_worker, args=(raw_settings, results, ready, go)) for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            await asyncio.to_thread(ready.get, True, 120)
        settings = load(raw_settings)
        async with open_services(settings, make_secrets(), clock=ManualClock(PROCESS_AT)) as s:
            assert s.redis is not None
            t0 = time.time()
            await s.redis.enqueue_job("poll")
        go.set()
        done = [await asyncio.to_thread(results.get, True, 3600) for _ in procs]
    finally:
        for proc in procs:
            await asyncio.to_thread(proc.join, 30)
    return {
        "poll_seconds": 0.0,
        "process_seconds": max(d["end"] for d in done) - t0,
        "poll_cpu_seconds": 0.0,
        "process_cpu_seconds": sum(d["cpu_seconds"] for d in done),
        "worker_cpu_seconds": [round(d["cpu_seconds"], 2) for d in done],
        "worker_seconds": [round(d["end"] - t0, 2) for d in done],
        "poll_job_seconds": _poll_end(raw_settings, t0),
        "stored": None,
        "verdicts": await _verdicts(settings),
        "peak_rss_mb": max(d["peak_rss_mb"] for d in done),
    }


def _imap_process(raw_settings: dict[str, Any], result: Any, profile: str, overlap: bool) -> None:
    _as_deployed(raw_settings, "imap-worker")
    trace: list[int] = []
    if os.environ.get("BENCH_RSS_TRACE"):  # is the peak a plateau or still growing at the end?
        every = float(os.environ["BENCH_RSS_TRACE"]) if os.environ["BENCH_RSS_TRACE"] != "1" else 2.0
        threading.Thread(target=_sample_rss, args=(trace, every), daemon=True).start()
    out = asyncio.run(_nudger_imap(raw_settings, profile, overlap))
    if trace:
        out["rss_trace_mb"] = trace
    result.put(out)


def _sample_rss(trace: list[int], every: float) -> None:
    """This process's resident memory (MB, from procfs) every `every` seconds, into `trace`."""
    while True:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                trace.append(int(line.split()[1]) // 1024)
        time.sleep(every)


def in_child(target: Callable[..., None], *args: Any) -> Any:
    """Run target(*args, queue) in a fresh (spawned) process and return what it put in the queue."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args[:1], queue, *args[1:]))
    proc.start()
    try:
        return queue.get(timeout=3600)
    finally:
        proc.join(30)


# --------------------------------------------------------------------------------------- main


async def flush_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    await client.flushdb()
    await client.aclose()


_LOGS_ENV = "NUDGER_BENCH_LOGS"


def _databases(args: argparse.Namespace, folder: Path, stack: contextlib.ExitStack) -> tuple[str, str]:
    """The IMAP run's and the listener run's database URLs: SQLite files in `folder`, or with
    `--postgres` two fresh databases on that server (dropped afterwards)."""
    if not args.postgres:
        return f"sqlite+aiosqlite:///{folder / 'imap.db'}", f"sqlite+aiosqlite:///{folder / 'listener.db'}"
    from send import fresh_postgres  # bench/send.py, beside this file

    return stack.enter_context(fresh_postgres(args.postgres, "imap")), stack.enter_context(
        fresh_postgres(args.postgres, "listener")
    )


def _copy_database(args: argparse.Namespace, source: str, target: str) -> None:
    """Make `target` hold what `source` holds (the planned round)."""
    if not args.postgres:
        shutil.copyfile(source.split("///", 1)[1], target.split("///", 1)[1])
        return
    from sqlalchemy.engine import make_url

    from tests.services import _pg_run

    src, dst = make_url(source), make_url(target)
    admin = make_url(args.postgres).set(drivername="postgresql+asyncpg")
    _pg_run(admin, f'DROP DATABASE "{dst.database}"')
    _pg_run(admin, f'CREATE DATABASE "{dst.database}" TEMPLATE "{src.database}"')


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from tests.services import LD_USER, dovecot_server, require_dovecot

    n, batch, conns = args.replies, args.batch_size, args.connections
    with contextlib.ExitStack() as stack, dovecot_server(require_dovecot()) as server:
        async with local_redis(folder) as redis_url:
            os.environ[_LOGS_ENV] = str(folder)  # the nudger processes' logs (spawned: they inherit it)
            imap_db, smtp_db = _databases(args, folder, stack)
            raw = settings_dict(imap_db, redis_url, server.port, LD_USER, batch)
            settings = load(raw)
            t = time.perf_counter()
            await plan_round(settings, n)
            written = await write_replies(settings, folder / "replies.bin")
            if written != n:
                raise RuntimeError(f"{written} nudges planned for {n} people")
            if args.only != "imap":  # the same round, for the listener run
                _copy_database(args, imap_db, smtp_db)
            await asyncio.to_thread(append_all, server, LD_USER, folder / "replies.bin")
            setup_s = time.perf_counter() - t
            print(
                f"set-up: {n} people, round planned, {n} replies appended in {setup_s:.1f}s", file=sys.stderr
            )

            imap = await _imap_run(server, raw, args, redis_url) if args.only in ("", "imap") else None
            listener = None
            if args.only in ("", "listener"):
                raw_smtp = settings_dict(smtp_db, redis_url, server.port, LD_USER, batch)
                listener = await _listener_run(raw_smtp, args, redis_url, folder / "replies.bin")
    result: dict[str, Any] = {
        "bench": "ingest",
        "replies": n,
        "batch_size": batch,
        "connections": conns,
        "workers": args.workers,
        "database": "postgresql" if args.postgres else "sqlite",
    }
    if imap is not None:
        result["imap"] = imap
    if listener is not None:
        result["listener"] = listener
    return result


async def _imap_run(
    server: Any, raw: dict[str, Any], args: argparse.Namespace, redis_url: str
) -> dict[str, Any]:
    from tests.services import LD_USER

    n, batch, prof = args.replies, args.batch_size, args.profile
    ceiling = max(  # best of two: the first pass also warms Dovecot's caches for everyone
        [await asyncio.to_thread(imap_ceiling, server, LD_USER, batch) for _ in range(2)],
        key=lambda r: r["per_second"],
    )
    print(f"imap ceiling: {ceiling['per_second']:.0f}/s", file=sys.stderr)
    await flush_redis(redis_url)
    if args.workers > 1:
        ours = await _imap_pool(raw, args.workers)
    else:
        ours = await asyncio.to_thread(
            in_child, _imap_process, raw, f"{prof}imap.txt" if prof else "", bool(args.overlap)
        )
    imap_per_s = n / (ours["poll_seconds"] + ours["process_seconds"])
    print(f"imap nudger: {imap_per_s:.0f}/s {ours}", file=sys.stderr)
    return {
        "ceiling_per_s": round(ceiling["per_second"], 1),
        "nudger_per_s": round(imap_per_s, 1),
        "ratio": round(imap_per_s / ceiling["per_second"], 3),
        "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "poll_seconds": round(ours["poll_seconds"], 2),
        "process_seconds": round(ours["process_seconds"], 2),
        "ceiling_seconds": round(ceiling["seconds"], 2),
        "ceiling_cpu_ms_per_reply": round(1000 * ceiling["cpu_seconds"] / n, 3),
        "poll_cpu_ms_per_reply": round(1000 * ours["poll_cpu_seconds"] / n, 3),
        "process_cpu_ms_per_reply": round(1000 * ours["process_cpu_seconds"] / n, 3),
        "verdicts": ours["verdicts"],
        **{
            k: ours[k]
            for k in ("worker_cpu_seconds", "worker_seconds", "poll_job_seconds", "rss_trace_mb")
            if k in ours
        },
        "includes": "ceiling: UID FETCH + compat32 parse; nudger: poll (fetch, store raw, enqueue) "
        "+ worker (parse, classify, trim, route, store the answer)",
    }


async def _listener_run(
    raw_smtp: dict[str, Any], args: argparse.Namespace, redis_url: str, replies: Path
) -> dict[str, Any]:
    n, conns, prof = args.replies, args.connections, args.profile
    # the bare sink first, then nudger listen, each in its own process
    ctx = multiprocessing.get_context("spawn")
    sink_port = free_port()
    sink = ctx.Process(target=_sink_process, args=(sink_port,))
    sink.start()
    try:
        await asyncio.to_thread(_wait_port, sink_port)
        bare = max(  # best of two (a bare sink's rate varies from run to run)
            [await smtp_client(sink_port, replies, conns) for _ in range(2)],
            key=lambda r: r["per_second"],
        )
    finally:
        sink.terminate()
        sink.join(10)
    print(f"listener ceiling: {bare['per_second']:.0f}/s", file=sys.stderr)
    await flush_redis(redis_url)
    port = free_port()
    rss: Any = ctx.Queue()
    listener = ctx.Process(
        target=_listener_process,
        args=(raw_smtp, port, rss, f"{prof}listener.txt" if prof else ""),
    )
    listener.start()
    try:
        await asyncio.to_thread(_wait_port, port)
        cpu0 = _cpu_seconds(listener.pid or 0)
        accepted = await smtp_client(port, replies, conns)
        listener_cpu = _cpu_seconds(listener.pid or 0) - cpu0
    finally:
        os.kill(listener.pid or 0, signal.SIGTERM)
        listener_rss = float(await asyncio.to_thread(rss.get, True, 60))
        listener.join(30)
    print(f"listener nudger: {accepted['per_second']:.0f}/s", file=sys.stderr)
    drained = await asyncio.to_thread(
        in_child, _drain_process, raw_smtp, f"{prof}listener-worker.txt" if prof else ""
    )
    processed_per_s = n / (accepted["seconds"] + drained["seconds"])
    return {
        "ceiling_per_s": round(bare["per_second"], 1),
        "nudger_per_s": round(accepted["per_second"], 1),
        "ratio": round(accepted["per_second"] / bare["per_second"], 3),
        "peak_rss_mb": round(listener_rss, 1),
        "cpu_ms_per_message": round(1000 * listener_cpu / n, 3),
        "processed_per_s": round(processed_per_s, 1),
        "processed_ratio": round(processed_per_s / bare["per_second"], 3),
        "smtp_seconds": round(accepted["seconds"], 2),
        "process_seconds": round(drained["seconds"], 2),
        "worker_peak_rss_mb": round(drained["peak_rss_mb"], 1),
        "verdicts": drained["verdicts"],
        "includes": "ceiling: SMTP to a bare aiosmtpd sink; nudger_per_s: SMTP to nudger listen, "
        "250 = stored raw + enqueued; processed_per_s: that plus the worker processing every reply",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=200, help="IMAP FETCH batch (the poller's)")
    parser.add_argument("--connections", type=int, default=4, help="SMTP client connections")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--profile", default="", help="write pyinstrument profiles to PREFIX{imap,...}.txt")
    parser.add_argument("--only", choices=["imap", "listener"], default="", help="run one half only")
    parser.add_argument(
        "--overlap",
        action="store_true",
        help="IMAP: poll as a job of the worker, processing batches while it polls (as deployed); "
        "poll_seconds is then 0 and process_seconds the whole",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="",
        help="fresh databases on this PostgreSQL instead of SQLite (postgresql://postgres@127.0.0.1:5432/test)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="IMAP: N worker processes (the poll a job of one of them, as with --overlap; all process)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nudger-bench-ingest.") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
