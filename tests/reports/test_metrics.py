"""Report metrics: answer rate, the anonymity rule (threshold, its floor, the edge at exactly N), trend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nudger.reports.metrics import (
    ANONYMITY_FLOOR,
    WITHHOLDABLE,
    Participation,
    ReportData,
    build_report,
    effective_threshold,
    is_suppressed,
    iso_week_bounds,
    parse_period,
    period_of,
    select_trend,
    shown,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def part(asked: int = 40, answered: int = 20, **kw: int) -> Participation:
    base = Participation(
        enrolled=50, active=45, paused=3, left=2, asked=asked, answered=answered,
        circles=5, posts=17, bounces=1, opt_outs=2,
    )  # fmt: skip
    return replace(base, **kw)


def report(p: Participation, threshold: int = 5, **kw: object) -> ReportData:
    args: dict[str, object] = {
        "programme_key": "lw",
        "programme_name": "Leading Well",
        "period": "2026-W48",
        "question": "What did you try?",
        "participation": p,
        "history": (),
        "notes": (),
        "now": NOW,
        "threshold": threshold,
    }
    args.update(kw)
    return build_report(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("asked", "answered", "rate"),
    [(0, 0, None), (4, 1, 0.25), (3, 2, 2 / 3), (10, 10, 1.0), (7, 0, 0.0)],
)
def test_answer_rate(asked: int, answered: int, rate: float | None) -> None:
    assert part(asked, answered).answer_rate == rate


@pytest.mark.parametrize(
    "kw",
    [{"asked": -1, "answered": 0}, {"posts": -3}, {"asked": 4, "answered": 5}, {"circles": 1.5}],
)
def test_participation_rejects_impossible_counts(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Participation"):
        part(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answered", "threshold", "suppressed"),
    [
        (0, 5, True),
        (4, 5, True),
        (5, 5, False),  # exactly the threshold is enough
        (6, 5, False),
        (9, 10, True),
        (10, 10, False),
        (2, 3, True),
        (3, 3, False),
        (2, 1, True),  # below the floor: treated as 3
        (2, 0, True),
        (3, 1, False),
        (3, -5, False),
    ],
)
def test_suppression_threshold_and_floor(answered: int, threshold: int, suppressed: bool) -> None:
    assert is_suppressed(answered, threshold) is suppressed
    data = report(part(asked=20, answered=answered), threshold)
    assert data.suppressed is suppressed
    assert data.threshold == max(threshold, ANONYMITY_FLOOR)
    assert data.figures().suppressed is suppressed


def test_effective_threshold() -> None:
    assert [effective_threshold(t) for t in (-1, 0, 2, 3, 5, 12)] == [3, 3, 3, 3, 5, 12]


def test_withheld_figures_are_none_and_named() -> None:
    f = shown(part(asked=40, answered=4, circles=1, posts=6), 5)
    assert f.withheld == WITHHOLDABLE == ("answered", "answer_rate", "circles", "posts")
    assert (f.answered, f.answer_rate, f.circles, f.posts) == (None, None, None, None)
    # Totals over the whole programme stay visible.
    assert (f.enrolled, f.active, f.paused, f.left) == (50, 45, 3, 2)
    assert (f.asked, f.bounces, f.opt_outs) == (40, 1, 2)


def test_shown_at_threshold_keeps_everything() -> None:
    f = shown(part(asked=8, answered=5, circles=1, posts=6), 5)
    assert f.withheld == ()
    assert (f.answered, f.answer_rate, f.circles, f.posts) == (5, 5 / 8, 1, 6)


def test_trend_periods_are_withheld_one_by_one() -> None:
    history = [("2026-W46", part(answered=2)), ("2026-W47", part(answered=20))]
    data = report(part(answered=30), history=history)
    trend = dict(data.trend_figures())
    assert trend["2026-W46"].withheld == WITHHOLDABLE
    assert trend["2026-W47"].withheld == ()
    assert data.figures().withheld == ()


def test_trend_keeps_six_earlier_periods_oldest_first() -> None:
    weeks = [f"2026-W{w:02d}" for w in range(38, 52)]
    history = [(w, part()) for w in reversed(weeks)]
    trend = select_trend("2026-W48", history)
    assert [p for p, _ in trend] == ["2026-W42", "2026-W43", "2026-W44", "2026-W45", "2026-W46", "2026-W47"]
    assert select_trend("2026-W48", history, limit=0) == ()
    assert select_trend("2026-W01", [("2025-W52", part()), ("2025-W51", part())])[0][0] == "2025-W51"


def test_build_report_tidies_inputs() -> None:
    data = report(
        part(),
        question="  What did you try?  ",
        notes=["  Fridays are meeting-free.  ", " ", ""],
        now=datetime(2026, 11, 30, 9, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    assert data.question == "What did you try?"
    assert data.notes == ("Fridays are meeting-free.",)
    assert data.generated_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert data.generated_at.tzinfo is UTC
    assert report(part(), question="   ").question is None


def test_build_report_rejects_naive_now_and_bad_period() -> None:
    with pytest.raises(ValueError, match="aware"):
        report(part(), now=datetime(2026, 11, 30))
    with pytest.raises(ValueError, match="not a period"):
        report(part(), period="2026-48")
    with pytest.raises(ValueError, match="ISO week"):
        report(part(), period="2026-W54")


def test_report_data_refuses_an_inconsistent_suppressed_flag() -> None:
    data = report(part(answered=2))
    with pytest.raises(ValueError, match="anonymity rule"):
        replace(data, suppressed=False)
    with pytest.raises(ValueError, match="at least 3"):
        replace(data, threshold=2)


@pytest.mark.parametrize(
    ("period", "start"),
    [
        ("2026-W48", datetime(2026, 11, 23, tzinfo=UTC)),
        ("2026-W01", datetime(2025, 12, 29, tzinfo=UTC)),
        ("2026-W53", datetime(2026, 12, 28, tzinfo=UTC)),
        ("2020-W53", datetime(2020, 12, 28, tzinfo=UTC)),
    ],
)
def test_iso_week_bounds(period: str, start: datetime) -> None:
    assert iso_week_bounds(period) == (start, start + timedelta(days=7))
    assert period_of(start) == period
    assert period_of(start + timedelta(days=7) - timedelta(microseconds=1)) == period


@pytest.mark.parametrize("bad", ["2025-W53", "2026-W00", "2026-W54", "2026W48", "2026-w48", "26-W48", ""])
def test_parse_period_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO week"):
        parse_period(bad)
