"""RELIABILITY.md §7 cases not covered elsewhere, each named by its number, asserted by side effects.

Where the rest are: 1-4, 10-14, 18-20, 23-27, 30-31, 33-37, 43-45 in test_classify.py / test_parse.py
(a verdict per scenario .eml, positive and negative); 8 in test_listener.py and flows/test_loop.py;
15, 22, 38-42, 46 in test_routing.py; 28-29, 32 in test_ingest.py; 17 (SMTP 552) in test_listener.py.
"""

from __future__ import annotations

from email.message import EmailMessage

from sqlmodel import select

from nudger.inbound.accept import Position, store_raw
from nudger.inbound.understand import MAX_VISIBLE_CHARS, TRUNCATED
from nudger.store.db import transaction
from nudger.store.models import Inbound
from tests.inbound.test_ingest import NOW, World, email, ingest, nudge_address, replies


async def test_case_05_no_date_is_accepted(world: World) -> None:
    raw = email("No date header here.", to=nudge_address(world)).replace(b"Date:", b"X-Old-Date:")
    assert b"\nDate:" not in raw
    assert (await ingest(world, raw)).verdict == "reply"


async def test_case_06_a_date_in_the_future_is_accepted(world: World) -> None:
    raw = email("From the future.", to=nudge_address(world))
    raw = raw.replace(b"Date: Wed, 02 Dec 2026", b"Date: Fri, 02 Dec 2039")
    assert b"2039" in raw
    assert (await ingest(world, raw)).verdict == "reply"


async def test_case_07_no_message_id_dedupes_by_content(world: World) -> None:
    raw = email("No id header at all.", to=nudge_address(world)).replace(b"Message-ID:", b"X-Old-Id:")
    assert b"\nMessage-ID:" not in raw
    await ingest(world, raw)
    async with transaction(world.sessions) as session:
        again = await store_raw(session, raw, Position("smtp"), NOW)
    assert again is None  # the second delivery is a no-op
    async with world.sessions() as session:
        [row] = (await session.exec(select(Inbound))).all()
    assert row.message_id.endswith("@sha256.nudger.invalid>")
    assert len(await replies(world)) == 1


async def test_case_09_nul_bytes_never_reach_the_database_text(world: World) -> None:
    raw = email("Before\x00after.", to=nudge_address(world), subject="Re: nul\x00here")
    row = await ingest(world, raw)
    assert row.verdict == "reply"
    assert "\x00" not in row.subject
    [reply] = await replies(world)
    assert "\x00" not in reply.text
    assert reply.text.startswith("Before")


async def test_case_16_a_huge_reply_is_cut_with_a_marker_and_the_raw_kept(world: World) -> None:
    body = ("A long reflection. " * 60 + "\n\n") * 1000  # about 1 MB
    raw = email(body, to=nudge_address(world))
    row = await ingest(world, raw)
    assert row.verdict == "reply"
    [reply] = await replies(world)
    assert reply.text.endswith(TRUNCATED)
    assert len(reply.text) <= MAX_VISIBLE_CHARS + len(TRUNCATED)
    assert row.size == len(raw)  # nothing lost: the stored raw message is whole


async def test_case_21_attachments_only_is_not_an_answer(world: World) -> None:
    msg = EmailMessage()
    msg["From"] = "Ana Silva <ana@corp.test>"
    msg["To"] = nudge_address(world)
    msg["Subject"] = "Re: question"
    msg["Message-ID"] = "<attachments-only@corp.test>"
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="notes.pdf")
    row = await ingest(world, msg.as_bytes())
    assert row.verdict == "empty"
    assert await replies(world) == []


async def test_case_47_too_many_recipients_is_quarantined_without_fan_out(world: World) -> None:
    cc = ", ".join(f"person{n}@corp.test" for n in range(40))
    row = await ingest(world, email("Hello all!", to=nudge_address(world), headers={"Cc": cc}))
    assert row.verdict == "list"
    assert "too many recipients" in row.reason
    assert await replies(world) == []
    assert world.queue.sends == []
