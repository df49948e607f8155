"""Attach a report's charts to its email as inline PNG parts (pure: bytes in, bytes out).

The composed message is ``multipart/alternative`` (text, HTML). The HTML part becomes
``multipart/related`` holding the HTML first and then one ``image/png`` part per chart, each with a
``Content-ID`` that the HTML's ``<img src="cid:…">`` names and ``Content-Disposition: inline`` — what
Gmail, Outlook and Apple Mail show in place without fetching anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from email import message_from_bytes
from email.message import EmailMessage

from nudger.mail.message import BODY, WIRE
from nudger.reports.png import Chart


def with_inline_images(raw: bytes, charts: Sequence[Chart]) -> bytes:
    """`raw` with `charts` added to its HTML part as related inline images (unchanged if none)."""
    if not charts:
        return raw
    msg = message_from_bytes(raw, _class=EmailMessage, policy=BODY)
    html = msg.get_body(("html",))
    if not isinstance(html, EmailMessage):
        raise ValueError("the message has no HTML part to attach images to")
    for chart in charts:
        html.add_related(
            chart.png,
            maintype="image",
            subtype="png",
            cid=f"<{chart.cid}>",
            filename=f"{chart.name}.png",
            disposition="inline",
        )
    return msg.as_bytes(policy=WIRE)
