"""The roster: CSV lines reported by number, emails normalised, audiences, and upserting into a database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from nudger.config import Programme
from nudger.programmes.roster import RosterRow, RowError, in_audience, parse_roster, set_status, upsert_people
from nudger.store.db import make_engine, make_sessionmaker, migrate, transaction
from nudger.store.models import Audit, Enrolment, Person, PersonStatus

HEADER = "email,name,team,timezone\n"


def programme(key: str = "weekly", **audience: Any) -> Programme:
    return Programme.model_validate(
        {
            "key": key,
            "name": key.title(),
            "audience": audience or {"everyone": True},
            "questions": [{"text": "What did you learn?"}],
        }
    )


# ------------------------------------------------------------------------------------ parse_roster


def test_parse_roster_reads_good_rows() -> None:
    rows, errors = parse_roster(HEADER + "ana@corp.test,Ana Lima,Sales,Europe/Paris\nbo@corp.test,Bo,Ops,\n")
    assert errors == []
    assert rows == [
        RosterRow(2, "ana@corp.test", "Ana Lima", "Sales", "Europe/Paris"),
        RosterRow(3, "bo@corp.test", "Bo", "Ops", "UTC"),  # no timezone: UTC
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not-an-email,Bad,Sales,UTC", 'line 3: not an email address "not-an-email"'),
        ("two@@corp.test,Bad,Sales,UTC", "line 3: not an email address"),
        ("x@corp.test,X,Sales,Mars/Olympus", 'line 3: unknown timezone "Mars/Olympus"'),
        ("x@corp.test,X,Sales,CET+5", "line 3: unknown timezone"),
        ("ANA@corp.test,Again,Sales,UTC", "line 3: duplicate of line 2 (ana@corp.test)"),
        ("x@corp.test,X,Sales,UTC,Paris,extra", "line 3: too many fields"),
    ],
)
def test_parse_roster_reports_each_bad_line_by_number(line: str, message: str) -> None:
    text = HEADER + "ana@corp.test,Ana,Sales,UTC\n" + line + "\ncy@corp.test,Cy,Ops,UTC\n"
    rows, errors = parse_roster(text)
    assert [r.email for r in rows] == ["ana@corp.test", "cy@corp.test"]  # the good lines still count
    assert [r.line for r in rows] == [2, 4]
    assert len(errors) == 1
    assert str(errors[0]).startswith(message), str(errors[0])
    assert errors[0].line == 3


def test_parse_roster_reports_every_bad_line_at_once() -> None:
    text = (
        HEADER
        + "bad,A,T,UTC\n"  # 2
        + "ok@corp.test,Ok,T,UTC\n"  # 3
        + "\n"  # 4: blank lines are skipped but still counted
        + "b@corp.test,B,T,Nowhere/City\n"  # 5
        + "OK@corp.test,Dup,T,UTC\n"  # 6
    )
    rows, errors = parse_roster(text)
    assert [r.line for r in rows] == [3]
    assert [(e.line, e.message.split(" ")[0]) for e in errors] == [
        (2, "not"),
        (5, "unknown"),
        (6, "duplicate"),
    ]


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("email,name\nana@corp.test,Ana\n", "team, timezone"),
        ("mail,name,team,timezone\nana@corp.test,Ana,S,UTC\n", "email"),
        ("", "email, name, team, timezone"),
    ],
)
def test_parse_roster_missing_columns_is_a_header_error(text: str, missing: str) -> None:
    rows, errors = parse_roster(text)
    assert rows == []
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"line 1: missing column(s): {missing}")


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        ("Ana.Lima@Corp.TEST", "ana.lima@corp.test"),
        ("  ana@corp.test  ", "ana@corp.test"),
        ("<ana@corp.test>", "ana@corp.test"),
        (" < ANA@CORP.TEST > ", "ana@corp.test"),
    ],
)
def test_parse_roster_normalises_emails(raw: str, email: str) -> None:
    rows, errors = parse_roster(HEADER + f'"{raw}",Ana,Sales,UTC\n')
    assert errors == []
    assert [r.email for r in rows] == [email]


def test_parse_roster_tolerates_a_bom_header_case_and_spaces_and_an_optional_location() -> None:
    text = "\ufeffEmail, Name ,TEAM,TimeZone,Location\n ana@corp.test , Ana Lima ,Sales, Asia/Kolkata ,Pune\n"
    rows, errors = parse_roster(text)
    assert errors == []
    assert rows == [RosterRow(2, "ana@corp.test", "Ana Lima", "Sales", "Asia/Kolkata", "Pune")]


def test_row_error_reads_as_line_and_message() -> None:
    assert str(RowError(7, "not an email address")) == "line 7: not an email address"


# ------------------------------------------------------------------------------------ in_audience


@pytest.mark.parametrize(
    ("audience", "email", "team", "included"),
    [
        ({"everyone": True}, "ana@corp.test", "Sales", True),
        ({"everyone": True}, "bo@corp.test", "", True),
        ({"everyone": False}, "ana@corp.test", "Sales", False),
        ({"teams": ["Sales", "Support"]}, "ana@corp.test", "Sales", True),
        ({"teams": ["Sales", "Support"]}, "bo@corp.test", "Support", True),
        ({"teams": ["Sales", "Support"]}, "cy@corp.test", "Ops", False),
        ({"teams": ["Sales"]}, "dee@corp.test", "", False),
        ({"emails": ["ana@corp.test"]}, "ana@corp.test", "Ops", True),
        ({"emails": ["Ana@Corp.TEST"]}, "ana@corp.test", "Ops", True),  # config emails are normalised
        ({"emails": ["ana@corp.test"]}, "bo@corp.test", "Ops", False),
        ({"teams": ["Sales"], "emails": ["bo@corp.test"]}, "bo@corp.test", "Ops", True),
        ({"teams": ["Sales"], "emails": ["bo@corp.test"]}, "ana@corp.test", "Sales", True),
        ({"teams": ["Sales"], "emails": ["bo@corp.test"]}, "cy@corp.test", "Ops", False),
    ],
)
def test_in_audience(audience: dict[str, Any], email: str, team: str, included: bool) -> None:
    assert in_audience(programme(**audience), email, team) is included


# ------------------------------------------------------------------------------------ upsert (SQLite)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


async def test_upsert_people_creates_then_updates_and_enrols_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        await migrate(engine)
        sessions = make_sessionmaker(engine)
        programmes = [programme("weekly"), programme("sales-only", teams=["Sales"])]
        first, errors = parse_roster(
            HEADER + "ana@corp.test,Ana,Sales,Europe/Paris\nbo@corp.test,Bo,Ops,UTC\n"
        )
        assert errors == []

        async with transaction(sessions) as session:
            result = await upsert_people(session, first, programmes, T0, consent_how="import:hr.csv")
        assert (result.created, result.updated) == (2, 0)

        # the same import again, with Bo's details changed and one new person
        second, _ = parse_roster(
            HEADER
            + "ana@corp.test,Ana,Sales,Europe/Paris\nBO@corp.test,Bo Chen,Sales,Asia/Kolkata\n"
            + "cy@corp.test,Cy,Ops,UTC\n"
        )
        async with transaction(sessions) as session:
            result = await upsert_people(session, second, programmes, T1, consent_how="import:hr2.csv")
        assert (result.created, result.updated) == (1, 2)

        async with sessions() as session:
            people = {p.email: p for p in (await session.exec(select(Person))).all()}
            assert sorted(people) == ["ana@corp.test", "bo@corp.test", "cy@corp.test"]
            bo = people["bo@corp.test"]
            assert (bo.name, bo.team, bo.timezone) == ("Bo Chen", "Sales", "Asia/Kolkata")
            assert bo.status == PersonStatus.ACTIVE
            assert bo.consent_how == "import:hr.csv"  # consent is recorded once, when first imported

            enrolments = (await session.exec(select(Enrolment))).all()
            by_person = {
                email: sorted(e.programme for e in enrolments if e.person_id == p.id)
                for email, p in people.items()
            }
            assert by_person == {
                "ana@corp.test": ["sales-only", "weekly"],
                "bo@corp.test": ["sales-only", "weekly"],  # moved to Sales: enrolled there too
                "cy@corp.test": ["weekly"],
            }

            audits = (await session.exec(select(Audit).where(col(Audit.action) == "consent"))).all()
            consent = sorted((a.person_id, a.detail) for a in audits)
            assert consent == sorted(
                [
                    (people["ana@corp.test"].id, "import:hr.csv"),
                    (people["bo@corp.test"].id, "import:hr.csv"),
                    (people["cy@corp.test"].id, "import:hr2.csv"),
                ]
            )
    finally:
        await engine.dispose()


async def test_set_status_left_ends_enrolments_and_unknown_email_is_false(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        await migrate(engine)
        sessions = make_sessionmaker(engine)
        rows, _ = parse_roster(HEADER + "ana@corp.test,Ana,Sales,UTC\nbo@corp.test,Bo,Ops,UTC\n")
        async with transaction(sessions) as session:
            await upsert_people(
                session, rows, [programme("weekly"), programme("other")], T0, consent_how="import:x"
            )

        async with transaction(sessions) as session:
            assert await set_status(session, " <ANA@corp.test> ", PersonStatus.LEFT, T1, how="cli:optout")
        async with transaction(sessions) as session:
            assert not await set_status(session, "nobody@corp.test", PersonStatus.LEFT, T1, how="cli:optout")

        async with sessions() as session:
            people = {p.email: p for p in (await session.exec(select(Person))).all()}
            assert people["ana@corp.test"].status == PersonStatus.LEFT
            assert people["bo@corp.test"].status == PersonStatus.ACTIVE
            enrolments = (await session.exec(select(Enrolment))).all()
            left = {(e.person_id, e.programme): e.left_at for e in enrolments}
            ana, bo = people["ana@corp.test"].id, people["bo@corp.test"].id
            assert left[(ana, "weekly")] == T1
            assert left[(ana, "other")] == T1
            assert left[(bo, "weekly")] is None
            audits = (await session.exec(select(Audit).where(col(Audit.action) == "optout"))).all()
            assert [(a.person_id, a.detail) for a in audits] == [(ana, "cli:optout")]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("josé@corp.test,José,Eng,UTC", "only plain ASCII addresses"),
        ('ana@corp.test,"Ana\nSilva",Eng,UTC', "name contains a line break"),
    ],
)
def test_rows_that_could_not_be_mailed_are_refused_at_import(row: str, message: str) -> None:
    rows, errors = parse_roster("email,name,team,timezone\n" + row + "\n")
    assert rows == []
    assert len(errors) == 1
    assert message in str(errors[0])


async def test_bulk_upsert_with_tags_on_sqlite_and_postgresql(db_url: str) -> None:
    from datetime import UTC, datetime

    from sqlmodel import select

    from nudger.config import Programme
    from nudger.programmes.roster import upsert_people
    from nudger.store.db import make_engine, make_sessionmaker, migrate, transaction
    from nudger.store.models import Audit, Enrolment, Person

    now = datetime(2026, 11, 30, tzinfo=UTC)
    text = "email,name,team,timezone,tags\n" + "".join(
        f"p{i}@corp.test,P {i},T{i % 3},UTC,{'mentor;new' if i % 2 else 'new'}\n" for i in range(2500)
    )
    rows, errors = parse_roster(text)
    assert errors == []
    mentors = Programme.model_validate(
        {
            "key": "mentors",
            "name": "Mentors",
            "audience": {"tags": ["mentor"]},
            "questions": [{"text": "Why?"}],
        }
    )
    everyone = Programme.model_validate({"key": "all", "name": "All", "questions": [{"text": "Why?"}]})
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        await migrate(engine)
        for _ in range(2):  # importing twice creates once, then updates
            async with transaction(sessions) as session:
                result = await upsert_people(
                    session, rows, [mentors, everyone], now, consent_how="import:test"
                )
        assert (result.created, result.updated) == (0, 2500)
        async with sessions() as session:
            people = (await session.exec(select(Person))).all()
            enrolments = (await session.exec(select(Enrolment.programme))).all()
            audits = (await session.exec(select(Audit.action))).all()
        assert len(people) == 2500
        assert {p.tags for p in people} == {"mentor,new", "new"}
        assert enrolments.count("all") == 2500
        assert enrolments.count("mentors") == 1250
        assert audits.count("consent") == 2500  # one consent record per person, not per import
    finally:
        await engine.dispose()
