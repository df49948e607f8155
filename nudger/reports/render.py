"""A report as JSON, HTML email and plain text (pure: `ReportData` in, documents out).

Every number is formatted once, here, from `ReportData` (the anonymity rule already applied), and the
same strings feed both templates (and the CSV), so the HTML and the plain-text alternative always
agree. Reports hold counts, themes and consented unattributed quotes: no names, no email addresses.

HTML follows what Gmail, Outlook and Apple Mail render: table layout, inline styles, `bgcolor` and
`width` attributes; no `<style>` block, no scripts, no SVG, no external images. Charts are PNGs
(`png.py`): in the email they are attached inline and referenced by ``cid:`` (`report_charts` gives the
parts, `send` attaches them); in the files written by ``nudger report`` they are ``data:`` URIs, so one
HTML file holds everything. Each chart's alt text carries its figures.

CSV (`report_csv`): one figure per row, ``section,group,metric,value``; withheld figures are empty.

JSON shape (``"schema": "nudger.report/1"``; keys are only ever added, a breaking change bumps the
schema). A period is a week ("2026-W48"), a month ("2026-11") or a range ("2026-11-01..2026-11-30";
``kind`` says which)::

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
      "suppressed": false,
      "kind": "week",                                        # week | month | range
      "answerers": null,                                     # distinct people who answered (month, range)
      "cuts": [                                              # one per roster column
        {"column": "team",
         "groups": [{"value": "Sales", "asked": 40, "answered": 31, "answer_rate": 0.775}],
         "other": {"asked": 12, "answered": 7, "answer_rate": 0.5833},   # withheld groups added up, or null
         "withheld_groups": 2}
      ],
      "conversation": {"circles": 18, "follow_up_share": 0.72, "all_posted_share": 0.28,
                       "median_minutes_to_first_follow_up": 185.0, "posts_per_circle": 5.33},  # or null
      "connections": {"new_cross_team_pairs": 31,
                      "teams_connected_first_time": [["Finance", "Sales"]],
                      "other_teams_connected_first_time": 2},                              # or null
      "questions": {"rows": [{"week": "2026-W48", "question": "…", "asked": 124, "answered": 71,
                              "answer_rate": 0.5726, "posts_per_circle": 5.33}],
                    "withheld": 0},                                                          # or null
      "themes": {"people": 64, "withheld": false, "compared": true,
                 "themes": [{"name": "Feedback", "people": 21, "share": 0.3281, "change": 0.05,
                             "new": false}],
                 "key_phrases": [{"phrase": "weekly review", "people": 6}]},                 # or null
      "highlights": ["We tried a no-meeting Friday and got more done."]
    }
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import jinja2

from nudger.reports.charts import BarRow, bar_rows, text_bar
from nudger.reports.cuts import Cell, CutTable
from nudger.reports.metrics import ReportData, Shown
from nudger.reports.periods import Span, parse_span
from nudger.reports.png import Chart, bar_chart_png

SCHEMA = "nudger.report/1"
HTML_TEMPLATE = "report.html.j2"
TEXT_TEMPLATE = "report.txt.j2"
CHART_WIDTH_PX = 260  # table-bar width, for the plain-text bars' scale
TEXT_BAR_WIDTH = 30
MAX_CHART_ROWS = 15  # a cut's chart shows its largest groups; its table lists them all
COLUMN_TITLES = {"team": "By team", "location": "By location", "timezone": "By time zone"}

ImageSource = Callable[[Chart], str]


@dataclass(frozen=True)
class Line:
    """One labelled figure, formatted for people."""

    label: str
    text: str


@dataclass(frozen=True)
class CutLine:
    label: str
    asked: str
    answered: str
    rate: str


@dataclass(frozen=True)
class CutSection:
    title: str
    rows: list[CutLine]
    note: str
    chart: dict[str, object] | None = None


@dataclass(frozen=True)
class QuestionLine:
    week: str
    question: str
    answered: str
    rate: str
    depth: str


@dataclass(frozen=True)
class ThemeLine:
    name: str
    people: str
    share: str
    change: str


@dataclass(frozen=True)
class TrendLine:
    period: str
    asked: str
    answered: str
    rate: str
    circles: str
    depth: str


def _count(n: int) -> str:
    return f"{n:,}"


def _rate(r: float) -> str:
    return f"{r:.0%}"


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _decimal(x: float) -> str:
    return f"{x:,.1f}"


def _duration(d: timedelta) -> str:
    minutes = round(d.total_seconds() / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def period_label(period: str) -> str:
    """``"2026-W48"`` → ``"week 48, 23–29 Nov 2026"``; ``"2026-11"`` → ``"November 2026"``."""
    return parse_span(period).human()


def _generated(when: datetime) -> str:
    return f"{when.day} {when:%b %Y, %H:%M} UTC"


def report_subject(data: ReportData) -> str:
    """The email subject (one line, whatever the programme name holds)."""
    span = data.span
    return _one_line(f"Conversations this {span.noun}: {data.programme_name}, {span.human()}")


def _headline(data: ReportData, f: Shown, fewer: str) -> list[Line]:
    # Nobody asked means nobody answered, so a missing rate is always a withheld one.
    lines = [
        Line("Questions sent", _count(f.asked)),
        Line("Answers", fewer if f.answered is None else _count(f.answered)),
    ]
    if data.participation.answerers is not None:
        who = None if data.suppressed else data.participation.answerers
        lines.append(Line("People who answered", fewer if who is None else _count(who)))
    lines += [
        Line("Answer rate", "withheld" if f.answer_rate is None else _rate(f.answer_rate)),
        Line("Peer circles formed", "withheld" if f.circles is None else _count(f.circles)),
        Line("Posts in circles", "withheld" if f.posts is None else _count(f.posts)),
    ]
    return lines


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
    span = data.span
    year = span.first.year
    periods: Sequence[tuple[str, Shown]] = (*data.trend_figures(), (data.period, data.figures()))
    items = [(parse_span(p).short(year), f.answer_rate) for p, f in periods]
    rows = bar_rows(items, CHART_WIDTH_PX, scale_max=1.0, display=_rate, missing=f"{fewer} answered")
    rows[-1] = replace(rows[-1], label=f"{rows[-1].label} (this {span.noun})")
    return rows


def _trend(data: ReportData) -> list[TrendLine]:
    """The trend table (withheld figures shown as "< N" answers, "withheld" rate, "–" circles)."""
    year = data.span.first.year
    out = []
    for p, f in (*data.trend_figures(), (data.period, data.figures())):
        depth = (
            "–"
            if f.posts is None or f.circles is None
            else (_decimal(f.posts / f.circles) if f.circles else "–")
        )
        out.append(
            TrendLine(
                period=parse_span(p).short(year),
                asked=_count(f.asked),
                answered=f"< {data.threshold}" if f.answered is None else _count(f.answered),
                rate="withheld" if f.answer_rate is None else _rate(f.answer_rate),
                circles="–" if f.circles is None else _count(f.circles),
                depth="–" if f.posts is None else depth,
            )
        )
    return out


def _cut_line(label: str, c: Cell) -> CutLine:
    return CutLine(label, _count(c.asked), _count(c.answered), "–" if c.rate is None else _rate(c.rate))


def _cuts(data: ReportData, charts: Mapping[str, dict[str, object]]) -> list[CutSection]:
    n = data.threshold
    out = []
    for t in data.cuts:
        if t.groups <= 1:
            continue  # everyone shares one value (or none is recorded): nothing to compare
        rows = [_cut_line(r.value, r.cell) for r in t.rows]
        if t.other is not None:
            rows.append(_cut_line(f"Other {t.column}s together ({t.withheld_groups})", t.other))
        if data.suppressed:
            note = "Withheld: too few people answered this period."
        elif not t.rows:
            note = (
                f"No {t.column} can be shown on its own: each has fewer than {n} answers, or would "
                "reveal one that has."
            )
        elif t.withheld_groups:
            note = (
                f"{t.withheld_groups} smaller {t.column} group(s) are shown only together, so that no "
                f"figure, nor any sum or difference of figures, covers fewer than {n} people."
            )
        else:
            note = ""
        title = COLUMN_TITLES.get(t.column, f"By {t.column}")
        out.append(CutSection(title, rows, note, charts.get(f"cut-{t.column}")))
    return out


def _health(data: ReportData) -> list[Line]:
    h = data.health
    if h is None:
        return []

    def share(x: float | None) -> str:
        return "–" if x is None else _rate(x)

    return [
        Line("Circles formed", _count(h.circles)),
        Line("Circles with at least one follow-up", share(h.follow_up_share)),
        Line("Circles where everyone posted", share(h.all_posted_share)),
        Line(
            "Median time to first follow-up",
            "–" if h.median_first_follow_up is None else _duration(h.median_first_follow_up),
        ),
        Line("Posts per circle", "–" if h.posts_per_circle is None else _decimal(h.posts_per_circle)),
    ]


def _connections(data: ReportData) -> tuple[list[Line], list[str]]:
    c = data.connections
    if c is None:
        return [], []
    links = [f"{a} ↔ {b}" for a, b in c.new_team_links]
    if c.other_new_team_links:
        more = "more " if links else ""
        links.append(f"{c.other_new_team_links} {more}between teams too small to name")
    first_time = len(c.new_team_links) + c.other_new_team_links
    return [
        Line("New cross-team pairs who talked", _count(c.new_pairs)),
        Line("Teams connected for the first time", _count(first_time)),
    ], links


def _questions(data: ReportData) -> tuple[list[QuestionLine], str]:
    q = data.questions
    if q is None:
        return [], ""
    rows = [
        QuestionLine(
            week=parse_span(r.week).short(data.span.first.year),
            question=r.question,
            answered=f"{_count(r.answered)} of {_count(r.asked)}",
            rate="–" if r.answer_rate is None else _rate(r.answer_rate),
            depth="–" if r.posts_per_circle is None else _decimal(r.posts_per_circle),
        )
        for r in q.rows
    ]
    note = (
        f"{q.withheld} question(s) withheld: fewer than {data.threshold} answers, or they would reveal one."
        if q.withheld
        else ""
    )
    return rows, note


def _themes(data: ReportData) -> tuple[list[ThemeLine], list[str], str]:
    t = data.themes
    n = data.threshold
    if t is None:
        return [], [], ""
    if t.withheld:
        return [], [], f"Withheld: fewer than {n} people shared an answer this {data.span.noun}."
    rows = []
    for row in t.themes:
        if row.change is not None:
            points = round(row.change * 100)
            change = "no change" if points == 0 else f"{points:+d} pts"
        else:
            change = "new" if row.new else "–"
        rows.append(ThemeLine(row.name, _count(row.people), _rate(row.share), change))
    phrases = [f"“{p}” ({_count(c)})" for p, c in t.phrases]
    note = (
        f"From {_count(t.people or 0)} people's shared answers (private answers are never read). A theme or "
        f"phrase is shown when at least {n} people mention it."
    )
    return rows, phrases, note


def _chart_rows_cuts(data: ReportData) -> list[tuple[str, str, list[BarRow]]]:
    out = []
    for t in data.cuts:
        if not t.rows or t.groups <= 1:
            continue
        items = [(r.value, r.cell.rate) for r in t.rows[:MAX_CHART_ROWS]]
        rows = bar_rows(items, CHART_WIDTH_PX, scale_max=1.0, display=_rate)
        title = f"Answer rate {COLUMN_TITLES.get(t.column, 'by ' + t.column).lower()}"
        if len(t.rows) > MAX_CHART_ROWS:
            title += f" (the {MAX_CHART_ROWS} with most answers)"
        out.append((f"cut-{t.column}", title, rows))
    return out


def report_charts(data: ReportData) -> list[Chart]:
    """The report's PNG charts, in the order the HTML shows them."""
    fewer = f"fewer than {data.threshold}"
    f = data.figures()
    charts = [
        bar_chart_png("volume", "Asked and answered", _volume_chart(f, fewer)),
        bar_chart_png("rate", "Answer rate, recent periods", _rate_chart(data, fewer)),
    ]
    charts += [bar_chart_png(name, title, rows) for name, title, rows in _chart_rows_cuts(data)]
    if data.themes is not None and data.themes.themes:
        items: list[tuple[str, float | None]] = [(r.name, float(r.people)) for r in data.themes.themes]
        rows = bar_rows(items, CHART_WIDTH_PX, display=lambda v: f"{int(v):,} people")
        charts.append(bar_chart_png("themes", "Main themes", rows))
    return charts


