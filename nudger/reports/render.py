"""A report as JSON, HTML email and plain text (pure: `ReportData` in, documents out).

Every number is formatted once, here, from `ReportData.figures()` (the anonymity rule applied), and the
same strings feed both templates, so the HTML and the plain-text alternative always agree. Reports
hold counts only: no names, no email addresses, no participant text.

HTML follows what Gmail, Outlook and Apple Mail render: table layout, inline styles, `bgcolor` and
`width` attributes, bars as table cells (`charts.py`); no `<style>` block, no scripts, no SVG, no images.

JSON shape (``"schema": "nudger.report/1"``; keys are only ever added, a breaking change bumps the
schema)::

    {
      "schema": "nudger.report/1",
      "programme": {"key": "leading-well", "name": "Leading Well"},
      "period": "2026-W48",
      "window": {"start": "2026-11-23T00:00:00+00:00", "end": "2026-11-30T00:00:00+00:00"},
      "generated_at": "2026-11-30T08:00:00+00:00",
      "question": "What did you try this week?",          # or null
      "participation": {
        "enrolled": 130, "active": 120, "paused": 4, "left": 6,
        "asked": 124, "answered": 71, "answer_rate": 0.5726, # rounded to 4 places
        "circles": 18, "posts": 96, "bounces": 2, "opt_outs": 1,
        "withheld": []                                       # names of figures set to null by the rule
      },
      "trend": [                                             # earlier periods, oldest first, up to 6
        {"period": "2026-W47", "asked": 122, "answered": 3, "answer_rate": null, "circles": null,
         "posts": null, "bounces": 0, "opt_outs": 0,
         "withheld": ["answered", "answer_rate", "circles", "posts"]}
      ],
      "notes": ["You asked for fewer meetings: Friday afternoons are now meeting-free."],
      "threshold": 5,
      "suppressed": false
    }
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import jinja2

from nudger.reports.charts import BarRow, bar_rows, text_bar
from nudger.reports.metrics import ReportData, Shown, iso_week_bounds, parse_period

SCHEMA = "nudger.report/1"
HTML_TEMPLATE = "report.html.j2"
TEXT_TEMPLATE = "report.txt.j2"
CHART_WIDTH_PX = 260  # leaves room for a 140 px label and the value in a 600 px email
TEXT_BAR_WIDTH = 30


@dataclass(frozen=True)
class Line:
    """One labelled figure, formatted for people."""

    label: str
    text: str


def _count(n: int) -> str:
    return f"{n:,}"


def _rate(r: float) -> str:
    return f"{r:.0%}"


def _one_line(s: str) -> str:
    return " ".join(s.split())


def period_label(period: str) -> str:
    """``"2026-W48"`` → ``"week 48, 23–29 Nov 2026"``."""
    _, week = parse_period(period)
    start, end = iso_week_bounds(period)
    last = end - timedelta(days=1)
    if start.year != last.year:
        span = f"{start.day} {start:%b} {start.year} – {last.day} {last:%b} {last.year}"
    elif start.month != last.month:
        span = f"{start.day} {start:%b} – {last.day} {last:%b} {last.year}"
    else:
        span = f"{start.day}–{last.day} {last:%b} {last.year}"
    return f"week {week}, {span}"


def _short_period(period: str, home_year: int) -> str:
    year, week = parse_period(period)
    return f"Week {week}" if year == home_year else f"Week {week}, {year}"


def _generated(when: datetime) -> str:
    return f"{when.day} {when:%b %Y, %H:%M} UTC"


def report_subject(data: ReportData) -> str:
    """The email subject (one line, whatever the programme name holds)."""
    return _one_line(f"Conversations this week: {data.programme_name}, {period_label(data.period)}")


def _headline(f: Shown, fewer: str) -> list[Line]:
    # Nobody asked means nobody answered, so a missing rate is always a withheld one.
    return [
        Line("Questions sent", _count(f.asked)),
        Line("Answers", fewer if f.answered is None else _count(f.answered)),
        Line("Answer rate", "withheld" if f.answer_rate is None else _rate(f.answer_rate)),
        Line("Peer circles formed", "withheld" if f.circles is None else _count(f.circles)),
        Line("Posts in circles", "withheld" if f.posts is None else _count(f.posts)),
    ]


def _people(f: Shown) -> list[Line]:
    return [
        Line("Enrolled", _count(f.enrolled)),
        Line("Taking part", _count(f.active)),
        Line("Pausing", _count(f.paused)),
        Line("Left the programme", _count(f.left)),
    ]


def _delivery(f: Shown) -> list[Line]:
    return [Line("Bounced questions", _count(f.bounces)), Line("Opted out", _count(f.opt_outs))]


def _volume_chart(f: Shown, fewer: str) -> list[BarRow]:
    items: list[tuple[str, float | None]] = [("Asked", f.asked), ("Answered", f.answered)]
    return bar_rows(items, CHART_WIDTH_PX, display=lambda v: _count(int(v)), missing=fewer)


def _rate_chart(data: ReportData, fewer: str) -> list[BarRow]:
    year, _ = parse_period(data.period)
    periods: Sequence[tuple[str, Shown]] = (*data.trend_figures(), (data.period, data.figures()))
    items = [(_short_period(p, year), f.answer_rate) for p, f in periods]
    rows = bar_rows(items, CHART_WIDTH_PX, scale_max=1.0, display=_rate, missing=f"{fewer} answered")
    rows[-1] = replace(rows[-1], label=f"{rows[-1].label} (this week)")
    return rows


def report_context(data: ReportData) -> dict[str, object]:
    """What both templates receive: every figure already formatted and already through the rule."""
    f = data.figures()
    n = data.threshold
    fewer = f"fewer than {n}"
    suppression = (
        f"Fewer than {n} people answered this week, so to protect their privacy we don't show how many "
        "answered, the answer rate or circle activity. Totals for the whole programme are still shown."
        if data.suppressed
        else ""
    )
    return {
        "subject": report_subject(data),
        "programme_name": data.programme_name,
        "period": data.period,
        "period_label": period_label(data.period),
        "generated": _generated(data.generated_at),
        "question": data.question,
        "headline": _headline(f, fewer),
        "people": _people(f),
        "delivery": _delivery(f),
        "volume_chart": _volume_chart(f, fewer),
        "rate_chart": _rate_chart(data, fewer),
        "chart_width": CHART_WIDTH_PX,
        "notes": list(data.notes),
        "threshold": n,
        "suppressed": data.suppressed,
        "suppression": suppression,
        "text_bar": lambda row: text_bar(row, TEXT_BAR_WIDTH),
    }


def report_html(env: jinja2.Environment, data: ReportData) -> str:
    """The HTML email body (autoescaped template)."""
    return env.get_template(HTML_TEMPLATE).render(report_context(data))


def report_text(env: jinja2.Environment, data: ReportData) -> str:
    """The plain-text alternative, with the same figures as the HTML."""
    return env.get_template(TEXT_TEMPLATE).render(report_context(data))


def _figures_json(f: Shown) -> dict[str, object]:
    return {
        "asked": f.asked,
        "answered": f.answered,
        "answer_rate": None if f.answer_rate is None else round(f.answer_rate, 4),
        "circles": f.circles,
        "posts": f.posts,
        "bounces": f.bounces,
        "opt_outs": f.opt_outs,
        "withheld": list(f.withheld),
    }


def report_json(data: ReportData) -> dict[str, object]:
    """The report as plain JSON-ready data (shape in the module docstring)."""
    f = data.figures()
    start, end = iso_week_bounds(data.period)
    return {
        "schema": SCHEMA,
        "programme": {"key": data.programme_key, "name": data.programme_name},
        "period": data.period,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "generated_at": data.generated_at.isoformat(),
        "question": data.question,
        "participation": {
            "enrolled": f.enrolled,
            "active": f.active,
            "paused": f.paused,
            "left": f.left,
            **_figures_json(f),
        },
        "trend": [{"period": p, **_figures_json(tf)} for p, tf in data.trend_figures()],
        "notes": list(data.notes),
        "threshold": data.threshold,
        "suppressed": data.suppressed,
    }
