"""Logging set-up for entry points: a named logger per module, ids not bodies, never secrets.

`text` (the default) is for people at a terminal; `json` writes one JSON object per line (time, level,
logger, message, and the exception type if any) for log shippers. Choose with NUDGER_LOG_FORMAT.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from rich.logging import RichHandler


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, fmt: str = "text") -> None:
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
    else:
        handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiosqlite", "asyncio", "mail.log", "arq.worker"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