def data_uri(chart: Chart) -> str:
    """For files: the PNG inside the HTML (``data:`` URI), so the file needs nothing else."""
    return "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")


def cid_uri(chart: Chart) -> str:
    """For email: a reference to the inline part with this Content-ID."""
    return f"cid:{chart.cid}"


def report_context(data: ReportData, image_src: ImageSource = data_uri) -> dict[str, object]:
    """What both templates receive: every figure already formatted and already through the rule."""
    f = data.figures()
    n = data.threshold
    span: Span = data.span
    fewer = f"fewer than {n}"
    suppression = (
        f"Fewer than {n} people answered this {span.noun}, so to protect their privacy we don't show how "
        "many answered, the answer rate, circle activity, cuts, themes or quotes. Totals for the whole "
        "programme are still shown."
        if data.suppressed
        else ""
    )
    charts = {
        c.name: {"src": image_src(c), "alt": c.alt, "width": c.width, "height": c.height}
        for c in report_charts(data)
    }
    questions, questions_note = _questions(data)
    themes, phrases, themes_note = _themes(data)
    connection_lines, team_links = _connections(data)
    return {
        "subject": report_subject(data),
        "programme_name": data.programme_name,
        "period": data.period,
        "period_label": span.human(),
        "noun": span.noun,
        "generated": _generated(data.generated_at),
        "question": data.question,
        "headline": _headline(data, f, fewer),
        "people": _people(f),
        "delivery": _delivery(f),
        "volume_chart": _volume_chart(f, fewer),
        "rate_chart": _rate_chart(data, fewer),
        "charts": charts,
        "chart_width": CHART_WIDTH_PX,
        "trend": _trend(data),
        "cuts": _cuts(data, charts),
        "health": _health(data),
        "connections": connection_lines,
        "team_links": team_links,
        "questions": questions,
        "questions_note": questions_note,
        "themes": themes,
        "phrases": phrases,
        "themes_note": themes_note,
        "highlights": list(data.highlights),
        "notes": list(data.notes),
        "threshold": n,
        "suppressed": data.suppressed,
        "suppression": suppression,
        "text_bar": lambda row: text_bar(row, TEXT_BAR_WIDTH),
    }


