"""Report rendering: email-safe HTML, a plain-text alternative with the same numbers, stable JSON, charts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import jinja2
import pytest

from nudger.mail.templating import make_environment
from nudger.reports.charts import BarRow, bar_rows, text_bar
from nudger.reports.metrics import Participation, ReportData, build_report
from nudger.reports.render import (
    SCHEMA,
    period_label,
    report_context,
    report_html,
    report_json,
    report_subject,
    report_text,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_environment()


def part(asked: int, answered: int, circles: int = 0, posts: int = 0) -> Participation:
    return Participation(
        enrolled=1130, active=1120, paused=4, left=6, asked=asked, answered=answered,
        circles=circles, posts=posts, bounces=2, opt_outs=1,
    )  # fmt: skip


def make(p: Participation, *, name: str = "Leading Well", notes: tuple[str, ...] = ()) -> ReportData:
    return build_report(
        programme_key="lw",
        programme_name=name,
        period="2026-W48",
        question="What did you <try> this week?",
        participation=p,
        history=[("2026-W46", part(120, 60, 15, 80)), ("2026-W47", part(122, 3))],
        notes=notes,
        now=NOW,
        threshold=5,
    )


OPEN = make(part(1124, 871, 218, 961), notes=("Fridays are <b>meeting-free</b> & quieter.",))
HIDDEN = make(part(40, 3, 1, 7))


def assert_mail_safe(html: str) -> None:
    lower = html.lower()
    for banned in ("<script", "<svg", "<style", "<link", "javascript:", "<iframe", "<form", "<object"):
        assert banned not in lower, banned
    assert not re.search(r"""src\s*=\s*["']?https?:""", lower)
    # images only as inline PNG parts (cid:) or, in files, data: URIs of PNGs
    for src in re.findall(r'<img[^>]*\ssrc="([^"]*)"', lower):
        assert src.startswith(("cid:", "data:image/png;base64,")), src[:40]
    assert lower.count("<img") == len(re.findall(r"<img[^>]*\ssrc=", lower))
    assert not re.search(r"url\(", lower)
    assert "<table" in lower


@pytest.mark.parametrize("data", [OPEN, HIDDEN], ids=["open", "suppressed"])
def test_html_is_mail_safe(env: jinja2.Environment, data: ReportData) -> None:
    assert_mail_safe(report_html(env, data))


def test_html_and_text_show_the_numbers(env: jinja2.Environment) -> None:
    html, text = report_html(env, OPEN), report_text(env, OPEN)
    for figure in ("1,124", "871", "77%", "218", "961", "1,130", "1,120", "50%"):
        assert figure in html, figure
        assert figure in text, figure
    assert "Conversations this week" in html
    assert "You said, we did" in html
    assert "YOU SAID, WE DID" in text


def test_text_alternative_has_every_figure_of_the_html(env: jinja2.Environment) -> None:
    for data in (OPEN, HIDDEN):
        ctx = report_context(data)
        html, text = report_html(env, data), report_text(env, data)
        lines = [*ctx["headline"], *ctx["people"], *ctx["delivery"]]  # type: ignore[misc]
        rows = [*ctx["volume_chart"], *ctx["rate_chart"]]  # type: ignore[misc]
        assert lines
        assert rows
        for item in (*lines, *rows):
            assert item.text in text, item
            assert item.text in html, item


def test_suppressed_report_withholds_answers(env: jinja2.Environment) -> None:
    html, text = report_html(env, HIDDEN), report_text(env, HIDDEN)
    data = report_json(HIDDEN)
    figures = data["participation"]
    assert isinstance(figures, dict)
    assert figures["answered"] is None
    assert figures["answer_rate"] is None
    assert figures["circles"] is None
    assert figures["posts"] is None
    assert figures["withheld"] == ["answered", "answer_rate", "circles", "posts"]
    assert figures["asked"] == 40
    assert data["suppressed"] is True
    for out in (html, text):
        assert "fewer than 5" in out
        assert "8%" not in out  # 3 / 40, rounded
        assert "to protect their privacy" in out
    # The withheld period of the trend (W47: 3 answers) shows no rate either.
    assert "2%" not in text


def test_notes_and_question_are_escaped_in_html(env: jinja2.Environment) -> None:
    html = report_html(env, OPEN)
    assert "<b>meeting-free</b>" not in html
    assert "&lt;b&gt;meeting-free&lt;/b&gt; &amp; quieter." in html
    assert "&lt;try&gt;" in html
    assert "Fridays are <b>meeting-free</b> & quieter." in report_text(env, OPEN)


def test_no_notes_invites_closing_the_loop(env: jinja2.Environment) -> None:
    assert "nudger notes" in report_text(env, HIDDEN)
    assert "nudger notes" in report_html(env, HIDDEN)


