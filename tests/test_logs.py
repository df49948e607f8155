"""Log lines: JSON objects for shippers, plain lines off a terminal, rich only at one."""

from __future__ import annotations

import io
import json
import logging

from rich.logging import RichHandler

from nudger.logs import JsonFormatter, configure_logging


def test_json_lines_carry_level_logger_message_and_exception_type() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "nudger.mail.outbox", logging.WARNING, __file__, 1, "retrying outbox=%s", (42,), None
    )
    entry = json.loads(formatter.format(record))
    assert entry["level"] == "warning"
    assert entry["logger"] == "nudger.mail.outbox"
    assert entry["message"] == "retrying outbox=42"
    assert entry["time"].endswith("+00:00")
    try:
        raise TimeoutError("smtp")
    except TimeoutError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert json.loads(formatter.format(failed))["exception"] == "TimeoutError"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _handler_after(fmt: str, stream: io.StringIO) -> logging.Handler:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", fmt=fmt, stream=stream)
        logging.getLogger("nudger.mail.outbox").info("sent outbox=%s kind=%s", 7, "nudge")
        return root.handlers[0]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_text_logs_off_a_terminal_are_plain_lines() -> None:
    out = io.StringIO()
    handler = _handler_after("text", out)
    assert not isinstance(handler, RichHandler)
    line = out.getvalue().strip()
    assert line.endswith("INFO nudger.mail.outbox: sent outbox=7 kind=nudge")
    assert "\x1b[" not in line  # no terminal colour codes in a log file


def test_text_logs_at_a_terminal_use_rich() -> None:
    assert isinstance(_handler_after("text", _Tty()), RichHandler)


def test_json_logs_go_to_the_given_stream() -> None:
    out = io.StringIO()
    _handler_after("json", out)
    assert json.loads(out.getvalue())["message"] == "sent outbox=7 kind=nudge"
