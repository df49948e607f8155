"""The report email: charts as inline PNG parts referenced by Content-ID, and nothing external."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from nudger.mail.message import build_message
from nudger.mail.templating import make_environment
from nudger.reports.metrics import Participation, ReportData, build_report
from nudger.reports.mime import with_inline_images
from nudger.reports.render import cid_uri, report_charts, report_html, report_text

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def data() -> ReportData:
    p = Participation(
        enrolled=130, active=120, paused=4, left=6, asked=124, answered=71, circles=18, posts=96,
        bounces=2, opt_outs=1,
    )  # fmt: skip
    return build_report(
        programme_key="lw", programme_name="Leading Well", period="2026-W48", question="Q?",
        participation=p, history=[("2026-W47", p)], notes=(), now=NOW, threshold=5,
    )  # fmt: skip


def test_charts_are_inline_pngs_named_by_content_id() -> None:
    d = data()
    env = make_environment()
    charts = report_charts(d)
    assert charts
    assert all(c.png.startswith(PNG_MAGIC) for c in charts)
    html = report_html(env, d, cid_uri)
    raw = build_message(
        from_name="nudger", from_address="n@example.com", to_name="", to_address="ld@example.com",
        subject="Report", text=report_text(env, d), html=html,
        message_id="<r@example.com>", date=NOW,
    )  # fmt: skip
    out = with_inline_images(raw, charts)
    msg = message_from_bytes(out, _class=EmailMessage, policy=default)
    assert msg.get_content_type() == "multipart/alternative"
    text, related = msg.get_payload()  # type: ignore[misc]
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    body, *images = related.get_payload()
    assert body.get_content_type() == "text/html"
    cids = {img["Content-ID"].strip("<>") for img in images}
    assert {i.get_content_type() for i in images} == {"image/png"}
    assert all(i.get_content_disposition() == "inline" for i in images)
    srcs = set(re.findall(r'src="cid:([^"]+)"', body.get_content()))
    assert srcs == cids == {c.cid for c in charts}
    assert images[0].get_content().startswith(PNG_MAGIC)
    assert "data:" not in body.get_content()


def test_no_charts_leaves_the_message_alone() -> None:
    raw = build_message(
        from_name="n", from_address="n@example.com", to_name="", to_address="a@example.com",
        subject="s", text="t", html="<p>h</p>", message_id="<m@example.com>", date=NOW,
    )  # fmt: skip
    assert with_inline_images(raw, []) == raw
