"""A small but lifelike programme for report tests: teams and locations (one team of 4 inside a location
of 9, to tempt subtraction), two weekly rounds, shared / L&D-only / private answers, quote consent,
circles with and without follow-ups, cross-team pairs, and a note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.store.db import SessionMaker, transaction
from nudger.store.models import (
    Circle,
    Enrolment,
    Inbound,
    Member,
    Note,
    Nudge,
    NudgeStatus,
    Person,
    PersonStatus,
    Post,
    Reply,
    Round,
    Sharing,
)

W47 = datetime(2026, 11, 16, tzinfo=UTC)
W48 = datetime(2026, 11, 23, tzinfo=UTC)
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
PROGRAMME = "lw"

# (team, location, people): "Legal" (4) sits in "Leeds" beside "Ops" (5): Leeds has 9
ROSTER = (
    ("Sales", "London", 12),
    ("Engineering", "London", 10),
    ("Engineering", "Berlin", 8),
    ("Legal", "Leeds", 4),
    ("Ops", "Leeds", 5),
    ("Support", "Berlin", 6),
)

ANSWERS = (
    "We tried a no-meeting Friday and the team got more focus time for deep work.",
    "Feedback from a customer made me rethink how we review our weekly plan.",
    "I learned a new skill from a mentor: asking for feedback earlier in the week.",
    "Too many meetings again; the weekly review helped me say no to some of them.",
    "A colleague from another team helped with the customer handover, which was great.",
    "Workload was heavy this week, but the weekly review kept priorities clear.",
)
QUOTE_OK = "quote ok"


@dataclass
class Seeded:
    people: dict[str, list[int]]  # team → person ids


_ids = count(1)


def _inbound() -> Inbound:
    n = next(_ids)
    return Inbound(
        source="smtp",
        message_id=f"<seed-in{n}@example.com>",
        sha256=f"{n:064x}",
        raw=b"x",
        size=1,
        received_at=W48,
    )


async def _add(session: AsyncSession, *rows: object) -> None:
    session.add_all(rows)
    await session.flush()


async def seed_programme(sessions: SessionMaker, *, answer_share: float = 0.75) -> Seeded:
    async with transaction(sessions) as s:
        people: list[Person] = []
        for team, location, n in ROSTER:
            for i in range(n):
                people.append(
                    Person(
                        email=f"{team.lower()}.{location.lower()}.{i}@example.com",
                        name=f"{team} Person{i}",
                        team=team,
                        location=location,
                        status=PersonStatus.ACTIVE,
                        created_at=W47,
                    )
                )
        await _add(s, *people)
        await _add(s, *(Enrolment(person_id=p.id, programme=PROGRAMME, joined_at=W47) for p in people))
        rounds = [
            Round(
                programme=PROGRAMME,
                period=f"2026-W{47 + k}",
                seq=k + 1,
                question=q,
                opens_at=start + timedelta(days=1),
                closes_at=start + timedelta(days=4),
                grouped_at=start + timedelta(days=4),
            )
            for k, (start, q) in enumerate(
                ((W47, "What did you try this week?"), (W48, "What made work easier this week?"))
            )
        ]
        await _add(s, *rounds)
        by_team: dict[str, list[int]] = {}
        for p in people:
            assert p.id is not None
            by_team.setdefault(p.team, []).append(p.id)
        for r in rounds:
            assert r.id is not None
            answered: list[tuple[Person, Reply]] = []
            nudges: list[Nudge] = []
            for index, p in enumerate(people):
                assert p.id is not None
                replied = (index * 7 + r.seq) % 100 < answer_share * 100
                nudges.append(
                    Nudge(
                        round_id=r.id,
                        person_id=p.id,
                        due_at=r.opens_at,
                        status=NudgeStatus.REPLIED if replied else NudgeStatus.SENT,
                        message_id=f"<seed-n{r.id}.{p.id}@x>",
                        sent_at=r.opens_at,
                        replied_at=r.opens_at + timedelta(hours=5) if replied else None,
                    )
                )
            await _add(s, *nudges)
            for index, (p, nudge) in enumerate(zip(people, nudges, strict=True)):
                if nudge.status != NudgeStatus.REPLIED:
                    continue
                src = _inbound()
                await _add(s, src)
                assert nudge.id is not None
                assert src.id is not None
                assert p.id is not None
                sharing = (Sharing.PEERS, Sharing.PEERS, Sharing.LD, Sharing.PRIVATE)[index % 4]
                text = ANSWERS[(index + r.seq) % len(ANSWERS)]
                if sharing == Sharing.PRIVATE:
                    text = "PRIVATE-SECRET: my manager and I do not get on."
                reply = Reply(
                    nudge_id=nudge.id,
                    person_id=p.id,
                    inbound_id=src.id,
                    text=text,
                    sharing=sharing,
                    created_at=nudge.replied_at or r.opens_at,
                    quote_ok=index % 3 == 0,
                )
                await _add(s, reply)
                if sharing == Sharing.PEERS:
                    answered.append((p, reply))
            # circles of four, mixing teams (people are listed team by team: stride through them)
            answered.sort(key=lambda pr: (pr[0].id or 0) * (7 + 6 * (r.seq or 0)) % 97)
            for number, start in enumerate(range(0, len(answered) - 3, 4), 1):
                group = answered[start : start + 4]
                circle = Circle(
                    round_id=r.id,
                    number=number,
                    root_message_id=f"<seed-c{r.id}.{number}@x>",
                    subject="Circle",
                    created_at=r.closes_at,
                )
                await _add(s, circle)
                assert circle.id is not None
                members = [Member(circle_id=circle.id, person_id=p.id, reply_id=rp.id) for p, rp in group]
                await _add(s, *members)
                posts = number % 3  # 1, 2, 0, 1, 2, 0 … follow-ups
                for k in range(posts if number % 5 else 4):
                    src = _inbound()
                    await _add(s, src)
                    m = members[k % len(members)]
                    assert m.id is not None
                    assert src.id is not None
                    await _add(
                        s,
                        Post(
                            circle_id=circle.id,
                            member_id=m.id,
                            inbound_id=src.id,
                            text="POST-TEXT never in a report",
                            message_id=f"<seed-p{next(_ids)}@x>",
                            created_at=r.closes_at + timedelta(hours=2 + 3 * k + number % 4),
                        ),
                    )
        await _add(
            s,
            Note(
                programme=PROGRAMME,
                period="2026-W48",
                text="You asked for fewer meetings: Friday afternoons are now meeting-free.",
                created_at=NOW,
            ),
        )
    return Seeded(by_team)
