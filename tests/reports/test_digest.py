"""The participant digest: opt-in per programme, once per person and period, only what passed the rule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from nudger.config import Programme
from nudger.mail.compose import Composer, Recipient
from nudger.mail.message import Identity, Keys
from nudger.mail.templating import make_environment
from nudger.reports.digest import compose_digest, digest_of
from nudger.reports.gather import gather_report
from nudger.reports.metrics import ReportData
from nudger.reports.send import send_digests
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate, transaction
from nudger.store.models import Outbox, Person, PersonStatus
from tests.reports.seed import ANSWERS, NOW, PROGRAMME, seed_programme

IDENTITY = Identity(
    service_name="nudger",
    from_address="nudger@corp.test",
    from_name="nudger",
    reply_domain="reply.corp.test",
    reply_local="reply",
    bounce_local="bounce",
    base_url="https://nudger.corp.test",
)
COMPOSER = Composer(make_environment(), IDENTITY, Keys(b"k" * 32))


@dataclass
class FakeQueue:
    sent: list[Any] = field(default_factory=list)

    async def send_mail(self, ids: Sequence[Any]) -> None:
        self.sent.extend(ids)


@dataclass
class FakeServices:
    sessions: SessionMaker
    composer: Composer = COMPOSER
    queue: FakeQueue = field(default_factory=FakeQueue)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[SessionMaker]:
    engine = make_engine("sqlite+aiosqlite:///" + str(tmp_path / "nudger.db"))
    await migrate(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def report(sessions: SessionMaker, threshold: int = 5) -> ReportData:
    async with sessions() as s:
        return await gather_report(
            s,
            programme_key=PROGRAMME,
            programme_name="Leading Well",
            period="2026-W48",
            now=NOW,
            threshold=threshold,
        )


def parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    msg = message_from_bytes(raw, _class=EmailMessage, policy=default)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return msg, text.get_content(), html.get_content()


def test_programme_digest_is_opt_in() -> None:
    q = [{"text": "What did you try?"}]
    assert Programme(key="a", name="A", questions=q).digest is False  # type: ignore[arg-type]
    assert Programme(key="a", name="A", questions=q, digest=True).digest is True  # type: ignore[arg-type]


async def test_digest_shows_themes_quotes_and_notes_and_nothing_private(sessions: SessionMaker) -> None:
    await seed_programme(sessions)
    d = digest_of(await report(sessions))
    assert d.has_content
    assert d.themes
    assert d.highlights
    assert all(q in ANSWERS for q in d.highlights)
    assert d.notes == ("You asked for fewer meetings: Friday afternoons are now meeting-free.",)
    mail = compose_digest(COMPOSER, d, Recipient(7, "ana@corp.test", "Ana Lima"), NOW)
    assert mail.key == "digest:lw:2026-W48:7"
    assert mail.kind == "digest"
    msg, text, html = parts(mail.raw)
    assert msg["List-Unsubscribe"]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "Hi Ana" in text
    for out in (text, html):
        assert d.themes[0][0] in out
        assert "meeting-free" in out
        assert "PRIVATE-SECRET" not in out
        assert "POST-TEXT" not in out
        assert "Person" not in out  # no participant's name
        assert "https://nudger.corp.test/unsubscribe/" in out


async def test_digest_of_a_suppressed_period_keeps_only_the_notes(sessions: SessionMaker) -> None:
    await seed_programme(sessions)
    d = digest_of(await report(sessions, threshold=40))
    assert d.themes == ()
    assert d.highlights == ()
    assert d.notes
    assert d.has_content


async def test_send_digests_once_per_person_and_period(sessions: SessionMaker) -> None:
    seeded = await seed_programme(sessions)
    async with transaction(sessions) as s:
        paused = await s.get(Person, seeded.people["Sales"][0])
        assert paused is not None
        paused.status = PersonStatus.PAUSED
    data = await report(sessions)
    services = FakeServices(sessions)
    first = await send_digests(services, data, NOW)  # type: ignore[arg-type]
    everyone = sum(len(ids) for ids in seeded.people.values())
    assert first == everyone - 1  # not the paused person
    assert len(services.queue.sent) == first
    again = await send_digests(services, data, NOW)  # type: ignore[arg-type]
    assert again == 0
    async with sessions() as s:
        keys = (await s.exec(select(Outbox.key).where(col(Outbox.kind) == "digest"))).all()
    assert len(keys) == len(set(keys)) == first
    assert f"digest:lw:2026-W48:{seeded.people['Sales'][0]}" not in keys
