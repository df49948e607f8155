"""Privacy operations: export, erasure everywhere (kept out of later imports), raw-mail retention."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from nudger.privacy import FORGOTTEN, address_hash, export_person, forget_person, purge_raw_mail
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.store.db import transaction
from nudger.store.models import Audit, Inbound, Nudge, Person, Reply
from tests.inbound.test_ingest import NOW, World, email, ingest, nudge_address


async def test_export_has_everything_about_the_person(world: World) -> None:
    await ingest(world, email("My answer about feedback.", to=nudge_address(world)))
    async with world.sessions() as session:
        data = await export_person(session, "ANA@corp.test ")
    assert data is not None
    assert data["person"]["email"] == "ana@corp.test"
    assert [a["text"] for a in data["answers"]] == ["My answer about feedback."]
    assert data["questions"][0]["question"] == "What did you learn this week?"
    assert len(data["emails_received_from_you"]) == 1


async def test_forget_erases_everywhere_and_keeps_only_a_hash(world: World) -> None:
    await ingest(world, email("Something personal.", to=nudge_address(world)))
    async with transaction(world.sessions) as session:
        erased = await forget_person(session, "ana@corp.test", NOW)
    assert erased is not None
    assert (erased.replies, erased.inbound) == (1, 1)
    async with world.sessions() as session:
        assert (await session.exec(select(Person).where(Person.email == "ana@corp.test"))).first() is None
        assert (await session.exec(select(Reply))).all() == []
        assert (await session.exec(select(Inbound))).all() == []
        assert (await session.exec(select(Nudge).where(Nudge.person_id == world.ana))).all() == []
        audits = (await session.exec(select(Audit))).all()
    assert [(a.action, a.detail, a.person_id) for a in audits] == [
        (FORGOTTEN, address_hash("ana@corp.test"), None)
    ]
    assert all("ana" not in a.detail for a in audits)
    # a later roster import does not bring her back
    async with transaction(world.sessions) as session:
        result = await upsert_people(
            session, [RosterRow(2, "ana@corp.test", "Ana", "Eng", "UTC")], [], NOW, consent_how="hr"
        )
    assert (result.created, result.erased) == (0, 1)


async def test_raw_mail_is_purged_after_retention_but_the_answer_stays(world: World) -> None:
    row = await ingest(world, email("Keep my words, drop the raw mail.", to=nudge_address(world)))
    async with transaction(world.sessions) as session:
        assert await purge_raw_mail(session, NOW + timedelta(days=29), 30) == 0
        assert await purge_raw_mail(session, NOW + timedelta(days=31), 30) == 1
    async with world.sessions() as session:
        stored = await session.get(Inbound, row.id)
        replies = (await session.exec(select(Reply))).all()
    assert stored is not None
    assert (stored.raw, stored.verdict) == (b"", "reply")
    assert [r.text for r in replies] == ["Keep my words, drop the raw mail."]
