"""Fixtures of ours for flow tests: migrated databases, a scripted SMTP server, test settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from nudger.config import Secret, Secrets, Settings, parse_settings
from nudger.mail.message import Identity, Keys
from nudger.mail.templating import make_environment
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate
from tests.services import free_port

SIGNING_KEY = "test-signing-key-0123456789abcdef"
DOMAIN = "corp.test"


def settings_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "service": {
            "name": "nudger",
            "from_address": f"nudger@{DOMAIN}",
            "reply_domain": f"reply.{DOMAIN}",
            "signing_secret_env": "NUDGER_TEST_SECRET",
        },
        "report": {"recipients": [f"ld@{DOMAIN}"], "anonymity_threshold": 3},
        "programme": [
            {
                "key": "weekly",
                "name": "Weekly reflection",
                "schedule": {"weekday": "tue", "time": "10:00"},
                "reply_window_hours": 48,
                "circle_size": 4,
                "questions": [{"text": "What did you learn this week?", "theme": "reflect"}],
            }
        ],
    }
    for key, value in overrides.items():
        data[key] = value
    return data


def make_settings(**overrides: Any) -> Settings:
    return parse_settings(settings_dict(**overrides), "test settings")


def test_secrets() -> Secrets:
    return Secrets(Secret(SIGNING_KEY), Secret(""), Secret(""))


def identity() -> Identity:
    return Identity.from_config(make_settings().service)


def keys() -> Keys:
    return Keys(SIGNING_KEY.encode())


@pytest.fixture
def env() -> Any:
    return make_environment()


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with an empty schema: a SQLite file, and (slow) the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'nudger.db'}"
        return
    url = str(request.getfixturevalue("postgres_url"))
    asyncio.run(_reset_postgres(url))
    yield url
    asyncio.run(_reset_postgres(url))  # leave the shared session database empty again


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'nudger.db'}"


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(sqlite_url)
    await migrate(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionMaker:
    return make_sessionmaker(engine)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes


@dataclass
class ScriptedHandler:
    """Accepts mail, except where `rcpt_replies` / `data_replies` say otherwise (per recipient)."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    drop_after_data: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        to = envelope.rcpt_tos[0].lower()
        script = self.data_replies.get(to)
        if script:
            return script.pop(0)
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.original_content or b"")
        )
        if self.drop_after_data > 0:
            self.drop_after_data -= 1
            assert server.transport is not None
            server.transport.close()
            return "250 OK (but the connection is gone)"
        return "250 2.0.0 OK"


@dataclass
class SmtpServer:
    port: int
    handler: ScriptedHandler


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    """A real aiosmtpd server on a free loopback port, scripted per recipient."""
    handler = ScriptedHandler()
    port = free_port()
    server = await asyncio.get_running_loop().create_server(
        partial(SMTP, handler, hostname="sink.test"), host="127.0.0.1", port=port
    )
    yield SmtpServer(port, handler)
    server.close()
    await server.wait_closed()
