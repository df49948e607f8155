"""The report as a person sees it: rendered by headless Chromium (Debian's `chromium`).

The report HTML (charts as data: URIs, as `nudger report --out` writes it) is opened from a file;
Chromium saves a screenshot under the test's tmp dir and a network log. The test asserts that the
page requested nothing over the network (a control page with one remote image proves the log would
show it) and that the headline figures are in the rendered page. Without `chromium` the test is
skipped, or fails when CI is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nudger.mail.templating import make_environment
from nudger.reports.gather import gather_report
from nudger.reports.render import report_html
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate
from tests.reports.seed import NOW, PROGRAMME, seed_programme

TIMEOUT_S = 120
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    # the browser's own update and account checks resolve nowhere: nothing leaves this machine
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (apt-get install -y chromium); CI must run this check")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def run_chromium(binary: str, page: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = out / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", "--hide-scrollbars", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def page_requests(net_log: Path) -> list[str]:
    """URLs the *page* asked Chromium's network stack for: requests whose network isolation key is the
    page's file:// origin (the browser's own update checks have another key; file: and data: URLs
    never go through the network stack)."""
    text = net_log.read_text(encoding="utf-8", errors="replace").rstrip().rstrip(",")
    if not text.endswith("}"):
        text += "]}"  # a log cut short when the browser exits is still readable
    try:
        log = json.loads(text)
    except json.JSONDecodeError:
        pytest.fail(f"unreadable network log {net_log}")
    urls = []
    for event in log.get("events", []):
        params = event.get("params") or {}
        url, key = params.get("url"), params.get("network_isolation_key", "")
        if isinstance(url, str) and "file://" in str(key):
            urls.append(url)
    return urls


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("head", "script", "style", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "script", "style", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(" ".join(data.split()))


def visible_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return "\n".join(parser.parts)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[SessionMaker]:
    engine = make_engine("sqlite+aiosqlite:///" + str(tmp_path / "nudger.db"))
    await migrate(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_report_renders_in_chromium_without_fetching_anything(
    sessions: SessionMaker, tmp_path: Path
) -> None:
    binary = chromium()
    await seed_programme(sessions)
    async with sessions() as s:
        data = await gather_report(
            s, programme_key=PROGRAMME, programme_name="Leading Well", period="2026-W48", now=NOW, threshold=5
        )
    page = tmp_path / "report.html"
    page.write_text(report_html(make_environment(), data), encoding="utf-8")

    shot, net_log = tmp_path / "report.png", tmp_path / "net-log.json"
    result = run_chromium(
        binary, page, tmp_path, f"--screenshot={shot}", "--window-size=700,3600", f"--log-net-log={net_log}"
    )
    assert shot.exists(), result.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert net_log.exists(), result.stderr[-2000:]
    assert page_requests(net_log) == []

    dom = run_chromium(binary, page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = visible_text(dom.stdout)
    f = data.figures()
    assert f.answered is not None
    assert f.answer_rate is not None
    for figure in (
        "Conversations this week",
        "Questions sent",
        f"{f.asked:,}",
        f"{f.answered:,}",
        f"{f.answer_rate:.0%}",
        "Conversation health",
        "By team",
        "What people talked about",
        "You said, we did",
    ):
        assert figure in text, figure
    imgs = re.findall(r'<img[^>]+src="([^"]{0,30})', dom.stdout)
    assert imgs
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    print(f"report screenshot: {shot}")


@pytest.mark.slow
def test_the_network_log_would_show_a_remote_image(tmp_path: Path) -> None:
    """The control: a page with one remote image (loopback, nothing listens) shows up in the log."""
    binary = chromium()
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><p>x</p><img src="http://127.0.0.1:9/pixel.png">', encoding="utf-8")
    net_log = tmp_path / "net-log.json"
    result = run_chromium(binary, page, tmp_path, f"--log-net-log={net_log}", "--dump-dom")
    assert net_log.exists(), result.stderr[-2000:]
    assert set(page_requests(net_log)) == {"http://127.0.0.1:9/pixel.png"}
