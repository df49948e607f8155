"""Planning against a real database: one nudge a day across programmes, the one reminder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from sqlmodel import col, select

from nudger.config import Programme
from nudger.mail.compose import Composer
from nudger.mail.outbox import Outcome, deliver
from nudger.programmes.nudges import plan_due, preview
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Nudge, NudgeStatus, Outbox
from tests.fixtures import identity, keys


def prog(key: str, **extra: Any) -> Programme:
    return Programme.model_validate(
        {
            "key": key,
            "name": key.title(),
            "schedule": {"weekday": "tue", "time": "10:00", "jitter_minutes": 0},
            "questions": [{"text": f"What about {key}?"}],
            **extra,
        }
    )


MONDAY = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)  # planning window of 2026-W03 (Tuesday 13 January)


async def enrol(sessions: SessionMaker, programmes: list[Programme]) -> None:
    async with transaction(sessions) as session:
        rows = [RosterRow(2, "ana@corp.test", "Ana", "Eng", "Europe/Berlin")]
        await upsert_people(session, rows, programmes, MONDAY, consent_how="test")


async def nudges(sessions: SessionMaker) -> list[Nudge]:
    async with sessions() as session:
        return list((await session.exec(select(Nudge).order_by(col(Nudge.id)))).all())


async def test_two_programmes_on_the_same_day_send_one_nudge_a_day(sessions: SessionMaker, env: Any) -> None:
    programmes = [prog("alpha"), prog("beta")]
    await enrol(sessions, programmes)
    composer = Composer(env, identity(), keys())
    await plan_due(sessions, programmes, composer, RecordingQueue(), MONDAY)
    days = [n.due_at.date() for n in await nudges(sessions)]
    assert sorted(days) == [datetime(2026, 1, 13).date(), datetime(2026, 1, 14).date()]  # Tue, then Wed
    # and planning again changes nothing
    await plan_due(sessions, programmes, composer, RecordingQueue(), MONDAY + timedelta(hours=1))
    assert len(await nudges(sessions)) == 2


async def test_one_reminder_only_to_people_who_have_not_answered(sessions: SessionMaker, env: Any) -> None:
    programme = prog("alpha", reminder={"after_hours": 48})
    await enrol(sessions, [programme])
    composer = Composer(env, identity(), keys())
    queue = RecordingQueue()
    await plan_due(sessions, [programme], composer, queue, MONDAY)
    [nudge] = await nudges(sessions)
    async with transaction(sessions) as session:
        row = await session.get(Nudge, nudge.id)
        assert row is not None
        row.status, row.sent_at = NudgeStatus.SENT, nudge.due_at
    later = nudge.due_at + timedelta(hours=49)
    listed = await preview(
        sessions,
        [programme],
        nudge.due_at + timedelta(hours=1),
        later - timedelta(hours=1),
        later + timedelta(hours=1),
    )
    assert [(p.kind, p.person) for p in listed] == [("reminder", "ana@corp.test")]
    await plan_due(sessions, [programme], composer, queue, later)
    await plan_due(sessions, [programme], composer, queue, later + timedelta(hours=1))  # still only one
    async with sessions() as session:
        reminders = (await session.exec(select(Outbox).where(Outbox.kind == "reminder"))).all()
    assert len(reminders) == 1
    msg = message_from_bytes(reminders[0].raw)
    assert msg["In-Reply-To"] == nudge.message_id  # threaded under the nudge
    assert "only reminder" in msg.get_payload()[0].get_payload(decode=True).decode()


async def test_a_reminder_is_not_sent_if_the_answer_came_first(sessions: SessionMaker, env: Any) -> None:
    programme = prog("alpha", reminder={"after_hours": 24})
    await enrol(sessions, [programme])
    composer = Composer(env, identity(), keys())
    await plan_due(sessions, [programme], composer, RecordingQueue(), MONDAY)
    [nudge] = await nudges(sessions)
    async with transaction(sessions) as session:
        row = await session.get(Nudge, nudge.id)
        assert row is not None
        row.status, row.sent_at = NudgeStatus.SENT, nudge.due_at
    later = nudge.due_at + timedelta(hours=25)
    queue = RecordingQueue()
    await plan_due(sessions, [programme], composer, queue, later)
    async with transaction(sessions) as session:  # the answer arrives before the reminder is delivered
        row = await session.get(Nudge, nudge.id)
        assert row is not None
        row.status = NudgeStatus.REPLIED
    [(outbox_id, _)] = queue.sends

    class NoTransport:
        async def send(self, envelope_from: str, to_addr: str, raw: bytes) -> str:
            raise AssertionError("must not send")

        async def close(self) -> None:
            return None

    result = await deliver(sessions, NoTransport(), outbox_id, later)
    assert result.outcome == Outcome.SKIPPED


async def test_three_silent_rounds_make_a_person_dormant_until_they_answer(
    sessions: SessionMaker, env: Any
) -> None:
    from nudger.conversations.circles import close_rounds
    from nudger.store.models import Enrolment

    programme = prog("alpha", ghost_after=3)
    await enrol(sessions, [programme])
    composer = Composer(env, identity(), keys())
    queue = RecordingQueue()
    for week in range(4):
        monday = MONDAY + timedelta(weeks=week)
        await plan_due(sessions, [programme], composer, queue, monday)
        async with transaction(sessions) as session:  # delivered, and nobody answers
            for n in (await session.exec(select(Nudge).where(Nudge.status == NudgeStatus.PLANNED))).all():
                n.status, n.sent_at = NudgeStatus.SENT, n.due_at
        await close_rounds(sessions, {"alpha": programme}, composer, queue, monday + timedelta(days=6))
    assert len(await nudges(sessions)) == 3  # the fourth week asks no more
    async with sessions() as session:
        enrolment = (await session.exec(select(Enrolment))).one()
        check_ins = (await session.exec(select(Outbox).where(Outbox.kind == "check_in"))).all()
    assert enrolment.dormant_since is not None
    assert enrolment.silent_rounds == 3
    assert len(check_ins) == 1  # one "still interested?", not one a week
    assert "still interested?" in str(message_from_bytes(check_ins[0].raw)["Subject"])


async def test_a_new_timezone_is_used_from_the_next_round(sessions: SessionMaker, env: Any) -> None:
    programme = prog("alpha")
    await enrol(sessions, [programme])
    composer = Composer(env, identity(), keys())
    await plan_due(sessions, [programme], composer, RecordingQueue(), MONDAY)
    async with transaction(sessions) as session:  # Ana moves from Berlin to Tokyo
        await upsert_people(
            session,
            [RosterRow(2, "ana@corp.test", "Ana", "Eng", "Asia/Tokyo")],
            [programme],
            MONDAY,
            consent_how="test",
        )
    await plan_due(sessions, [programme], composer, RecordingQueue(), MONDAY + timedelta(weeks=1))
    first, second = await nudges(sessions)
    assert first.due_at == datetime(2026, 1, 13, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert second.due_at == datetime(2026, 1, 20, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo


async def test_a_pause_that_ends_mid_week_resumes_with_the_next_round(
    sessions: SessionMaker, env: Any
) -> None:
    from nudger.store.models import Person, PersonStatus

    programme = prog("alpha")
    await enrol(sessions, [programme])
    async with transaction(sessions) as session:
        ana = (await session.exec(select(Person))).one()
        ana.status, ana.paused_until = PersonStatus.PAUSED, datetime(2026, 1, 14, tzinfo=UTC)  # Wednesday
    composer = Composer(env, identity(), keys())
    for hours in range(0, 24 * 9, 6):  # the worker plans all week long
        await plan_due(sessions, [programme], composer, RecordingQueue(), MONDAY + timedelta(hours=hours))
    [nudge] = await nudges(sessions)
    assert nudge.due_at == datetime(
        2026, 1, 20, 9, 0, tzinfo=UTC
    )  # not the Tuesday she was away; the next one


async def test_plan_preview_lists_the_check_in_a_silent_round_would_bring(
    sessions: SessionMaker, env: Any
) -> None:
    from nudger.conversations.circles import close_rounds

    programme = prog("alpha", ghost_after=2)
    await enrol(sessions, [programme])
    composer = Composer(env, identity(), keys())
    for week in range(2):
        monday = MONDAY + timedelta(weeks=week)
        await plan_due(sessions, [programme], composer, RecordingQueue(), monday)
        async with transaction(sessions) as session:
            for n in (await session.exec(select(Nudge).where(Nudge.status == NudgeStatus.PLANNED))).all():
                n.status, n.sent_at = NudgeStatus.SENT, n.due_at
        if week == 0:
            await close_rounds(
                sessions, {"alpha": programme}, composer, RecordingQueue(), monday + timedelta(days=6)
            )
    second_monday = MONDAY + timedelta(weeks=1)
    listed = await preview(
        sessions, [programme], second_monday, second_monday, second_monday + timedelta(days=7)
    )
    assert [(p.kind, p.person) for p in listed if p.kind == "check_in"] == [("check_in", "ana@corp.test")]


async def test_a_large_round_is_planned_and_reminded_in_one_pass_each(
    sessions: SessionMaker, env: Any
) -> None:
    """More people than one planning chunk: every one gets a nudge, then a reminder, in one run."""
    from sqlalchemy import func, update

    from nudger.programmes.nudges import BATCH

    people = BATCH * 2 + 7
    programme = prog("alpha", reminder={"after_hours": 48})
    async with transaction(sessions) as session:
        rows = [RosterRow(i, f"p{i}@corp.test", f"P {i}", "Eng", "Europe/Berlin") for i in range(people)]
        await upsert_people(session, rows, [programme], MONDAY, consent_how="test")
    composer = Composer(env, identity(), keys())
    queue = RecordingQueue()
    assert await plan_due(sessions, [programme], composer, queue, MONDAY) == people
    assert len({outbox_id for outbox_id, _ in queue.sends}) == people
    due = (await nudges(sessions))[0].due_at
    async with transaction(sessions) as session:
        await session.exec(update(Nudge).values(status=NudgeStatus.SENT, sent_at=due))
    await plan_due(sessions, [programme], composer, queue, due + timedelta(hours=49))
    async with sessions() as session:
        reminded = (await session.exec(select(func.count()).where(col(Nudge.reminded_at).is_not(None)))).one()
        kinds = (await session.exec(select(Outbox.kind, func.count()).group_by(col(Outbox.kind)))).all()
    assert reminded == people
    assert dict(kinds) == {"nudge": people, "reminder": people}


async def test_a_run_stopped_between_nudges_and_their_emails_leaves_no_one_unasked(
    sessions: SessionMaker, env: Any, monkeypatch: Any
) -> None:
    """A chunk's nudge rows and its outbox rows are written in two transactions (composing in between
    holds no lock). A run that dies in between leaves nudges without email: the next run mails them,
    once each."""
    from sqlalchemy import func

    from nudger.programmes import nudges as planning

    people = planning.BATCH * 2 + 7
    programme = prog("alpha")
    async with transaction(sessions) as session:
        rows = [RosterRow(i, f"p{i}@corp.test", f"P {i}", "Eng", "Europe/Berlin") for i in range(people)]
        await upsert_people(session, rows, [programme], MONDAY, consent_how="test")
    composer = Composer(env, identity(), keys())
    real = planning.compose_nudge
    composed = 0

    def dies_in_the_second_chunk(*args: Any, **kwargs: Any) -> Any:
        nonlocal composed
        composed += 1
        if composed == planning.BATCH + 5:
            raise RuntimeError("the worker was killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(planning, "compose_nudge", dies_in_the_second_chunk)
    first = RecordingQueue()
    try:
        await plan_due(sessions, [programme], composer, first, MONDAY)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the run should have died")
    async with sessions() as session:
        planned = (await session.exec(select(func.count()).select_from(Nudge))).one()
        mailed = (await session.exec(select(func.count()).select_from(Outbox))).one()
    assert (planned, mailed) == (planning.BATCH * 2, planning.BATCH)  # the second chunk: nudges only
    assert len(first.sends) == planning.BATCH

    monkeypatch.setattr(planning, "compose_nudge", real)
    second = RecordingQueue()
    assert await plan_due(sessions, [programme], composer, second, MONDAY + timedelta(minutes=5)) == (
        people - planning.BATCH
    )
    async with sessions() as session:
        outbox = (await session.exec(select(Outbox.person_id, Outbox.nudge_id))).all()
        nudge_ids = set((await session.exec(select(Nudge.id))).all())
    assert sorted(p for p, _ in outbox) == sorted(set(p for p, _ in outbox))  # one email per person
    assert len(outbox) == people
    assert {n for _, n in outbox} == nudge_ids  # every nudge has its email
    assert len(second.sends) == people - planning.BATCH
    # and a third run finds nothing left to do
    assert (
        await plan_due(sessions, [programme], composer, RecordingQueue(), MONDAY + timedelta(minutes=10)) == 0
    )


@pytest.mark.slow
async def test_planning_on_postgresql_gives_the_planner_statistics(postgres_url: str, env: Any) -> None:
    """A roster imported into fresh tables has no statistics until autovacuum gets there (if it is on):
    PostgreSQL then plans the "who has no nudge yet" query as a scan of the nudge table per person, and
    a 20 000 round took 10 s a chunk. Planning analyses the tables it reads."""
    from sqlalchemy import text

    from nudger.programmes.nudges import BATCH
    from nudger.store.db import make_engine, make_sessionmaker, migrate
    from tests.fixtures import _reset_postgres

    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    try:
        await _reset_postgres(postgres_url)
        await migrate(engine)
        programme = prog("alpha")
        people = BATCH + 30
        async with transaction(sessions) as session:
            rows = [RosterRow(i, f"p{i}@corp.test", f"P {i}", "Eng", "Europe/Berlin") for i in range(people)]
            await upsert_people(session, rows, [programme], MONDAY, consent_how="test")
        composer = Composer(env, identity(), keys())
        assert await plan_due(sessions, [programme], composer, RecordingQueue(), MONDAY) == people
        async with engine.connect() as conn:
            known = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('person', 'enrolment')"
                        )
                    )
                ).all()
            )
        assert known == {
            "person": people,
            "enrolment": people,
        }  # what ANALYZE found, not "never analysed" (-1)
    finally:
        await engine.dispose()
        await _reset_postgres(postgres_url)
