"""Schedule maths: each person is asked on the programme's weekday/time in their own timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from nudger.config import Programme
from nudger.programmes.schedule import (
    LATE_LIMIT,
    PlannedSend,
    Slot,
    choose_question,
    due_sends,
    jitter,
    local_due,
    nominal_day,
    period_bounds,
    period_of,
    periods_to_plan,
    plan_round,
    theme_order,
    week_start,
)

QUESTIONS = ["First question?", "Second question?", "Third question?"]


ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def programme(
    weekday: str = "tue", time: str = "10:00", reply_window_hours: int = 72, **extra: object
) -> Programme:
    """A weekly programme; every day a working day and no jitter unless a test says otherwise."""
    return Programme.model_validate(
        {
            "key": "weekly",
            "name": "Weekly",
            "schedule": {"weekday": weekday, "time": time, "jitter_minutes": 0},
            "reply_window_hours": reply_window_hours,
            "working_days": ALL_DAYS,
            "questions": [{"text": q, "theme": "reflect"} for q in QUESTIONS],
            **extra,
        }
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# 2026-W03 is Mon 12 – Sun 18 January 2026 (winter in Europe, summer in New Zealand and Brazil);
# 2026-W27 is Mon 29 June – Sun 5 July 2026 (summer in Europe, winter in New Zealand).
@pytest.mark.parametrize(
    ("weekday", "time", "period", "timezone", "expected"),
    [
        ("tue", "10:00", "2026-W03", "UTC", utc(2026, 1, 13, 10, 0)),
        ("tue", "10:00", "2026-W03", "Europe/Berlin", utc(2026, 1, 13, 9, 0)),  # CET, +01:00
        ("tue", "10:00", "2026-W27", "Europe/Berlin", utc(2026, 6, 30, 8, 0)),  # CEST, +02:00
        ("tue", "10:00", "2026-W03", "Europe/London", utc(2026, 1, 13, 10, 0)),  # GMT
        ("tue", "10:00", "2026-W27", "Europe/London", utc(2026, 6, 30, 9, 0)),  # BST
        ("tue", "10:00", "2026-W03", "America/Sao_Paulo", utc(2026, 1, 13, 13, 0)),  # -03:00, no DST
        ("tue", "10:00", "2026-W27", "America/Sao_Paulo", utc(2026, 6, 30, 13, 0)),
        ("tue", "10:00", "2026-W03", "Asia/Kolkata", utc(2026, 1, 13, 4, 30)),  # +05:30
        ("fri", "09:15", "2026-W03", "Asia/Kolkata", utc(2026, 1, 16, 3, 45)),
        ("tue", "10:00", "2026-W03", "Pacific/Auckland", utc(2026, 1, 12, 21, 0)),  # NZDT +13: Monday UTC
        ("tue", "10:00", "2026-W27", "Pacific/Auckland", utc(2026, 6, 29, 22, 0)),  # NZST +12
        ("mon", "00:30", "2026-W03", "Pacific/Auckland", utc(2026, 1, 11, 11, 30)),  # the Sunday before
        ("sun", "23:00", "2026-W03", "Pacific/Honolulu", utc(2026, 1, 19, 9, 0)),  # the Monday after
        ("tue", "10:00", "2026-W10", "America/New_York", utc(2026, 3, 3, 15, 0)),  # EST, before 8 March
        ("tue", "10:00", "2026-W11", "America/New_York", utc(2026, 3, 10, 14, 0)),  # EDT, after
        ("mon", "08:00", "2026-W14", "Europe/Berlin", utc(2026, 3, 30, 6, 0)),  # day after the change
        ("sat", "08:00", "2026-W13", "Europe/Berlin", utc(2026, 3, 28, 7, 0)),  # day before the change
        ("wed", "10:00", "2026-W53", "Europe/Berlin", utc(2026, 12, 30, 9, 0)),  # ISO week 53
        ("fri", "10:00", "2026-W53", "UTC", utc(2027, 1, 1, 10, 0)),  # week 53 runs into 2027
    ],
)
def test_local_due_is_the_local_weekday_and_time_as_utc(
    weekday: str, time: str, period: str, timezone: str, expected: datetime
) -> None:
    due = local_due(programme(weekday, time), period, timezone)
    assert due == expected
    assert due.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("day", "period", "monday"),
    [
        (date(2026, 1, 12), "2026-W03", date(2026, 1, 12)),
        (date(2026, 1, 18), "2026-W03", date(2026, 1, 12)),
        (date(2026, 12, 31), "2026-W53", date(2026, 12, 28)),
        (date(2027, 1, 3), "2026-W53", date(2026, 12, 28)),  # a 2027 date in 2026's week 53
        (date(2027, 1, 4), "2027-W01", date(2027, 1, 4)),
        (date(2024, 12, 30), "2025-W01", date(2024, 12, 30)),  # a 2024 date in 2025's week 1
        (date(2021, 1, 1), "2020-W53", date(2020, 12, 28)),
        (date(2024, 2, 29), "2024-W09", date(2024, 2, 26)),
    ],
)
def test_period_of_and_week_start(day: date, period: str, monday: date) -> None:
    assert period_of(day) == period
    assert week_start(period) == monday
    start, end = period_bounds(period)
    assert start == datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    assert end - start == timedelta(days=7)


def test_period_round_trip_over_several_years() -> None:
    day = date(2019, 12, 1)
    while day < date(2028, 2, 1):
        period = period_of(day)
        monday = week_start(period)
        assert monday.weekday() == 0
        assert monday <= day < monday + timedelta(days=7)
        assert period_of(monday) == period
        day += timedelta(days=1)


# due_sends: the person in Berlin is due at 09:00 UTC on Tue 13 January 2026.
BERLIN_DUE = utc(2026, 1, 13, 9, 0)


@pytest.mark.parametrize(
    ("now", "expected_due"),
    [
        (BERLIN_DUE - timedelta(hours=30), BERLIN_DUE),  # planned ahead: sent at the local time
        (BERLIN_DUE - timedelta(minutes=1), BERLIN_DUE),
        (BERLIN_DUE, BERLIN_DUE),
        (BERLIN_DUE + timedelta(hours=1), BERLIN_DUE + timedelta(hours=1)),  # late: sent now
        (BERLIN_DUE + LATE_LIMIT, BERLIN_DUE + LATE_LIMIT),  # exactly at the limit: still asked
        (BERLIN_DUE + LATE_LIMIT + timedelta(minutes=1), None),  # too late: not asked this round
        (BERLIN_DUE + timedelta(days=3), None),
    ],
)
def test_due_sends_clamps_to_now_and_skips_the_too_late(now: datetime, expected_due: datetime | None) -> None:
    sends = due_sends(programme(), "2026-W03", [Slot(1, "Europe/Berlin")], now)
    assert sends == ([] if expected_due is None else [PlannedSend(1, expected_due)])


def test_due_sends_handles_each_person_in_their_own_timezone() -> None:
    slots = [
        Slot(1, "Pacific/Auckland"),  # due Mon 21:00 UTC
        Slot(2, "Europe/Berlin"),  # due Tue 09:00 UTC
        Slot(3, "America/Sao_Paulo"),  # due Tue 13:00 UTC
        Slot(4, "Pacific/Honolulu"),  # due Tue 20:00 UTC
    ]
    now = utc(2026, 1, 13, 12, 0)  # Auckland passed 15 h ago, Berlin 3 h ago, the others are ahead
    sends = due_sends(programme(), "2026-W03", slots, now)
    assert sends == [
        PlannedSend(2, now),
        PlannedSend(3, utc(2026, 1, 13, 13, 0)),
        PlannedSend(4, utc(2026, 1, 13, 20, 0)),
    ]


# tue 10:00 with 72 h to reply: the first send anywhere (UTC+14) is Mon 12 Jan 20:00 UTC; planning
# starts 36 h before, Sun 11 Jan 08:00 UTC; the last send (UTC-12) is Tue 13 Jan 22:00 UTC and the round
# closes 72 h later, Fri 16 Jan 22:00 UTC.
@pytest.mark.parametrize(
    ("now", "periods"),
    [
        (utc(2026, 1, 10, 12, 0), []),  # Saturday: last week's round closed, this one not yet near
        (utc(2026, 1, 11, 7, 59), []),
        (utc(2026, 1, 11, 8, 0), ["2026-W03"]),  # Sunday of W02, planning W03
        (utc(2026, 1, 12, 20, 0), ["2026-W03"]),
        (utc(2026, 1, 14, 12, 0), ["2026-W03"]),
        (utc(2026, 1, 16, 21, 59), ["2026-W03"]),
        (utc(2026, 1, 16, 22, 0), []),
        (utc(2026, 12, 27, 12, 0), ["2026-W53"]),  # across the year boundary
        (utc(2027, 1, 3, 12, 0), ["2027-W01"]),
    ],
)
def test_periods_to_plan_only_inside_the_planning_window(now: datetime, periods: list[str]) -> None:
    assert periods_to_plan(programme(), now) == periods


@pytest.mark.parametrize(
    ("history", "question"),
    [
        ([], QUESTIONS[0]),
        (QUESTIONS[:1], QUESTIONS[1]),
        (QUESTIONS[:2], QUESTIONS[2]),
        (QUESTIONS, QUESTIONS[0]),  # the bank is exhausted: start again
        ([*QUESTIONS, QUESTIONS[0]], QUESTIONS[1]),
        (["A question since removed from the bank"], QUESTIONS[0]),
    ],
)
def test_questions_rotate_without_repeats_until_the_bank_is_exhausted(
    history: list[str], question: str
) -> None:
    assert choose_question(programme(), history).text == question


def test_plan_round_takes_the_next_question_and_the_round_window() -> None:
    now = utc(2026, 1, 12, 0, 0)
    plan = plan_round(programme(), "2026-W03", 2, [Slot(1, "Europe/Berlin")], now, [QUESTIONS[0]])
    assert plan is not None
    assert plan.question == QUESTIONS[1]
    assert plan.opens_at == utc(2026, 1, 12, 20, 0)
    assert plan.closes_at == utc(2026, 1, 16, 22, 0)
    assert plan.sends == (PlannedSend(1, BERLIN_DUE),)


# ------------------------------------------------------------------------------------ cadences


@pytest.mark.parametrize(
    ("schedule", "extra", "asks"),
    [
        # every other week, counted from the start date (Mon 5 Jan 2026 = W02)
        (
            {"every": "2 weeks"},
            {"starts": "2026-01-05"},
            {"2026-W02": True, "2026-W03": False, "2026-W04": True},
        ),
        # the first Monday of the month: 5 Jan (W02), 2 Feb (W06), 2 Mar (W10)
        (
            {"every": "month", "weekday": "mon"},
            {},
            {"2026-W01": False, "2026-W02": True, "2026-W03": False, "2026-W06": True, "2026-W10": True},
        ),
        # the third Thursday: 15 Jan (W03)
        ({"every": "month", "weekday": "thu", "week_of_month": 3}, {}, {"2026-W02": False, "2026-W03": True}),
        # a cron expression: Wednesdays at 09:30 local
        ({"cron": "30 9 * * WED"}, {}, {"2026-W02": True, "2026-W03": True}),
        # start and end dates bound the programme
        (
            {},
            {"starts": "2026-01-12", "ends": "2026-01-25"},
            {"2026-W02": False, "2026-W03": True, "2026-W05": False},
        ),
    ],
)
def test_cadences_ask_in_the_right_weeks(
    schedule: dict[str, object], extra: dict[str, object], asks: dict[str, bool]
) -> None:
    prog = Programme.model_validate(
        {
            "key": "p",
            "name": "P",
            "schedule": {"weekday": "tue", "time": "10:00", "jitter_minutes": 0, **schedule},
            "questions": [{"text": "Why?"}],
            **extra,
        }
    )
    assert {period: nominal_day(prog, period) is not None for period in asks} == asks


def test_cron_uses_its_own_local_time() -> None:
    prog = programme(schedule={"cron": "30 9 * * WED", "jitter_minutes": 0})
    assert local_due(prog, "2026-W03", "Europe/Berlin") == utc(2026, 1, 14, 8, 30)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("", utc(2026, 1, 13, 9, 0)),  # an ordinary Tuesday
        ("Munich", utc(2026, 1, 14, 9, 0)),  # a local holiday: the next working day, same local time
    ],
)
def test_holidays_by_location_move_the_nudge_to_the_next_working_day(
    location: str, expected: datetime
) -> None:
    prog = programme(holidays_by_location={"Munich": ["2026-01-13"]})
    assert local_due(prog, "2026-W03", "Europe/Berlin", location) == expected


def test_a_programme_holiday_and_a_weekend_are_skipped() -> None:
    prog = Programme.model_validate(
        {
            "key": "p",
            "name": "P",
            "schedule": {"weekday": "fri", "time": "10:00", "jitter_minutes": 0},
            "holidays": ["2026-01-16"],
            "reply_window_hours": 120,
            "questions": [{"text": "Why?"}],
        }
    )
    # Friday is a holiday, Saturday and Sunday are not working days: Monday 19 January
    assert local_due(prog, "2026-W03", "UTC") == utc(2026, 1, 19, 10, 0)


def test_jitter_is_deterministic_and_only_a_few_minutes_late() -> None:
    spread = {jitter(person, "2026-W03", 5) for person in range(200)}
    assert all(timedelta(0) <= j < timedelta(minutes=5) for j in spread)
    assert len(spread) > 50  # people are spread out, not all at once
    assert jitter(7, "2026-W03", 5) == jitter(7, "2026-W03", 5)
    assert jitter(7, "2026-W03", 0) == timedelta(0)


def test_questions_are_interleaved_by_theme() -> None:
    prog = Programme.model_validate(
        {
            "key": "p",
            "name": "P",
            "questions": [
                {"text": "R1?", "theme": "reflect"},
                {"text": "R2?", "theme": "reflect"},
                {"text": "A1?", "theme": "apply"},
                {"text": "S1?", "theme": "share"},
            ],
        }
    )
    assert [q.text for q in theme_order(prog.questions)] == ["R1?", "A1?", "S1?", "R2?"]
    history: list[str] = []
    for _ in range(8):
        history.append(choose_question(prog, history).text)
    assert history == ["R1?", "A1?", "S1?", "R2?", "R1?", "A1?", "S1?", "R2?"]
