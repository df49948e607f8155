"""gather_report against a real SQLite file: every count, its programme and its week window."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.mail.templating import make_environment
from nudger.reports.gather import gather_report, periods_with_rounds
from nudger.reports.metrics import WITHHOLDABLE, Participation
from nudger.reports.render import report_html, report_json, report_text
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate, transaction
from nudger.store.models import (
    Audit,
    Circle,
    Enrolment,
    Inbound,
    Member,
    Note,
    Nudge,
    NudgeStatus,
    Outbox,
    OutboxStatus,
    Person,
    PersonStatus,
    Post,
    Round,
)

W46 = datetime(2026, 11, 9, tzinfo=UTC)  # Mondays 00:00 UTC
W47 = datetime(2026, 11, 16, tzinfo=UTC)
W48 = datetime(2026, 11, 23, tzinfo=UTC)
W49 = datetime(2026, 11, 30, tzinfo=UTC)
NOW = W49 + timedelta(hours=8)
_ids = count(1)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[SessionMaker]:
    engine = make_engine("sqlite+aiosqlite:///" + str(tmp_path / "nudger.db"))
    await migrate(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def add(session: AsyncSession, *rows: object) -> None:
    session.add_all(rows)
    await session.flush()


def person(name: str, status: str = PersonStatus.ACTIVE, paused_until: datetime | None = None) -> Person:
    return Person(
        email=f"{name.lower()}@example.com",
        name=f"{name} Example",
        team="Sales",
        status=status,
        paused_until=paused_until,
        created_at=W46,
    )


def rnd(programme: str, start: datetime, period: str) -> Round:
    return Round(
        programme=programme,
        period=period,
        seq=next(_ids),
        question=f"Question of {period}",
        opens_at=start + timedelta(days=1),
        closes_at=start + timedelta(days=4),
    )


def nudge(r: Round, p: Person, *, sent: bool = True, replied: bool = False, mid: str = "") -> Nudge:
    assert r.id is not None
    assert p.id is not None
    sent_at = r.opens_at if sent else None
    return Nudge(
        round_id=r.id,
        person_id=p.id,
        due_at=r.opens_at,
        status=NudgeStatus.REPLIED if replied else NudgeStatus.SENT if sent else NudgeStatus.PLANNED,
        message_id=mid or f"<n{r.id}.{p.id}@example.com>",  # every nudge has its own Message-ID
        sent_at=sent_at,
        replied_at=r.opens_at + timedelta(hours=3) if replied else None,
    )


def inbound() -> Inbound:
    n = next(_ids)
    return Inbound(
        source="smtp",
        message_id=f"<in{n}@example.com>",
        sha256=f"{n:064x}",
        raw=b"x",
        size=1,
        received_at=W48,
    )


def outbox(mid: str, status: str, sent_at: datetime | None, kind: str = "nudge") -> Outbox:
    return Outbox(
        key=f"k{next(_ids)}",
        kind=kind,
        to_addr="someone@example.com",
        envelope_from="bounces@example.com",
        message_id=mid,
        raw=b"x",
        status=status,
        next_attempt_at=W46,
        sent_at=sent_at,
        created_at=sent_at or W48,
    )


async def circle_with_posts(session: AsyncSession, r: Round, people: list[Person], posts: int) -> None:
    assert r.id is not None
    n = next(_ids)
    c = Circle(round_id=r.id, number=n, root_message_id=f"<c{n}@x>", subject="Circle", created_at=r.closes_at)
    await add(session, c)
    assert c.id is not None
    members = [Member(circle_id=c.id, person_id=p.id) for p in people if p.id is not None]
    await add(session, *members)
    for i in range(posts):
        src = inbound()
        await add(session, src)
        m = members[i % len(members)]
        assert m.id is not None
        assert src.id is not None
        await add(
            session,
            Post(
                circle_id=c.id,
                member_id=m.id,
                inbound_id=src.id,
                text="I tried it and it worked.",
                message_id=f"<p{next(_ids)}@x>",
                created_at=r.closes_at,
            ),
        )


async def seed(sessions: SessionMaker) -> None:
    async with transaction(sessions) as s:
        ps = {n: person(n) for n in ("P1", "P2", "P3", "P4", "P9")}
        ps["P5"] = person("P5", PersonStatus.PAUSED, paused_until=NOW + timedelta(days=7))
        ps["P6"] = person("P6", PersonStatus.PAUSED, paused_until=NOW - timedelta(days=1))  # pause ran out
        ps["P7"] = person("P7", PersonStatus.LEFT)
        ps["P8"] = person("P8")  # only in the other programme
        ps["P10"] = person("P10", PersonStatus.INVITED)
        await add(s, *ps.values())
        ids = {n: p.id for n, p in ps.items() if p.id is not None}
        lw = [n for n in ps if n != "P8"]
        await add(
            s,
            *(
                Enrolment(
                    person_id=ids[n],
                    programme="lw",
                    joined_at=W46,
                    left_at=W47 if n == "P9" else None,
                )
                for n in lw
            ),
            Enrolment(person_id=ids["P8"], programme="other", joined_at=W46),
            Enrolment(person_id=ids["P1"], programme="other", joined_at=W46),
        )

        r46, r47 = rnd("lw", W46, "2026-W46"), rnd("lw", W47, "2026-W47")
        r48, r49 = rnd("lw", W48, "2026-W48"), rnd("lw", W49, "2026-W49")
        o48 = rnd("other", W48, "2026-W48")
        await add(s, r46, r47, r48, r49, o48)

        # W48: six asked (P1–P6), five answered (exactly the threshold); P10 planned, never sent.
        n48 = [
            nudge(r48, ps[n], replied=n != "P6", mid=f"<n48-{n}@x>") for n in ("P1", "P2", "P3", "P4", "P5")
        ]
        n48.append(nudge(r48, ps["P6"], mid="<n48-P6@x>"))
        n48.append(nudge(r48, ps["P10"], sent=False))
        # W47: four asked, two answered (under the threshold).
        n47 = [
            nudge(r47, ps[n], replied=n in ("P1", "P2"), mid=f"<n47-{n}@x>") for n in ("P1", "P2", "P3", "P4")
        ]
        # W49 (later) and the other programme must not leak into W48.
        later = [nudge(r49, ps[n], replied=True) for n in ("P1", "P2", "P3")]
        other = [nudge(o48, ps[n], replied=True, mid=f"<o48-{n}@x>") for n in ("P1", "P8")]
        await add(s, *n48, *n47, *later, *other)

        await circle_with_posts(s, r48, [ps["P1"], ps["P2"], ps["P3"]], posts=3)
        await circle_with_posts(s, r48, [ps["P4"], ps["P5"]], posts=1)
        await circle_with_posts(s, r47, [ps["P1"], ps["P2"]], posts=2)
        await circle_with_posts(s, o48, [ps["P1"], ps["P8"]], posts=5)

        await add(
            s,
            outbox("<n48-P6@x>", OutboxStatus.BOUNCED, W48 + timedelta(days=1)),  # counted in W48
            outbox("<n47-P4@x>", OutboxStatus.BOUNCED, W47 + timedelta(days=1)),  # counted in W47
            outbox("<n48-P5@x>", OutboxStatus.SENT, W48 + timedelta(days=1)),  # delivered
            outbox("<o48-P8@x>", OutboxStatus.BOUNCED, W48 + timedelta(days=1)),  # other programme
            outbox("<report@x>", OutboxStatus.BOUNCED, W48 + timedelta(days=1), kind="report"),  # no nudge
            outbox("<n48-P4@x>", OutboxStatus.BOUNCED, W49),  # sent the next week
            Audit(person_id=ids["P7"], action="optout", at=W48 + timedelta(days=2)),
            Audit(person_id=ids["P7"], action="optout", at=W48 + timedelta(days=3)),  # same person
            Audit(person_id=ids["P8"], action="optout", at=W48 + timedelta(days=2)),  # not enrolled in lw
            Audit(person_id=ids["P9"], action="optout", at=W48 - timedelta(microseconds=1)),  # W47
            Audit(person_id=ids["P3"], action="optout", at=W49),  # W49 starts here
            Audit(person_id=ids["P2"], action="pause", at=W48 + timedelta(days=2)),
            Note(programme="lw", period="2026-W48", text="Fridays are now meeting-free.", created_at=W48),
            Note(programme="lw", period="2026-W48", text="Mentoring opens in January.", created_at=W49),
            Note(programme="lw", period="2026-W47", text="Older note.", created_at=W47),
            Note(programme="other", period="2026-W48", text="Not ours.", created_at=W48),
        )


async def test_gather_counts_the_period(sessions: SessionMaker) -> None:
    await seed(sessions)
    async with sessions() as s:
        data = await gather_report(
            s, programme_key="lw", programme_name="Leading Well", period="2026-W48", now=NOW, threshold=5
        )
    people = {"enrolled": 7, "active": 5, "paused": 1, "left": 2}
    assert data.participation == Participation(
        **people, asked=6, answered=5, circles=2, posts=4, bounces=1, opt_outs=1
    )
    assert data.question == "Question of 2026-W48"
    assert data.notes == ("Fridays are now meeting-free.", "Mentoring opens in January.")
    assert data.threshold == 5
    assert data.suppressed is False  # exactly five answered
    assert data.generated_at == NOW
    assert [p for p, _ in data.trend] == ["2026-W46", "2026-W47"]
    trend = dict(data.trend)
    assert trend["2026-W46"] == Participation(
        **people, asked=0, answered=0, circles=0, posts=0, bounces=0, opt_outs=0
    )
    assert trend["2026-W47"] == Participation(
        **people, asked=4, answered=2, circles=1, posts=2, bounces=1, opt_outs=1
    )
    assert dict(data.trend_figures())["2026-W47"].withheld == WITHHOLDABLE


async def test_gather_applies_a_higher_threshold(sessions: SessionMaker) -> None:
    await seed(sessions)
    async with sessions() as s:
        data = await gather_report(
            s, programme_key="lw", programme_name="LW", period="2026-W48", now=NOW, threshold=6
        )
    assert data.suppressed is True
    assert report_json(data)["participation"]["answered"] is None  # type: ignore[index]


async def test_reports_from_the_database_hold_no_names_or_addresses(sessions: SessionMaker) -> None:
    await seed(sessions)
    async with sessions() as s:
        data = await gather_report(
            s, programme_key="lw", programme_name="LW", period="2026-W48", now=NOW, threshold=5
        )
    env = make_environment()
    for out in (report_html(env, data), report_text(env, data), str(report_json(data))):
        assert "@" not in out
        assert "Example" not in out
        assert "I tried it" not in out  # posts are never quoted; team names (5+ answers) may show


async def test_periods_and_an_empty_programme(sessions: SessionMaker) -> None:
    await seed(sessions)
    async with sessions() as s:
        assert await periods_with_rounds(s, "lw") == ["2026-W46", "2026-W47", "2026-W48", "2026-W49"]
        assert await periods_with_rounds(s, "other") == ["2026-W48"]
        assert await periods_with_rounds(s, "none") == []
        data = await gather_report(
            s, programme_key="none", programme_name="None", period="2026-W48", now=NOW, threshold=5
        )
    assert data.participation == Participation(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert data.question is None
    assert data.trend == ()
    assert data.suppressed is True


async def test_trend_is_the_six_periods_before(sessions: SessionMaker) -> None:
    async with transaction(sessions) as s:
        await add(s, *(rnd("lw", W48 - timedelta(weeks=k), f"2026-W{48 - k:02d}") for k in range(10)))
    async with sessions() as s:
        data = await gather_report(
            s, programme_key="lw", programme_name="LW", period="2026-W48", now=NOW, threshold=5
        )
    assert [p for p, _ in data.trend] == [f"2026-W{w}" for w in range(42, 48)]


BIG_TABLES = ("person", "enrolment", "nudge", "circle", "post", "outbox", "audit", "reply", "member")


def bounded(q: str) -> bool:
    """Aggregates, a LIMIT, distinct team pairs, or one of the two streams read into fixed counters."""
    low = q.lower()
    streams = ("first_at" in low and "created_at" in low) or "reply.text" in low
    return "count(" in low or "limit" in low or low.startswith("select distinct person_1.team") or streams


async def test_gather_uses_a_fixed_number_of_aggregate_queries(tmp_path: Path) -> None:
    engine: AsyncEngine = make_engine("sqlite+aiosqlite:///" + str(tmp_path / "q.db"))
    await migrate(engine)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        sessions = make_sessionmaker(engine)
        await seed(sessions)
        counts = []
        for period in ("2026-W48", "2026-W47"):  # three periods of counts, then two
            statements.clear()
            async with sessions() as s:
                await gather_report(
                    s, programme_key="lw", programme_name="LW", period=period, now=NOW, threshold=5
                )
            counts.append(len(statements))
            for q in statements:
                if any(re.search(rf"\b(FROM|JOIN) {t}\b", q) for t in BIG_TABLES):
                    assert bounded(q), q
        assert counts == [18, 18]
    finally:
        await engine.dispose()
