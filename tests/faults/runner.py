"""Child processes for the fault tests: a nudger worker, an IMAP poller, an SMTP sink.

    python -m tests.faults.runner worker CONFIG.json      the arq worker (`nudger worker`'s build_worker)
    python -m tests.faults.runner poller CONFIG.json      `nudger poll --watch` (serve_poller)
    python -m tests.faults.runner sink PORT LOG           an aiosmtpd sink: one JSON line per message

CONFIG.json holds {"settings": {...}, "imap_password": "...", "at": ISO-8601 or null, "crons": bool}.
With "at", nudger's clock reads that instant when the process starts and then runs in real time (a
restart "later" is a restart with a later "at"); otherwise it is the system clock. These are test
doubles for `nudger worker --config` / `nudger poll --watch --config`: the same code, without a TOML
file and environment secrets, so the tests can kill them with SIGKILL and start them again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from nudger.clock import Clock, SystemClock
from nudger.config import Secret, Secrets, parse_settings

SIGNING_KEY = "test-signing-key-0123456789abcdef"  # tests.fixtures.SIGNING_KEY (not imported: no pytest)
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class AnchoredClock:
    """Reads `at` when made, then moves in real time."""

    def __init__(self, at: datetime) -> None:
        self._at = at
        self._start = time.monotonic()

    def now(self) -> datetime:
        return self._at + timedelta(seconds=time.monotonic() - self._start)


def _load(path: str) -> tuple[Any, Secrets, Clock, dict[str, Any]]:
    config = json.loads(Path(path).read_text())
    settings = parse_settings(config["settings"], path)
    secrets = Secrets(Secret(SIGNING_KEY), Secret(""), Secret(config.get("imap_password", "")))
    at = config.get("at")
    clock: Clock = AnchoredClock(datetime.fromisoformat(at)) if at else SystemClock()
    return settings, secrets, clock, config


def run_worker(path: str) -> None:
    from nudger.worker import build_worker

    settings, secrets, clock, config = _load(path)
    worker = build_worker(
        settings,
        secrets,
        clock=clock,
        crons=bool(config.get("crons", False)),
        poll_delay=0.01,
        max_jobs=int(config.get("max_jobs", 20)),
    )
    worker.run()


def run_poller(path: str) -> None:
    from nudger.serve import serve_poller

    settings, secrets, _clock, _config = _load(path)
    asyncio.run(serve_poller(settings, secrets, watch=True))


class SinkHandler:
    """Accepts everything; appends {"rcpt", "message_id"} per message to the log, flushed at once."""

    def __init__(self, log: Path) -> None:
        self._out = log.open("a", encoding="utf-8")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""
        head = raw.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        message_id = found.group(1).decode("ascii", "replace") if found else ""
        for rcpt in envelope.rcpt_tos:
            self._out.write(json.dumps({"rcpt": rcpt.lower(), "message_id": message_id}) + "\n")
        self._out.flush()
        return "250 2.0.0 OK"


async def _sink(port: int, log: Path) -> None:
    from aiosmtpd.smtp import SMTP

    handler = SinkHandler(log)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        partial(SMTP, handler, hostname="sink.test", decode_data=False), host="127.0.0.1", port=port
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("arq.worker").setLevel(logging.WARNING)
    logging.getLogger("nudger.serve").setLevel(logging.DEBUG)  # "waiting for new mail (IDLE)"
    kind = argv[1]
    if kind == "worker":
        run_worker(argv[2])
    elif kind == "poller":
        run_poller(argv[2])
    elif kind == "sink":
        asyncio.run(_sink(int(argv[2]), Path(argv[3])))
    else:
        raise SystemExit(f"unknown child {kind!r}")


if __name__ == "__main__":
    main(sys.argv)
