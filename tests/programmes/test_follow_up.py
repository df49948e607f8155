"""Follow-up questions quote the person's own earlier answer, in the body only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import col, select

from nudger.config import Programme, Question
from nudger.mail.compose import Composer
from nudger.programmes.follow_up import excerpt, personal_question
from nudger.programmes.nudges import plan_due
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Inbound, Nudge, Outbox, Reply
from tests.fixtures import identity, keys

FOLLOW = Question(
    text="Two weeks ago you planned {earlier}. How did it go?",
    theme="apply",
    follows_up_weeks=2,
    fallback="How did the thing you planned recently go?",
)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("to try pairing with support. It went well.", "to try pairing with support"),
        ("  many\nlines   of text  ", "many lines of text"),
        ("word " * 60, ("word " * 28).strip() + "…"),
    ],
)
def test_excerpt_is_the_first_sentence_on_one_line(answer: str, expected: str) -> None:
    assert excerpt(answer) == expected


def test_personal_wording_and_fallback() -> None:
    assert personal_question(FOLLOW, "to ask for help sooner.") == (
        "Two weeks ago you planned “to ask for help sooner”. How did it go?"
    )
    assert personal_question(FOLLOW, None) == FOLLOW.fallback
    assert FOLLOW.for_circle() == FOLLOW.fallback


def test_a_follow_up_needs_its_placeholder_and_a_fallback() -> None:
    with pytest.raises(ValidationError, match="earlier"):
        Question(text="How did it go?", follows_up_weeks=2, fallback="x y z")
    with pytest.raises(ValidationError, match="fallback"):
        Question(text="You planned {earlier}. And?", follows_up_weeks=2)


async def test_the_follow_up_round_quotes_each_persons_answer(sessions: SessionMaker, env: Any) -> None:
    prog = Programme.model_validate(
        {
            "key": "growth",
            "name": "Growth",
            "schedule": {"weekday": "tue", "time": "10:00", "jitter_minutes": 0},
            "questions": [
                {"text": "What will you try this week?", "theme": "apply"},
                {"text": "Who helped you this week?", "theme": "connect"},
                FOLLOW.model_dump(),
            ],
        }
    )
    monday = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)
    async with transaction(sessions) as session:
        await upsert_people(
            session,
            [
                RosterRow(2, "ana@corp.test", "Ana", "Eng", "UTC"),
                RosterRow(3, "ben@corp.test", "Ben", "Ops", "UTC"),
            ],
            [prog],
            monday,
            consent_how="test",
        )
    composer = Composer(env, identity(), keys())
    await plan_due(sessions, [prog], composer, RecordingQueue(), monday)
    async with transaction(sessions) as session:  # Ana answers week 1; Ben does not
        nudge = (await session.exec(select(Nudge).order_by(col(Nudge.id)))).first()
        assert nudge is not None
        inbound = Inbound(
            source="smtp", message_id="<a@x>", sha256="a" * 64, raw=b"x", size=1, received_at=monday
        )
        session.add(inbound)
        await session.flush()
        session.add(
            Reply(
                nudge_id=nudge.id or 0,
                person_id=nudge.person_id,
                inbound_id=inbound.id or 0,
                text="to pair with support on triage. Wish me luck.",
                created_at=monday,
            )
        )
    for week in (1, 2):
        await plan_due(sessions, [prog], composer, RecordingQueue(), monday + timedelta(weeks=week))
    async with sessions() as session:
        mails = (await session.exec(select(Outbox).order_by(col(Outbox.id)))).all()
    follow_ups = [message_from_bytes(m.raw) for m in mails[-2:]]
    bodies = {str(m["To"]): m.get_payload()[0].get_payload(decode=True).decode() for m in follow_ups}
    assert "you planned “to pair with support on triage”" in bodies["Ana <ana@corp.test>"]
    assert FOLLOW.fallback in bodies["Ben <ben@corp.test>"]
    for m in follow_ups:
        assert "triage" not in str(m["Subject"])  # an answer never goes in a Subject
