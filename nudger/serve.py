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
from collections.abc import Iterator

from nudger.app import open_services
from nudger.config import Secrets, Settings
from nudger.errors import ImapError
from nudger.inbound.listener import InboundHandler, start_listener
from nudger.worker import imap_account, poll_imap

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0
WEB_HOST = "127.0.0.1"  # behind the HTTPS reverse proxy that `service.base_url` names
WEB_PORT = 8080
RECONNECT_DELAYS = (1, 2, 5, 10, 30, 60)


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
    max_bytes = cfg.max_message_bytes if cfg else 10_000_000
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


async def serve_poller(settings: Settings, secrets: Secrets, *, watch: bool = False) -> int:
    """Poll once (or, with `watch`, forever: a pass every minute, reconnecting with backoff)."""
    async with open_services(settings, secrets) as s:
        if not watch:
            return await poll_imap(s)
        account = imap_account(s)
        assert account is not None
        stop = _stop_event()
        total, failures = 0, 0
        while not stop.is_set():
            try:
                total += await poll_imap(s)
                failures = 0
                delay = 60.0
            except ImapError as exc:
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("IMAP trouble (%s); retrying in %ss", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        return total


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
