"""The F6 sections end to end: gathered from a real SQLite database, through the rule, rendered."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nudger.mail.templating import make_environment
from nudger.reports.cuts import Cell
from nudger.reports.gather import gather_report
from nudger.reports.metrics import ReportData
from nudger.reports.render import CSV_HEADER, report_csv, report_html, report_json, report_text
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate
from tests.reports.seed import ANSWERS, NOW, PROGRAMME, seed_programme
from tests.reports.test_cuts import leaks


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[tuple[SessionMaker, Path]]:
    path = tmp_path / "nudger.db"
    engine = make_engine("sqlite+aiosqlite:///" + str(path))
    await migrate(engine)
    sessions = make_sessionmaker(engine)
    await seed_programme(sessions)
    try:
        yield sessions, path
    finally:
        await engine.dispose()


async def gather(sessions: SessionMaker, period: str = "2026-W48", threshold: int = 5) -> ReportData:
    async with sessions() as s:
        return await gather_report(
            s,
            programme_key=PROGRAMME,
            programme_name="Leading Well",
            period=period,
            now=NOW,
            threshold=threshold,
        )


def outputs(data: ReportData) -> list[str]:
    env = make_environment()
    return [report_html(env, data), report_text(env, data), json.dumps(report_json(data)), report_csv(data)]


def atoms_of(path: Path, weeks: tuple[str, ...]) -> dict[tuple[str, ...], Cell]:
    with sqlite3.connect(path) as c:
        rows = c.execute(
            f"""SELECT p.team, p.location, count(DISTINCT n.person_id),
                       count(DISTINCT CASE WHEN n.status = 'replied' THEN n.person_id END)
                FROM nudge n JOIN round r ON r.id = n.round_id JOIN person p ON p.id = n.person_id
                WHERE r.period IN ({",".join("?" * len(weeks))}) GROUP BY 1, 2""",
            weeks,
        ).fetchall()
    return {(t, loc): Cell(a, b) for t, loc, a, b in rows}


@pytest.mark.parametrize(
    ("period", "weeks"), [("2026-W48", ("2026-W48",)), ("2026-11", ("2026-W47", "2026-W48"))]
)
async def test_cuts_from_the_database_leak_nothing(
    db: tuple[SessionMaker, Path], period: str, weeks: tuple[str, ...]
) -> None:
    sessions, path = db
    data = await gather(sessions, period)
    team, location = data.cuts
    shown_teams = {r.value for r in team.rows}
    shown_locations = {r.value for r in location.rows}
    assert "Legal" not in shown_teams  # 4 people
    assert not ({"Leeds"} <= shown_locations and "Ops" in shown_teams)  # Leeds − Ops = Legal
    assert leaks(atoms_of(path, weeks), ["team", "location"], data.cuts, 5) == []
    for t in data.cuts:
        for r in t.rows:
            assert r.cell.answered >= 5


async def test_private_answers_posts_and_names_never_appear(db: tuple[SessionMaker, Path]) -> None:
    sessions, _ = db
    for period in ("2026-W48", "2026-11", "2026-11-16..2026-11-29"):
        for out in outputs(await gather(sessions, period)):
            for secret in ("PRIVATE-SECRET", "manager and I", "POST-TEXT", "@example.com", "Person1"):
                assert secret not in out, (period, secret)


async def test_themes_and_highlights(db: tuple[SessionMaker, Path]) -> None:
    sessions, _ = db
    data = await gather(sessions)
    themes = data.themes
    assert themes is not None
    assert not themes.withheld
    assert themes.people is not None
    names = [t.name for t in themes.themes]
    assert "Feedback" in names
    assert all(5 <= t.people <= themes.people for t in themes.themes)
    assert all(c >= 5 for _, c in themes.phrases)
    assert themes.compared  # W47 passed the threshold too
    assert data.highlights
    for quote in data.highlights:
        assert quote in ANSWERS  # consented, shared answers only, unattributed


async def test_conversation_health_connections_and_questions(db: tuple[SessionMaker, Path]) -> None:
    sessions, _ = db
    w47, w48 = await gather(sessions, "2026-W47"), await gather(sessions, "2026-W48")
    for data in (w47, w48):
        h = data.health
        assert h is not None
        assert h.circles == data.participation.circles > 0
        assert h.follow_up_share is not None
        assert 0 < h.follow_up_share <= 1
        assert h.all_posted_share is not None
        assert h.median_first_follow_up is not None
        assert h.posts_per_circle == data.participation.posts / data.participation.circles
    c47, c48 = w47.connections, w48.connections
    assert c47 is not None
    assert c48 is not None
    assert c47.new_pairs > 0  # nothing before W47: every cross-team pair that talked is new
    assert c47.new_team_links or c47.other_new_team_links
    q = w48.questions
    assert q is not None
    assert [r.question for r in q.rows] == ["What made work easier this week?"]
    assert q.rows[0].answer_rate == w48.participation.answer_rate


async def test_month_and_range_hold_both_weeks(db: tuple[SessionMaker, Path]) -> None:
    sessions, _ = db
    w47, w48 = await gather(sessions, "2026-W47"), await gather(sessions, "2026-W48")
    for period in ("2026-11", "2026-11-16..2026-11-29"):
        data = await gather(sessions, period)
        assert data.participation.asked == w47.participation.asked + w48.participation.asked
        assert data.participation.answered == w47.participation.answered + w48.participation.answered
        assert data.participation.answerers is not None
        assert data.participation.answerers <= data.participation.answered
        assert data.questions is not None
        assert len(data.questions.rows) + data.questions.withheld == 2
        assert data.notes  # filed under W48, inside the span
    text = outputs(await gather(sessions, "2026-11"))[1]
    assert "CONVERSATIONS THIS MONTH" in text
    assert "November 2026" in text
    assert "People who answered" in text


async def test_a_suppressed_period_shows_no_section(db: tuple[SessionMaker, Path]) -> None:
    sessions, _ = db
    data = await gather(sessions, threshold=40)
    assert data.suppressed
    assert all(not t.rows for t in data.cuts)
    assert data.health is None
    assert data.connections is None
    assert data.highlights == ()
    assert data.themes is not None
    assert data.themes.withheld
    assert data.questions is not None
    assert data.questions.rows == ()
    for out in outputs(data):
        assert "Feedback" not in out
        assert "weekly review" not in out


async def test_csv_has_one_figure_per_row(db: tuple[SessionMaker, Path]) -> None:
    sessions, _ = db
    data = await gather(sessions)
    rows = list(csv.reader(io.StringIO(report_csv(data))))
    assert tuple(rows[0]) == CSV_HEADER
    assert all(len(r) == 4 for r in rows)
    got = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    assert got[("participation", "2026-W48", "asked")] == str(data.participation.asked)
    assert got[("by team", "Sales", "answered")] == "11"
    assert ("themes", "Feedback", "people") in got
    assert any(r[0] == "you said, we did" for r in rows)