def test_json_shape_is_stable_and_serialisable() -> None:
    data = report_json(OPEN)
    assert set(data) == {
        "schema", "programme", "period", "window", "generated_at", "question",
        "participation", "trend", "notes", "threshold", "suppressed",
        "kind", "answerers", "cuts", "conversation", "connections", "questions", "themes", "highlights",
    }  # fmt: skip
    assert data["schema"] == SCHEMA == "nudger.report/1"
    assert data["programme"] == {"key": "lw", "name": "Leading Well"}
    assert data["period"] == "2026-W48"
    assert data["window"] == {"start": "2026-11-23T00:00:00+00:00", "end": "2026-11-30T00:00:00+00:00"}
    assert data["participation"] == {
        "enrolled": 1130, "active": 1120, "paused": 4, "left": 6, "asked": 1124, "answered": 871,
        "answer_rate": 0.7749, "circles": 218, "posts": 961, "bounces": 2, "opt_outs": 1, "withheld": [],
    }  # fmt: skip
    trend = data["trend"]
    assert isinstance(trend, list)
    assert [t["period"] for t in trend] == ["2026-W46", "2026-W47"]
    assert set(trend[0]) == {
        "period", "asked", "answered", "answer_rate", "circles", "posts", "bounces", "opt_outs", "withheld",
    }  # fmt: skip
    assert trend[1]["answered"] is None
    assert data["notes"] == ["Fridays are <b>meeting-free</b> & quieter."]
    assert data["threshold"] == 5
    assert data["suppressed"] is False
    assert json.loads(json.dumps(data)) == data


def test_subject_is_one_line() -> None:
    subject = report_subject(make(part(10, 5), name="Leading\r\nWell\nBcc: x@example.com"))
    assert "\n" not in subject
    assert "\r" not in subject
    assert subject == "Conversations this week: Leading Well Bcc: x@example.com, week 48, 23–29 Nov 2026"


@pytest.mark.parametrize(
    ("period", "label"),
    [
        ("2026-W48", "week 48, 23–29 Nov 2026"),
        ("2026-W49", "week 49, 30 Nov – 6 Dec 2026"),
        ("2026-W01", "week 1, 29 Dec 2025 – 4 Jan 2026"),
    ],
)
def test_period_label(period: str, label: str) -> None:
    assert period_label(period) == label


def test_rate_chart_includes_this_week_last() -> None:
    rows = report_context(OPEN)["rate_chart"]
    assert isinstance(rows, list)
    assert [r.label for r in rows] == ["Week 46", "Week 47", "Week 48 (this week)"]
    assert [r.text for r in rows] == ["50%", "fewer than 5 answered", "77%"]
    assert rows[1].width_px == 0


# charts ---------------------------------------------------------------------------------------------


def test_bar_rows_scale_to_the_largest_value() -> None:
    rows = bar_rows([("a", 50), ("b", 25), ("c", 0)], max_width_px=200)
    assert [(r.width_px, r.rest_px) for r in rows] == [(200, 0), (100, 100), (0, 200)]
    assert [r.text for r in rows] == ["50", "25", "0"]
    assert all(r.width_px + r.rest_px == 200 for r in rows)


def test_bar_rows_fixed_scale_tiny_values_and_missing() -> None:
    rows = bar_rows(
        [("x", 0.5), ("y", 0.001), ("z", None), ("w", 2.0), ("v", -1.0)],
        max_width_px=300,
        scale_max=1.0,
        display=lambda v: f"{v:.0%}",
        missing="withheld",
    )
    assert [r.width_px for r in rows] == [150, 1, 0, 300, 0]
    assert rows[2] == BarRow("z", None, 0.0, 0, 300, "withheld")
    assert rows[0].text == "50%"


def test_bar_rows_all_zero_or_empty() -> None:
    assert [r.width_px for r in bar_rows([("a", 0), ("b", 0)])] == [0, 0]
    assert bar_rows([]) == []
    with pytest.raises(ValueError, match="max_width_px"):
        bar_rows([("a", 1)], max_width_px=0)


def test_text_bar() -> None:
    full, half, tiny, none = bar_rows([("a", 100), ("b", 50), ("c", 0.1), ("d", None)])
    assert text_bar(full, 10) == "#" * 10
    assert text_bar(half, 10) == "#####     "
    assert text_bar(tiny, 10) == "#         "
    assert text_bar(none, 10) == " " * 10


def test_a_column_everyone_shares_is_not_shown_as_a_cut(env: jinja2.Environment) -> None:
    from nudger.reports.cuts import Cell
    from nudger.reports.metrics import Sections

    atoms = {("Sales", ""): Cell(10, 8), ("Ops", ""): Cell(12, 9)}
    data = build_report(
        programme_key="lw", programme_name="LW", period="2026-W48", question=None,
        participation=part(22, 17), history=[], notes=(), now=NOW, threshold=5,
        sections=Sections(cut_columns=("team", "location"), cut_atoms=atoms),
    )  # fmt: skip
    text = report_text(env, data)
    assert "BY TEAM" in text
    assert "BY LOCATION" not in text
    assert [t.groups for t in data.cuts] == [2, 1]
    assert report_json(data)["cuts"][1]["column"] == "location"  # type: ignore[index]
