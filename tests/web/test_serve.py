"""`nudger web` as a process: it serves, honours a one-click POST, keeps tokens out of its logs, and
stops gracefully on SIGTERM (exit 0). Plus the CLI around consent: import --invite, people invite."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from nudger.cli import app
from nudger.mail.tokens import TokenKind, make_token
from tests.services import free_port, wait_until
from tests.test_cli import write_config

SECRET = "web-test-signing-secret-0123456789"
ENV = {"NUDGER_SECRET": SECRET}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={**ENV, "NUDGER_CONFIG": None}, catch_exceptions=False)


def status(db: Path, email: str) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("SELECT status FROM person WHERE email = ?", (email,)).fetchone()[0])


def person_id(db: Path, email: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT id FROM person WHERE email = ?", (email,)).fetchone()[0])


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/unsubscribe/x", timeout=1).status_code == 404
    except httpx.HTTPError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    config = write_config(tmp_path)
    assert invoke("people", "add", "ana@corp.test", "--config", str(config), "--name", "Ana").exit_code == 0
    port = free_port()
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nudger.cli", "web", "--config", str(config), "--port", str(port)],
            env={**os.environ, **ENV},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_until(lambda: answers(port), 20), log.read_text()
        yield proc, port, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_nudger_web_serves_one_click_and_stops_gracefully(
    served: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, folder = served
    db = folder / "n.db"
    token = make_token(SECRET.encode(), TokenKind.UNSUBSCRIBE, person_id(db, "ana@corp.test"))
    url = f"http://127.0.0.1:{port}/unsubscribe/{token}"
    assert httpx.get(url, timeout=5).status_code == 200
    assert status(db, "ana@corp.test") == "active"
    response = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=5)
    assert response.status_code == 200
    assert "server" not in response.headers
    assert status(db, "ana@corp.test") == "left"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    log = (folder / "web.log").read_text()
    assert "Traceback" not in log
    assert token not in log  # no access log: paths carry tokens
    assert "service.base_url is not an https:// URL" in log  # the admin is told links are missing


def test_help_lists_web_and_invite() -> None:
    assert "web" in invoke("--help").output
    assert "invite" in invoke("people", "--help").output


def test_invite_needs_names_or_all(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = invoke("people", "invite", "--config", str(config))
    assert result.exit_code == 1
    assert "--all" in result.output


def test_import_with_invite_marks_new_people_invited(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    roster = tmp_path / "staff.csv"
    roster.write_text("email,name,team,timezone\nana@corp.test,Ana,Eng,UTC\nben@corp.test,Ben,Ops,UTC\n")
    assert invoke("people", "add", "ana@corp.test", "--config", str(config)).exit_code == 0
    result = invoke("people", "import", str(roster), "--invite", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "1 new people invited" in result.output
    db = tmp_path / "n.db"
    assert (status(db, "ana@corp.test"), status(db, "ben@corp.test")) == ("active", "invited")
    added = invoke("people", "add", "cy@corp.test", "--invite", "--config", str(config))
    assert added.exit_code == 0
    assert status(db, "cy@corp.test") == "invited"
