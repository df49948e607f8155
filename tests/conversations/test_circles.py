"""Circles on a real database: private answers, too few people, late answers, closing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from sqlmodel import col, select

from nudger.config import Programme
from nudger.conversations.circles import close_rounds
from nudger.inbound.accept import Position, store_raw
from nudger.inbound.ingest import IngestDeps, process_inbound
from nudger.mail.compose import Composer
from nudger.mail.tokens import TokenKind
from nudger.programmes.nudges import plan_due
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Circle, Inbound, Member, Nudge, NudgeStatus, Outbox
from tests.fixtures import identity, keys

MONDAY = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)
PROG = Programme.model_validate(
    {
        "key": "weekly",
        "name": "Weekly",
        "schedule": {"weekday": "tue", "time": "10:00", "jitter_minutes": 0},
        "reply_window_hours": 48,
        "circle_days": 7,
        "questions": [{"text": "What did you learn?"}],
    }
)


@dataclass
class Org:
    sessions: SessionMaker
    composer: Composer
    deps: IngestDeps
    nudges: dict[str, Nudge]


async def make_org(sessions: SessionMaker, env: Any, names: list[str]) -> Org:
    async with transaction(sessions) as session:
        rows = [
            RosterRow(n, f"{name}@corp.test", name.title(), f"T{n % 3}", "UTC")
            for n, name in enumerate(names)
        ]
        await upsert_people(session, rows, [PROG], MONDAY, consent_how="test")
    composer = Composer(env, identity(), keys())
    await plan_due(sessions, [PROG], composer, RecordingQueue(), MONDAY)
    async with transaction(sessions) as session:
        found = (await session.exec(select(Nudge))).all()
        for n in found:
            n.status, n.sent_at = NudgeStatus.SENT, n.due_at
    async with sessions() as session:
        from nudger.store.models import Person

        by_id = {p.id: p.email.split("@")[0] for p in (await session.exec(select(Person))).all()}
        nudges = {by_id[n.person_id]: n for n in (await session.exec(select(Nudge))).all()}
    return Org(sessions, composer, IngestDeps(composer, {"weekly": PROG}), nudges)


async def reply(org: Org, name: str, body: str, when: datetime, *, member: int | None = None) -> Inbound:
    kind, ident = (TokenKind.MEMBER, member) if member else (TokenKind.NUDGE, org.nudges[name].id or 0)
    to = identity().reply_address(keys().token(kind, ident))
    raw = (
        f"From: {name}@corp.test\r\nTo: {to}\r\nSubject: Re\r\n"
        f"Message-ID: <{name}.{when.timestamp()}@x>\r\n\r\n"
        f"{body}\r\n"
    ).encode()
    async with transaction(org.sessions) as session:
        inbound_id = await store_raw(session, raw, Position("smtp"), when)
    assert inbound_id is not None
    await process_inbound(org.sessions, org.deps, RecordingQueue(), inbound_id, when)
    async with org.sessions() as session:
        row = await session.get(Inbound, inbound_id)
    assert row is not None
    return row


async def outbox(org: Org, kind: str) -> list[Outbox]:
    async with org.sessions() as session:
        return list(
            (await session.exec(select(Outbox).where(Outbox.kind == kind).order_by(col(Outbox.id)))).all()
        )


def text(row: Outbox) -> str:
    msg = message_from_bytes(row.raw)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def test_private_answers_are_not_placed_and_their_authors_are_told(
    sessions: SessionMaker, env: Any
) -> None:
    org = await make_org(sessions, env, ["ana", "ben", "cy", "dee"])
    after = MONDAY + timedelta(days=1)
    for name in ("ana", "ben", "cy"):
        await reply(org, name, f"{name} learned something.", after)
    await reply(org, "dee", "private\nA hard week.", after)
    await close_rounds(sessions, {"weekly": PROG}, org.composer, RecordingQueue(), MONDAY + timedelta(days=4))
    intros = await outbox(org, "intro")
    assert sorted(r.to_addr for r in intros) == ["ana@corp.test", "ben@corp.test", "cy@corp.test"]
    assert all("A hard week" not in text(r) for r in intros)
    [notice] = await outbox(org, "notice")
    assert notice.to_addr == "dee@corp.test"
    assert "stays out of the circles" in text(notice)


async def test_too_few_answers_make_no_circle_and_say_so(sessions: SessionMaker, env: Any) -> None:
    org = await make_org(sessions, env, ["ana", "ben", "cy"])
    for name in ("ana", "ben"):
        await reply(org, name, "Something.", MONDAY + timedelta(days=1))
    await close_rounds(sessions, {"weekly": PROG}, org.composer, RecordingQueue(), MONDAY + timedelta(days=4))
    assert await outbox(org, "intro") == []
    assert sorted(n.to_addr for n in await outbox(org, "notice")) == ["ana@corp.test", "ben@corp.test"]


async def test_a_late_answer_joins_the_smallest_circle(sessions: SessionMaker, env: Any) -> None:
    org = await make_org(sessions, env, ["ana", "ben", "cy", "dee"])
    for name in ("ana", "ben", "cy"):
        await reply(org, name, f"{name} learned something.", MONDAY + timedelta(days=1))
    await close_rounds(sessions, {"weekly": PROG}, org.composer, RecordingQueue(), MONDAY + timedelta(days=4))
    row = await reply(org, "dee", "Late, but here: I learned patience.", MONDAY + timedelta(days=5))
    assert "joined a circle" in row.reason
    async with sessions() as session:
        members = (await session.exec(select(Member))).all()
    assert len(members) == 4
    dee_intro = [r for r in await outbox(org, "intro") if r.to_addr == "dee@corp.test"]
    assert len(dee_intro) == 1
    assert "ana learned something." in text(dee_intro[0])
    relays = await outbox(org, "relay")
    assert sorted(r.to_addr for r in relays) == ["ana@corp.test", "ben@corp.test", "cy@corp.test"]
    assert all("I learned patience" in text(r) for r in relays)


async def test_a_circle_closes_after_its_days(sessions: SessionMaker, env: Any) -> None:
    org = await make_org(sessions, env, ["ana", "ben", "cy"])
    for name in ("ana", "ben", "cy"):
        await reply(org, name, "Something.", MONDAY + timedelta(days=1))
    grouped = MONDAY + timedelta(days=4)
    await close_rounds(sessions, {"weekly": PROG}, org.composer, RecordingQueue(), grouped)
    async with sessions() as session:
        circle = (await session.exec(select(Circle))).one()
        ana = (
            await session.exec(select(Member).where(Member.person_id == org.nudges["ana"].person_id))
        ).one()
    open_row = await reply(org, "ana", "Still talking!", grouped + timedelta(days=6), member=ana.id)
    assert open_row.verdict == "post"
    late = await reply(org, "ana", "Anyone still here?", grouped + timedelta(days=8), member=ana.id)
    assert late.verdict == "closed"
    assert "has closed" in text((await outbox(org, "notice"))[-1])
    assert circle.id is not None


@pytest.mark.parametrize("kind", ["intro", "relay"])
async def test_circle_reply_addresses_expire_with_the_circle(
    sessions: SessionMaker, env: Any, kind: str
) -> None:
    org = await make_org(sessions, env, ["ana", "ben", "cy"])
    for name in ("ana", "ben", "cy"):
        await reply(org, name, "Something.", MONDAY + timedelta(days=1))
    grouped = MONDAY + timedelta(days=4)
    await close_rounds(sessions, {"weekly": PROG}, org.composer, RecordingQueue(), grouped)
    if kind == "relay":
        async with sessions() as session:
            ana = (
                await session.exec(select(Member).where(Member.person_id == org.nudges["ana"].person_id))
            ).one()
        await reply(org, "ana", "Hello circle.", grouped + timedelta(days=1), member=ana.id)
    row = (await outbox(org, kind))[0]
    address = str(message_from_bytes(row.raw)["Reply-To"])
    token = keys().read(address.split("+", 1)[1].split("@", 1)[0])
    assert token is not None
    assert token.expires == (grouped + timedelta(days=PROG.circle_days)).date()


async def test_a_quiet_circle_gets_one_nudge_in_its_thread(sessions: SessionMaker, env: Any) -> None:
    from nudger.conversations.circles import QUIET_AFTER, nudge_quiet_circles

    org = await make_org(sessions, env, ["ana", "ben", "cy"])
    for name in ("ana", "ben", "cy"):
        await reply(org, name, f"{name.title()} wants to try pair programming.", MONDAY + timedelta(days=1))
    grouped = MONDAY + timedelta(days=4)
    await close_rounds(sessions, {"weekly": PROG}, org.composer, RecordingQueue(), grouped)
    progs = {"weekly": PROG}
    assert (
        await nudge_quiet_circles(
            sessions, progs, org.composer, RecordingQueue(), grouped + timedelta(days=1)
        )
        == 0
    )
    later = grouped + QUIET_AFTER + timedelta(hours=1)
    assert await nudge_quiet_circles(sessions, progs, org.composer, RecordingQueue(), later) == 3
    assert (
        await nudge_quiet_circles(sessions, progs, org.composer, RecordingQueue(), later + timedelta(days=1))
        == 0
    )
    nudges = await outbox(org, "circle_nudge")
    assert sorted(n.to_addr for n in nudges) == ["ana@corp.test", "ben@corp.test", "cy@corp.test"]
    async with sessions() as session:
        circle = (await session.exec(select(Circle))).one()
    for row in nudges:
        msg = message_from_bytes(row.raw)
        assert circle.root_message_id in str(msg["References"])
        assert "wants to try pair programming" in text(row)


async def test_a_circle_that_votes_to_stay_together_does(sessions: SessionMaker, env: Any) -> None:
    names = ["ana", "ben", "cy", "dee", "eve", "fay", "gus", "hal"]
    org = await make_org(sessions, env, names)
    for name in names:
        await reply(org, name, "Week one.", MONDAY + timedelta(days=1))
    grouped = MONDAY + timedelta(days=4)
    await close_rounds(sessions, {"weekly": PROG}, org.composer, RecordingQueue(), grouped)
    async with sessions() as session:
        members = (await session.exec(select(Member).order_by(col(Member.id)))).all()
    first_circle = [m for m in members if m.circle_id == members[0].circle_id]
    assert len(first_circle) == 4
    for m in first_circle[:3]:  # three of four vote: a majority
        name = next(n for n, nudge in org.nudges.items() if nudge.person_id == m.person_id)
        row = await reply(org, name, "keep us together", grouped + timedelta(days=1), member=m.id)
        assert row.verdict == "command"
    # week two: everyone answers again; the kept circle stays together
    await plan_due(sessions, [PROG], org.composer, RecordingQueue(), MONDAY + timedelta(weeks=1))
    async with transaction(sessions) as session:
        for n in (await session.exec(select(Nudge).where(Nudge.status == NudgeStatus.PLANNED))).all():
            n.status, n.sent_at = NudgeStatus.SENT, n.due_at
    async with sessions() as session:
        week_two = {
            n.person_id: n
            for n in (
                await session.exec(select(Nudge).where(Nudge.round_id != org.nudges["ana"].round_id))
            ).all()
        }
    for name, first in org.nudges.items():
        org.nudges[name] = week_two[first.person_id]
        await reply(org, name, "Week two.", MONDAY + timedelta(weeks=1, days=1))
    await close_rounds(
        sessions, {"weekly": PROG}, org.composer, RecordingQueue(), MONDAY + timedelta(weeks=1, days=4)
    )
    async with sessions() as session:
        later = (await session.exec(select(Member).where(col(Member.id) > members[-1].id))).all()
    kept = {m.person_id for m in first_circle}
    circles_now: dict[int, set[int]] = {}
    for m in later:
        circles_now.setdefault(m.circle_id, set()).add(m.person_id)
    assert kept in circles_now.values()


async def test_nobody_meets_the_same_people_again_next_round(sessions: SessionMaker, env: Any) -> None:
    names = ["ana", "ben", "cy", "dee", "eve", "fay", "gus", "hal", "ivy"]
    small = PROG.model_copy(update={"circle_size": 3})
    org = await make_org(sessions, env, names)
    org.deps = IngestDeps(org.composer, {"weekly": small})
    met: list[set[int]] = []
    for week in range(2):
        monday = MONDAY + timedelta(weeks=week)
        if week:
            await plan_due(sessions, [small], org.composer, RecordingQueue(), monday)
            async with transaction(sessions) as session:
                for n in (await session.exec(select(Nudge).where(Nudge.status == NudgeStatus.PLANNED))).all():
                    n.status, n.sent_at = NudgeStatus.SENT, n.due_at
                round_two = {
                    n.person_id: n
                    for n in (
                        await session.exec(select(Nudge).where(Nudge.round_id != org.nudges["ana"].round_id))
                    ).all()
                }
            org.nudges = {name: round_two[n.person_id] for name, n in org.nudges.items()}
        for name in names:
            await reply(org, name, f"Week {week}.", monday + timedelta(days=1))
        await close_rounds(
            sessions, {"weekly": small}, org.composer, RecordingQueue(), monday + timedelta(days=4)
        )
        async with sessions() as session:
            rows = (await session.exec(select(Member.circle_id, Member.person_id))).all()
        circles: dict[int, set[int]] = {}
        for circle_id, person_id in rows:
            circles.setdefault(circle_id, set()).add(person_id)
        met.append(set())
        for members in circles.values():
            met[-1] |= {frozenset((a, b)) for a in members for b in members if a < b}  # type: ignore[arg-type]
    first, both = met[0], met[1]
    second = both - first
    assert len(first) == 9  # 3 circles of 3: 3 pairs each
    assert len(second) == 9  # round two: 9 new pairs, none seen in round one


async def test_dont_group_me_with_is_respected(sessions: SessionMaker, env: Any) -> None:
    from nudger.store.models import Person

    names = ["ana", "ben", "cy", "dee", "eve", "fay"]
    small = PROG.model_copy(update={"circle_size": 3})
    org = await make_org(sessions, env, names)
    async with transaction(sessions) as session:
        ana = (await session.exec(select(Person).where(Person.email == "ana@corp.test"))).one()
        ana.avoid = "ben@corp.test,cy@corp.test"
    for name in names:
        await reply(org, name, "Something.", MONDAY + timedelta(days=1))
    await close_rounds(
        sessions, {"weekly": small}, org.composer, RecordingQueue(), MONDAY + timedelta(days=4)
    )
    async with sessions() as session:
        rows = (await session.exec(select(Member.circle_id, Member.person_id))).all()
    circle_of = {person_id: circle_id for circle_id, person_id in rows}
    ids = {name: org.nudges[name].person_id for name in names}
    assert circle_of[ids["ana"]] != circle_of[ids["ben"]]
    assert circle_of[ids["ana"]] != circle_of[ids["cy"]]
