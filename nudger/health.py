"""`nudger health`: is each part reachable and current? (An entry-point helper: it builds clients.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from arq import create_pool

from nudger.config import Secrets, Settings
from nudger.errors import ImapError
from nudger.inbound.imap import ImapAccount, ImapMailbox
from nudger.mail.smtp import SmtpTransport
from nudger.queue import redis_settings
from nudger.store.db import make_engine, schema_state

HEALTH_KEY = "arq:queue:health-check"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def check_database(settings: Settings) -> Check:
    engine = make_engine(settings.database.url)
    try:
        current, head = await schema_state(engine)
    except Exception as exc:  # report, don't crash: this is a health check
        return Check("database", False, f"{type(exc).__name__}: {exc}"[:200])
    finally:
        await engine.dispose()
    if current != head:
        return Check("database", False, f"schema at {current}, latest is {head}: run `nudger init`")
    return Check("database", True, f"schema {current}")


async def check_redis(settings: Settings) -> list[Check]:
    try:
        redis = await create_pool(redis_settings(settings.redis.url), retry=0)
    except Exception as exc:
        return [Check("redis", False, f"{type(exc).__name__}: {exc}"[:200])]
    try:
        await redis.ping()
        beat = await redis.get(HEALTH_KEY)
        worker = Check(
            "worker", beat is not None, beat.decode() if isinstance(beat, bytes) else "no heartbeat in 60 s"
        )
        return [Check("redis", True, "ping ok"), worker]
    finally:
        await redis.aclose()


async def check_smtp(settings: Settings, secrets: Secrets) -> Check:
    transport = SmtpTransport(settings.smtp, secrets.smtp_password)
    try:
        reply = await transport.probe()
        return Check("smtp", True, f"{settings.smtp.host}:{settings.smtp.port}: {reply}")
    except Exception as exc:  # report, don't crash: this is a health check
        return Check("smtp", False, f"{type(exc).__name__}: {exc}"[:200])
    finally:
        await transport.close()


async def check_imap(settings: Settings, secrets: Secrets) -> Check | None:
    cfg = settings.inbound.imap
    if cfg is None:
        return None
    account = ImapAccount(
        cfg.host, cfg.port, cfg.tls, cfg.username, secrets.imap_password, cfg.timeout_seconds
    )
    client = ImapMailbox(account)
    try:
        await asyncio.to_thread(client.connect)
        state = await asyncio.to_thread(client.select, cfg.mailboxes[0])
        return Check("imap", True, f"{cfg.mailboxes[0]}: {state.exists} message(s)")
    except ImapError as exc:
        return Check("imap", False, str(exc)[:200])
    finally:
        await asyncio.to_thread(client.close)


async def check_all(settings: Settings, secrets: Secrets) -> list[Check]:
    checks = [
        await check_database(settings),
        *await check_redis(settings),
        await check_smtp(settings, secrets),
    ]
    imap = await check_imap(settings, secrets)
    return checks + ([imap] if imap else [])
