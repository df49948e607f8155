"""Tests of the test harness itself (tests/services.py): each real service answers."""

from __future__ import annotations

import socket
import time

import pytest
import redis
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import (
    LD_USER,
    OTHER_USER,
    DovecotServer,
    free_port,
    free_ports,
    imap_append,
    imap_connect,
    require_dovecot,
    unavailable,
)


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5


def test_unavailable_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no such thing"):
        unavailable("no such thing")


def test_unavailable_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no such thing"):
        unavailable("no such thing")


def test_dovecot_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setattr("tests.services._dovecot_binary", lambda: "/usr/sbin/dovecot")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        require_dovecot()
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="needs root"):
        require_dovecot()


def test_dovecot_binary_missing_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.services._dovecot_binary", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="dovecot not found"):
        require_dovecot()


@pytest.mark.slow
def test_redis_answers_ping(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert client.ping() is True
        client.set("nudger:harness", b"ok")
        assert client.get("nudger:harness") == b"ok"
    finally:
        client.close()


@pytest.mark.slow
async def test_postgres_is_a_fresh_database(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
            tables = await conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
            assert tables.scalar_one() == 0
    finally:
        await engine.dispose()
    assert name.startswith("nudger_test_")
    assert postgres_url.endswith(f"/{name}")


@pytest.mark.slow
def test_dovecot_has_both_users_and_an_archive(dovecot: DovecotServer) -> None:
    assert set(dovecot.users) == {LD_USER, OTHER_USER}
    for user in dovecot.users:
        with imap_connect(dovecot, user) as client:
            names = {name for _flags, _sep, name in client.list_folders()}
            assert {"INBOX", "Archive"} <= names


@pytest.mark.slow
def test_dovecot_append_fetch_roundtrip(dovecot: DovecotServer, fresh_mailbox: str) -> None:
    raw = b"From: a@example.com\r\nSubject: harness\r\n\r\nhello\r\n"
    imap_append(dovecot, LD_USER, raw, mailbox=fresh_mailbox)
    with imap_connect(dovecot) as client:
        client.select_folder(fresh_mailbox, readonly=True)
        uids = client.search(["ALL"])
        assert len(uids) == 1
        assert client.fetch(uids, [b"BODY.PEEK[]"])[uids[0]][b"BODY[]"] == raw


@pytest.mark.slow
def test_fresh_mailboxes_are_distinct_and_empty(dovecot: DovecotServer, fresh_mailbox: str) -> None:
    with imap_connect(dovecot) as client:
        assert client.select_folder(fresh_mailbox)[b"EXISTS"] == 0


@pytest.mark.slow
def test_dovecot_wrong_password_is_refused_without_delay(dovecot: DovecotServer) -> None:
    started = time.monotonic()
    # Each failure is answered within ~0.5 s (Dovecot flushes failed logins on a 500 ms timer even with
    # auth_failure_delay = 0); the auth penalty would add 2 s and 4 s to the 2nd and 3rd attempts.
    for _ in range(3):
        client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
        try:
            with pytest.raises(LoginError):
                client.login(LD_USER, "wrong")
        finally:
            client.shutdown()
    with imap_connect(dovecot) as client:
        client.noop()
    assert time.monotonic() - started < 4.0
