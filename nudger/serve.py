"""Long-running entry points besides the worker: the SMTP listener, the IMAP poller and the web endpoint.

Lifecycle (after uvicorn): start → serve until SIGINT/SIGTERM sets the stop event → stop accepting →
let in-flight sessions finish within a bounded grace period → close clients. The web endpoint is served
by uvicorn itself, which has that very lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator

from redis.exceptions import RedisError

from nudger.app import Services, open_services
from nudger.config import Secrets, Settings
from nudger.errors import ImapError
from nudger.inbound.imap import ImapMailbox
from nudger.inbound.listener import InboundHandler, start_listener
from nudger.inbound.poll import max_message_bytes
from nudger.worker import imap_account, poll_imap

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0
WEB_HOST = "127.0.0.1"  # behind the HTTPS reverse proxy that `service.base_url` names
WEB_PORT = 8080
RECONNECT_DELAYS = (1, 2, 5, 10, 30, 60)
IDLE_SECONDS = 60.0  # a full poll at least once a minute, whatever IDLE says
IDLE_SLICE_SECONDS = 5.0  # one IDLE command at most this long: a stop request waits no longer


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_listener(
    settings: Settings, secrets: Secrets, *, host: str | None = None, port: int | None = None
) -> None:
    cfg = settings.inbound.listener
    bind_host = host or (cfg.host if cfg else "127.0.0.1")
    bind_port = port if port is not None else (cfg.port if cfg else 2525)
    max_bytes = max_message_bytes(settings.inbound)
    async with open_services(settings, secrets) as s:
        handler = InboundHandler(s.sessions, s.identity, s.keys, s.queue, s.clock.now)
        server = await start_listener(handler, bind_host, bind_port, max_bytes=max_bytes)
        log.info("listening for SMTP on %s:%s", bind_host, bind_port)
        stop = _stop_event()
        await stop.wait()
        log.info("stopping: no new connections; waiting up to %ss for open sessions", SHUTDOWN_GRACE)
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), SHUTDOWN_GRACE)
        await handler.aclose()


async def serve_poller(settings: Settings, secrets: Secrets, *, watch: bool = False) -> int:
    """Poll once, or with `watch` until SIGINT/SIGTERM: see `watch_imap`."""
    async with open_services(settings, secrets) as s:
        if not watch:
            return await poll_imap(s)
        return await watch_imap(s, _stop_event())


async def watch_imap(s: Services, stop: asyncio.Event) -> int:
    """Poll every mailbox, then IDLE until new mail (or at most IDLE_SECONDS), over one connection.

    IDLE is only a wake-up: every pass is a full UID SEARCH from the stored cursor, so mail that came
    while the connection was down is found by the next pass. Any trouble (the server restarted, the
    connection dropped, Redis away) drops the connection without LOGOUT when it is broken and
    reconnects with backoff (RECONNECT_DELAYS); nothing is skipped, as the cursor only moves in the
    transaction that stores the messages.
    """
    account = imap_account(s)
    cfg = s.settings.inbound.imap
    if account is None or cfg is None:
        raise ImapError("IMAP is not configured")
    total, failures = 0, 0
    client: ImapMailbox | None = None
    try:
        while not stop.is_set():
            try:
                if client is None:
                    client = ImapMailbox(account)
                    await asyncio.to_thread(client.connect)
                    if failures:
                        log.warning("IMAP reconnected after %s failed attempt(s)", failures)
                total += await poll_imap(s, client)
                failures = 0
                await _idle(client, cfg.mailboxes, stop)
            except (ImapError, RedisError) as exc:
                if client is not None:
                    await asyncio.to_thread(client.close)  # no LOGOUT on a broken connection
                    client = None
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("IMAP trouble (%s); reconnecting in %ss", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
    finally:
        if client is not None:
            await asyncio.to_thread(client.close)
    return total


async def _idle(client: ImapMailbox, mailboxes: list[str], stop: asyncio.Event) -> None:
    """Wait for new mail in the first mailbox, in slices so that a stop request is seen promptly."""
    if len(mailboxes) > 1:  # with one mailbox it is still selected, and what came meanwhile is pending
        await asyncio.to_thread(client.select, mailboxes[0])
    log.debug("waiting for new mail in %s (IDLE)", mailboxes[0])
    deadline = time.monotonic() + IDLE_SECONDS
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        if await asyncio.to_thread(client.idle_wait, min(left, IDLE_SLICE_SECONDS)):
            return


async def serve_web(
    settings: Settings, secrets: Secrets, *, host: str | None = None, port: int | None = None
) -> None:
    """Serve the web endpoint (one-click unsubscribe, pause / resume, join) until SIGINT/SIGTERM.

    uvicorn runs the HTTP side (it stops accepting, then lets open requests finish within the grace
    period); the signals are ours, as for the listener, so the clients are closed and the process exits
    cleanly. No access log: request paths carry people's tokens; the app logs person ids instead.
    """
    import uvicorn

    from nudger.web import create_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # a signal only sets our stop event
            yield

    async with open_services(settings, secrets, use_redis=False) as s:
        app = create_app(
            s.sessions,
            s.keys,
            s.identity,
            s.clock,
            env=s.env,
            programme_names={key: p.name for key, p in s.programmes.items()},
        )
        config = uvicorn.Config(
            app,
            host=host or WEB_HOST,
            port=port if port is not None else WEB_PORT,
            log_config=None,
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
        )
        server = Server(config)
        stop = _stop_event()
        serving = asyncio.create_task(server.serve())
        stopping = asyncio.create_task(stop.wait())
        log.info("serving the web endpoint on %s:%s", config.host, config.port)
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping the web endpoint: no new connections; open requests may finish")
        server.should_exit = True
        stopping.cancel()
        await serving
