"""Logging set-up for entry points: a named logger per module, ids not bodies, never secrets.

`text` (the default) is for people: rich's coloured layout at a terminal, plain lines otherwise
(rich costs about 2.5 ms a line, which a worker logging each of 1 000 emails a second cannot pay;
a plain line costs about 0.03 ms). `json` writes one JSON object per line (time, level, logger,
message, and the exception type if any) for log shippers. Choose with NUDGER_LOG_FORMAT.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

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


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO", *, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Log to `stream` (standard error by default) in `fmt`; rich's layout only on a terminal."""
    out = stream or sys.stderr
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter())
    elif out.isatty():
        handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiosqlite", "asyncio", "mail.log", "arq.worker"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
