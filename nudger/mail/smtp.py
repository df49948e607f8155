"""SMTP out: the one module that talks aiosmtplib. Translates its errors into ours.

`Transport` is the seam: flows call `send(envelope_from, to, raw)`; tests may pass a recording
transport, integration tests a real aiosmtpd sink.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Protocol

import aiosmtplib

from nudger.config import Secret, SmtpConfig, TlsMode
from nudger.errors import PermanentSendError, TransientSendError

log = logging.getLogger(__name__)

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


class Transport(Protocol):
    async def send(self, envelope_from: str, to_addr: str, raw: bytes) -> str:
        """Deliver one message; return the server's reply. Raise TransientSendError/PermanentSendError."""
        ...

    async def close(self) -> None: ...


#: authentication refused: our configuration, not the mail; retried (and loudly logged) until fixed
AUTH_FAILURES = (530, 534, 535, 538)


def classify_smtp_reply(
    code: int, message: str, *, at_recipient: bool = False
) -> TransientSendError | PermanentSendError:
    enhanced = m.group(1) if (m := _ENHANCED.search(message)) else ""
    text = f"{code} {message}".strip()[:500]
    if 400 <= code < 500 or enhanced.startswith("4.") or code in AUTH_FAILURES:
        return TransientSendError(text, code)
    return PermanentSendError(text, code, enhanced, at_recipient=at_recipient)


class SmtpTransport:
    """A small pool of reused SMTP connections (reconnects on demand)."""

    def __init__(self, config: SmtpConfig, password: Secret) -> None:
        self._config = config
        self._password = password
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(config.connections)
        self._all: set[aiosmtplib.SMTP] = set()

    def __repr__(self) -> str:
        return f"SmtpTransport({self._config.host}:{self._config.port}, tls={self._config.tls})"

    async def _connect(self) -> aiosmtplib.SMTP:
        cfg = self._config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout_seconds,
            use_tls=cfg.tls is TlsMode.TLS,
            start_tls=cfg.tls is TlsMode.STARTTLS,
            local_hostname=cfg.local_hostname,
        )
        await client.connect()
        if cfg.username:
            await client.login(cfg.username, self._password.reveal())
        self._all.add(client)
        return client

    async def _checkout(self) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
            self._all.discard(client)
        return await self._connect()

    async def send(self, envelope_from: str, to_addr: str, raw: bytes) -> str:
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._checkout()
                _errors, response = await client.sendmail(envelope_from, [to_addr], raw)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients[0] if exc.recipients else None
                code = refused.code if refused else 550
                message = refused.message if refused else str(exc)
                self._release(client)
                raise classify_smtp_reply(code, message, at_recipient=True) from exc
            except aiosmtplib.SMTPResponseException as exc:
                self._drop(client)
                if exc.code in AUTH_FAILURES:
                    log.error("the SMTP relay refused our login (%s): check smtp.username/password", exc.code)
                raise classify_smtp_reply(exc.code, exc.message) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                self._drop(client)
                raise TransientSendError(f"{type(exc).__name__}: {exc}"[:500]) from exc
            self._release(client)
            return response

    async def probe(self) -> str:
        """Connect (and log in) once, say NOOP, hang up: for health checks."""
        client = await self._connect()
        try:
            code, message = await client.noop()
            return f"{code} {message}"
        finally:
            self._drop(client)

    def _release(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None and client.is_connected:
            self._idle.put_nowait(client)

    def _drop(self, client: aiosmtplib.SMTP | None) -> None:
        if client is None:
            return
        self._all.discard(client)
        client.close()

    async def close(self) -> None:
        for client in list(self._all):
            try:
                if client.is_connected:
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
        self._all.clear()
        while not self._idle.empty():
            self._idle.get_nowait()
