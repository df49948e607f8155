"""The pure pieces of F6: periods, themes, quotes and consent, conversation figures, PNG charts; and the
rule that they stay pure (no I/O imports, reachable through any chain)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from nudger.reports.charts import bar_rows
from nudger.reports.conversation import (
    CircleCounts,
    ConnectionCounts,
    QuestionCounts,
    connections,
    health,
    median_minutes,
    questions,
)
from nudger.reports.periods import earlier_spans, parse_span
from nudger.reports.png import bar_chart_png
from nudger.reports.quotes import pick_highlights, split_quote_consent, tidy_quote
from nudger.reports.themes import ThemeCounter, ThemeCounts, count_themes, key_phrases, shown_themes, tokens
from tests.test_architecture import forbidden_imports

F6_PURE = (
    "nudger.reports.rules",
    "nudger.reports.periods",
    "nudger.reports.cuts",
    "nudger.reports.conversation",
    "nudger.reports.themes",
    "nudger.reports.theme_library",
    "nudger.reports.quotes",
    "nudger.reports.png",
    "nudger.reports.mime",
    "nudger.reports.digest",
)


@pytest.mark.parametrize("module", F6_PURE)
def test_f6_core_modules_stay_pure(module: str) -> None:
    assert forbidden_imports(module) == []


# periods --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "first", "last", "human", "weeks"),
    [
        ("2026-W48", "week", date(2026, 11, 23), date(2026, 11, 29), "week 48, 23–29 Nov 2026", ["2026-W48"]),
        ("2026-11", "month", date(2026, 11, 1), date(2026, 11, 30), "November 2026",
         ["2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"]),
        ("2026-12", "month", date(2026, 12, 1), date(2026, 12, 31), "December 2026",
         ["2026-W50", "2026-W51", "2026-W52", "2026-W53"]),
        ("2026-11-16..2026-11-29", "range", date(2026, 11, 16), date(2026, 11, 29), "16–29 Nov 2026",
         ["2026-W47", "2026-W48"]),
        ("2026-12-28..2027-01-03", "range", date(2026, 12, 28), date(2027, 1, 3), "28 Dec 2026 – 3 Jan 2027",
         ["2026-W53"]),
    ],
)  # fmt: skip
def test_parse_span(text: str, kind: str, first: date, last: date, human: str, weeks: list[str]) -> None:
    span = parse_span(text)
    assert (span.label, span.kind, span.first, span.last) == (text, kind, first, last)
    assert span.human() == human
    assert span.weeks() == weeks
    assert span.end - span.start == timedelta(days=span.days)


@pytest.mark.parametrize(
    "bad", ["2026-13", "2026-00", "2026-W54", "2026-11-31..2026-12-01", "2026-12-01..2026-11-01", "Nov", "",
            "2025-01-01..2026-12-31"],
)  # fmt: skip
def test_parse_span_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match=r"period|week|range"):
        parse_span(bad)


def test_shift_containing_and_trend_spans() -> None:
    assert parse_span("2026-01").shift(-1).label == "2025-12"
    assert parse_span("2027-W01").shift(-1).label == "2026-W53"
    r = parse_span("2026-11-16..2026-11-29")
    assert r.shift(-1).label == "2026-11-02..2026-11-15"
    assert r.containing(date(2026, 11, 1)).label == "2026-10-19..2026-11-01"
    rounds = ["2026-W40", "2026-W41", "2026-W44", "2026-W45", "2026-W47", "2026-W48"]
    month = [s.label for s in earlier_spans(parse_span("2026-11"), rounds, 6)]
    assert month == ["2026-09", "2026-10"]  # W40's Monday is 28 Sep
    weeks = [s.label for s in earlier_spans(parse_span("2026-W47"), rounds, 2)]
    assert weeks == ["2026-W44", "2026-W45"]


# themes ---------------------------------------------------------------------------------------------


def test_themes_count_people_not_answers() -> None:
    answers = [(1, "Feedback, feedback and more feedback."), (1, "Still about feedback")]
    answers += [(p, "A useful review meeting with a customer.") for p in range(2, 7)]
    counts = count_themes(answers)
    assert counts.people == 6
    assert counts.answers == 7
    assert counts.themes is not None
    assert counts.themes["Feedback"] == 6  # "review" counts for feedback too; person 1 counted once
    assert counts.themes["Customers"] == 5
    assert counts.phrases == {"useful review": 5, "review meeting": 5}


def test_theme_counter_needs_person_order_and_prunes_one_person_phrases() -> None:
    counter = ThemeCounter(max_phrases=3)
    counter.add(2, "alpha beta gamma delta")
    with pytest.raises(ValueError, match="ordered by person"):
        counter.add(1, "x")
    for p in range(3, 10):
        counter.add(p, f"unique{p} words{p} here{p} common phrase")
    assert counter.counts().phrases == {"common phrase": 7}


def test_two_word_stems_and_tokens() -> None:
    assert tokens("Stand-up: 1:1 with my manager, don't") == [
        "stand-up",
        "1:1",
        "with",
        "my",
        "manager",
        "don't",
    ]
    counts = count_themes([(1, "We had a one to one"), (2, "I work in person and deep work helps")])
    assert counts.themes is not None
    assert counts.themes.get("Feedback") == 1
    assert counts.themes.get("Focus") == 1
    assert counts.themes.get("Remote and hybrid") == 1
    assert key_phrases(tokens("the weekly review of the weekly review 2026 plan")) == {"weekly review"}


def test_shown_themes_threshold_and_change() -> None:
    now = ThemeCounts(
        people=20, answers=25, themes={"Feedback": 10, "Focus": 4, "Change": 6}, phrases={"x y": 5}
    )
    before = ThemeCounts(people=10, answers=10, themes={"Feedback": 6, "Change": 2})
    t = shown_themes(now, before, 5)
    assert [r.name for r in t.themes] == ["Feedback", "Change"]  # Focus: 4 people
    feedback, change = t.themes
    assert feedback.change == pytest.approx(0.5 - 0.6)
    assert change.change is None
    assert change.new
    assert t.phrases == (("x y", 5),)
    assert shown_themes(ThemeCounts(people=4, answers=9, themes={"Feedback": 4}), None, 5).withheld
    not_compared = shown_themes(now, ThemeCounts(people=3, answers=3, themes={"Feedback": 3}), 5)
    assert not not_compared.compared
    assert all(r.change is None and not r.new for r in not_compared.themes)


# quotes and consent ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "subject", "ok", "rest"),
    [
        ("quote ok\nWe tried it.", "", True, "We tried it."),
        ("We tried it.\n\nQuote OK!", "", True, "We tried it."),
        ("[quote ok]\nWe tried it.", "", True, "We tried it."),
        ("We tried it.\nHappy to be quoted.", "", True, "We tried it."),
        ("We tried it.\nyou may quote me", "", True, "We tried it."),
        ("We tried it.", "Re: question [quote ok]", True, "We tried it."),
        ("We tried it; quote ok with you?", "", False, "We tried it; quote ok with you?"),
        ("Please do not quote me.", "", False, "Please do not quote me."),
        ("We tried it.\nquote ok\nMore text.", "", False, "We tried it.\nquote ok\nMore text."),
    ],
)
def test_split_quote_consent(text: str, subject: str, ok: bool, rest: str) -> None:
    assert split_quote_consent(text, subject) == (ok, rest)


def test_tidy_quote_blanks_details_and_cuts_at_sentences() -> None:
    assert tidy_quote("Mail me at ana@corp.test or +44 20 7946 0958, see https://x.test/a") == (
        "Mail me at […] or […], see […]"
    )
    long = "First sentence is here. " + "word " * 60
    assert tidy_quote(long) == "First sentence is here."
    cut = tidy_quote("word " * 80)
    assert cut.endswith("…")
    assert len(cut) <= 200


def test_pick_highlights_prefers_main_themes_and_skips_short_and_duplicates() -> None:
    picked = pick_highlights(
        ["Too short.", "The weather was fine all week long, thanks.",
         "A customer gave us feedback on the plan.", "A customer gave us feedback on the plan.",
         "Our meeting with the customer went really well."],
        ["Customers"],
        limit=2,
    )  # fmt: skip
    assert picked == (
        "A customer gave us feedback on the plan.",
        "Our meeting with the customer went really well.",
    )


# conversation -------------------------------------------------------------------------------------


def test_median_and_health() -> None:
    assert median_minutes({}) is None
    assert median_minutes({10: 1}) == 10
    assert median_minutes({10: 1, 20: 1}) == 15
    assert median_minutes({5: 3, 100: 2}) == 5
    h = health(
        CircleCounts(
            circles=4, with_follow_up=3, all_posted=1, posts=9, first_follow_up_minutes={60: 2, 180: 1}
        )
    )
    assert (h.follow_up_share, h.all_posted_share, h.posts_per_circle) == (0.75, 0.25, 2.25)
    assert h.median_first_follow_up == timedelta(minutes=60)
    empty = health(CircleCounts())
    assert empty.follow_up_share is None
    assert empty.median_first_follow_up is None


def test_connections_name_only_shown_teams() -> None:
    c = connections(
        ConnectionCounts(
            new_pairs=7,
            team_links_now=frozenset({("A", "B"), ("A", "C"), ("B", "C")}),
            team_links_before=frozenset({("B", "C")}),
        ),
        nameable_teams=["A", "B"],
    )
    assert c.new_team_links == (("A", "B"),)
    assert c.other_new_team_links == 1


def test_questions_withhold_small_rounds_and_their_complement() -> None:
    q = questions(
        [QuestionCounts("2026-W47", "Q1", 40, 30, 7, 20), QuestionCounts("2026-W48", "Q2", 40, 3, 0, 0)],
        5,
        total_shown=True,
    )
    assert q.rows == ()  # W48 has 3 answers, and W47 alone would give it away as total − W47
    assert q.withheld == 2
    q = questions([QuestionCounts("2026-W47", "Q1", 40, 30, 6, 12)], 5, total_shown=True)
    assert q.rows[0].posts_per_circle == 2.0


# png ----------------------------------------------------------------------------------------------


def test_bar_chart_png_is_deterministic_and_sized() -> None:
    rows = bar_rows([("Asked", 120.0), ("Answered", 60.0), ("Withheld", None)], missing="fewer than 5")
    a, b = (
        bar_chart_png("volume", "Asked and answered", rows),
        bar_chart_png("volume", "Asked and answered", rows),
    )
    assert a.png == b.png
    assert a.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert a.alt == "Asked and answered: Asked 120; Answered 60; Withheld fewer than 5"
    assert a.cid == "volume@nudger.report"
    assert int.from_bytes(a.png[16:20], "big") == 2 * a.width  # drawn at twice the display size
    assert int.from_bytes(a.png[20:24], "big") == 2 * a.height
