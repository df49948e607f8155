"""JSON log lines: one object per line, ids and messages, exception types, never bodies."""

from __future__ import annotations

import json
import logging

from nudger.logs import JsonFormatter


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