def report_html(env: jinja2.Environment, data: ReportData, image_src: ImageSource = data_uri) -> str:
    """The HTML body (autoescaped template); charts as ``data:`` URIs unless `image_src` says otherwise."""
    return env.get_template(HTML_TEMPLATE).render(report_context(data, image_src))


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


def _r4(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _cell_json(c: Cell) -> dict[str, object]:
    return {"asked": c.asked, "answered": c.answered, "answer_rate": _r4(c.rate)}


def _cut_json(t: CutTable) -> dict[str, object]:
    return {
        "column": t.column,
        "groups": [{"value": r.value, **_cell_json(r.cell)} for r in t.rows],
        "other": None if t.other is None else _cell_json(t.other),
        "withheld_groups": t.withheld_groups,
    }


def _sections_json(data: ReportData) -> dict[str, Any]:
    h, c, q, t = data.health, data.connections, data.questions, data.themes
    return {
        "kind": data.span.kind,
        "answerers": None if data.suppressed else data.participation.answerers,
        "cuts": [_cut_json(x) for x in data.cuts],
        "conversation": None
        if h is None
        else {
            "circles": h.circles,
            "follow_up_share": _r4(h.follow_up_share),
            "all_posted_share": _r4(h.all_posted_share),
            "median_minutes_to_first_follow_up": None
            if h.median_first_follow_up is None
            else round(h.median_first_follow_up.total_seconds() / 60, 1),
            "posts_per_circle": _r4(h.posts_per_circle),
        },
        "connections": None
        if c is None
        else {
            "new_cross_team_pairs": c.new_pairs,
            "teams_connected_first_time": [list(p) for p in c.new_team_links],
            "other_teams_connected_first_time": c.other_new_team_links,
        },
        "questions": None
        if q is None
        else {
            "rows": [
                {
                    "week": r.week,
                    "question": r.question,
                    "asked": r.asked,
                    "answered": r.answered,
                    "answer_rate": _r4(r.answer_rate),
                    "posts_per_circle": _r4(r.posts_per_circle),
                }
                for r in q.rows
            ],
            "withheld": q.withheld,
        },
        "themes": None
        if t is None
        else {
            "people": t.people,
            "withheld": t.withheld,
            "compared": t.compared,
            "themes": [
                {
                    "name": r.name,
                    "people": r.people,
                    "share": _r4(r.share),
                    "change": _r4(r.change),
                    "new": r.new,
                }
                for r in t.themes
            ],
            "key_phrases": [{"phrase": p, "people": n} for p, n in t.phrases],
        },
        "highlights": list(data.highlights),
    }


def report_json(data: ReportData) -> dict[str, object]:
    """The report as plain JSON-ready data (shape in the module docstring)."""
    f = data.figures()
    span = data.span
    return {
        "schema": SCHEMA,
        "programme": {"key": data.programme_key, "name": data.programme_name},
        "period": data.period,
        "window": {"start": span.start.isoformat(), "end": span.end.isoformat()},
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
        **_sections_json(data),
    }


CSV_HEADER = ("section", "group", "metric", "value")


def report_csv(data: ReportData) -> str:
    """Every figure of the JSON, one per row (``section,group,metric,value``); withheld ones empty."""
    j: dict[str, Any] = report_json(data)
    rows: list[tuple[str, str, str, object]] = []

    def put(section: str, group: str, values: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
        for k, v in values.items():
            if k not in skip and not isinstance(v, list | dict):
                rows.append((section, group, k, v))

    rows.append(("report", "", "programme", data.programme_key))
    rows.append(("report", "", "period", data.period))
    rows.append(("report", "", "threshold", data.threshold))
    rows.append(("report", "", "suppressed", data.suppressed))
    put("participation", data.period, j["participation"])
    for t in j["trend"]:
        put("trend", t["period"], t, skip=("period",))
    for cut in j["cuts"]:
        for g in cut["groups"]:
            put(f"by {cut['column']}", g["value"], g, skip=("value",))
        if cut["other"] is not None:
            put(f"by {cut['column']}", "(other groups together)", cut["other"])
    if j["conversation"] is not None:
        put("conversation", "", j["conversation"])
    if j["connections"] is not None:
        put("connections", "", j["connections"])
        for a, b in j["connections"]["teams_connected_first_time"]:
            rows.append(("connections", f"{a} / {b}", "connected_first_time", True))
    if j["questions"] is not None:
        for r in j["questions"]["rows"]:
            put("questions", r["week"], r, skip=("week",))
    if j["themes"] is not None and not j["themes"]["withheld"]:
        for r in j["themes"]["themes"]:
            put("themes", r["name"], r, skip=("name",))
        for r in j["themes"]["key_phrases"]:
            rows.append(("key phrases", r["phrase"], "people", r["people"]))
    for i, quote in enumerate(data.highlights, 1):
        rows.append(("highlights", str(i), "quote", quote))
    for i, note in enumerate(data.notes, 1):
        rows.append(("you said, we did", str(i), "note", note))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for section, group, metric, value in rows:
        writer.writerow([section, group, metric, "" if value is None else _csv_value(value)])
    return out.getvalue()


def _csv_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    text = str(v)
    # a cell starting with = + - @ is a formula in spreadsheets: keep text as text
    if text[:1] in ("=", "+", "-", "@") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
