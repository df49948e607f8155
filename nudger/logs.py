"""Logging set-up for entry points: a named logger per module, ids not bodies, never secrets."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def configure_logging(level: str = "INFO", *, rich: bool = True) -> None:
    handler: logging.Handler
    if rich:
        handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
        fmt = "%(name)s: %(message)s"
    else:
        handler = logging.StreamHandler()
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiosqlite", "asyncio", "mail.log", "arq.worker"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
