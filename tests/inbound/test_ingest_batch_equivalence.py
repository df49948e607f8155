"""A batch ends exactly as one by one would, over random mixes of what people send.

`process_inbound_many` defers a chunk's plain answers (one INSERT, one UPDATE at the end) and relies on
writing them before any path that reads or changes replies or nudges. This holds it to processing
the same messages one at a time, over random sequences of answers, sharing markers, commands, empty
replies, strangers and auto-replies from several people: the verdicts, every answer, every nudge,
enrolment and person, and the mail queued must come out the same. A new path that forgets to write
the waiting answers first shows up here as a difference.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from nudger.inbound.ingest import process_inbound, process_inbound_many
from nudger.mail.message import TokenKind, make_message_id
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Enrolment, Inbound, Nudge, NudgeStatus, Person, Reply, Round
from tests.inbound.test_ingest import NOW, QUESTION, World, email, identity, keys
from tests.inbound.test_ingest_batch import store

PEOPLE = 3
MESSAGES = 16
SEEDS = range(24)

#: what a person may send, as (body, subject); "{name}" is the sender's first name
KINDS: list[tuple[str, str]] = [
    ("I learned to write the ask first.\n\nOn Tue, nudger wrote:\n> " + QUESTION, "Re: " + QUESTION),
    ("Pairing on the incident review taught me more than the runbook.", "Re: " + QUESTION),
    ("private\n\nNot for sharing: the reorg worries me.", "Re: " + QUESTION),
    ("share\n\nHappy for the circle to see this one.", "Re: " + QUESTION),
    ("quote ok\n\nAsking earlier saves a day.", "Re: " + QUESTION),
    ("skip", "Re: skip"),
    ("pause for 2 weeks", "Re: " + QUESTION),
    ("resume", "Re: resume"),
    ("help", "Re: help"),
    ("stop", "Re: stop"),
    ("\n\nOn Tue, nudger wrote:\n> " + QUESTION, "Re: " + QUESTION),  # nothing new: empty
    ("I am out of the office until Monday.", "Automatic reply: " + QUESTION),
]
STRANGER = "Mallory <mallory@evil.test>"


@dataclass(frozen=True)
class Cast:
    label: str  # in the round's period, so in the answers' reasons
    people: list[int]
    nudges: list[int]
    emails: list[str]
    names: list[str]


async def _cast(sessions: SessionMaker, label: str) -> Cast:
    """PEOPLE enrolled people, each with a sent nudge in one open round of their own group."""
    async with transaction(sessions) as session:
        rnd = Round(
            programme="weekly",
            period=f"2026-W49-{label}",
            seq=1,
            question=QUESTION,
            opens_at=NOW - timedelta(days=1),
            closes_at=NOW + timedelta(days=2),
        )
        session.add(rnd)
        people = [
            Person(
                email=f"p{i}.{label}@corp.test", name=f"Pat{i} {label.title()}", team=f"T{i}", created_at=NOW
            )
            for i in range(PEOPLE)
        ]
        session.add_all(people)
        await session.flush()
        nudges = []
        for p in people:
            mid = make_message_id(f"nudge:{rnd.id}:{p.id}", identity().message_domain, keys().signing)
            nudges.append(
                Nudge(
                    round_id=rnd.id or 0,
                    person_id=p.id or 0,
                    due_at=NOW,
                    status=NudgeStatus.SENT,
                    message_id=mid,
                )
            )
            session.add(Enrolment(person_id=p.id or 0, programme="weekly", joined_at=NOW))
        session.add_all(nudges)
        await session.flush()
        return Cast(
            label,
            [p.id or 0 for p in people],
            [n.id or 0 for n in nudges],
            [p.email for p in people],
            [p.name for p in people],
        )


def _script(seed: int) -> list[tuple[int, int, bool]]:
    """(person index, kind index, sent by a stranger) for each message of one random mix."""
    rng = random.Random(seed)
    return [(rng.randrange(PEOPLE), rng.randrange(len(KINDS)), rng.random() < 0.1) for _ in range(MESSAGES)]


def _emails(cast: Cast, script: list[tuple[int, int, bool]]) -> list[bytes]:
    out = []
    for n, (who, kind, stranger) in enumerate(script):
        body, subject = KINDS[kind]
        headers = {"Auto-Submitted": "auto-replied"} if subject.startswith("Automatic reply") else None
        to = identity().reply_address(keys().token(TokenKind.NUDGE, cast.nudges[who]))
        sender = STRANGER if stranger else f"{cast.names[who]} <{cast.emails[who]}>"
        message_id = f"<{cast.label}-{n}@corp.test>"  # the same words twice are two messages
        out.append(email(body, to=to, sender=sender, subject=subject, headers=headers, message_id=message_id))
    return out


async def _state(sessions: SessionMaker, cast: Cast, inbound_ids: list[int]) -> dict[str, Any]:
    """Everything a person would see, by position in the cast (ids differ between the two casts)."""
    index = {person_id: i for i, person_id in enumerate(cast.people)}
    async with sessions() as session:
        inbound = {
            r.id: r
            for r in (await session.exec(select(Inbound).where(col(Inbound.id).in_(inbound_ids)))).all()
        }
        people = {
            p.id: p for p in (await session.exec(select(Person).where(col(Person.id).in_(cast.people)))).all()
        }
        nudges = {
            n.id: n for n in (await session.exec(select(Nudge).where(col(Nudge.id).in_(cast.nudges)))).all()
        }
        enrolments = {
            e.person_id: e
            for e in (
                await session.exec(select(Enrolment).where(col(Enrolment.person_id).in_(cast.people)))
            ).all()
        }
        answers = (
            await session.exec(
                select(Reply).where(col(Reply.person_id).in_(cast.people)).order_by(col(Reply.id))
            )
        ).all()
    return {
        "verdicts": [
            (inbound[i].status, inbound[i].verdict, inbound[i].reason.replace(cast.label, "*"))
            for i in inbound_ids
        ],
        "replies": [
            (index[r.person_id], inbound_ids.index(r.inbound_id), r.text, r.sharing, r.quote_ok, r.created_at)
            for r in answers
        ],
        "nudges": [(nudges[n].status, nudges[n].replied_at) for n in cast.nudges],
        "people": [(people[p].status, people[p].paused_until, people[p].sharing) for p in cast.people],
        "enrolments": [
            (e.left_at, e.silent_rounds, e.dormant_since) for e in (enrolments[p] for p in cast.people)
        ],
    }


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_random_mix_in_one_batch_ends_as_one_by_one(world: World, seed: int) -> None:
    script = _script(seed)
    batch_cast, single_cast = await _cast(world.sessions, "batch"), await _cast(world.sessions, "single")

    batch_ids = await store(world, _emails(batch_cast, script))
    await process_inbound_many(world.sessions, world.deps, world.queue, batch_ids, NOW)
    batch_mail = len(world.queue.sends)

    single_ids = await store(world, _emails(single_cast, script))
    for inbound_id in single_ids:
        await process_inbound(world.sessions, world.deps, world.queue, inbound_id, NOW)
    single_mail = len(world.queue.sends) - batch_mail

    batched = await _state(world.sessions, batch_cast, batch_ids)
    single = await _state(world.sessions, single_cast, single_ids)
    assert batched == single
    assert batch_mail == single_mail
    # the mix did what it says: something was answered or commanded, not everything turned away
    assert any(verdict in ("reply", "command") for _, verdict, _ in single["verdicts"])
