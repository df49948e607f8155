"""The anonymity threshold and ISO weeks: the ground rules every report module shares (pure).

`nudger.reports.metrics` re-exports these; they live here so the section modules (cuts, themes,
periods, conversation) can use them without importing the report itself.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

ANONYMITY_FLOOR = 3

_PERIOD_RE = re.compile(r"(\d{4})-W(\d{2})")


def parse_period(period: str) -> tuple[int, int]:
    """``"2026-W48"`` → ``(2026, 48)``; ValueError for anything that is not a real ISO week."""
    m = _PERIOD_RE.fullmatch(period)
    if not m:
        raise ValueError(f'not an ISO week "{period}" (expected YYYY-Www, e.g. 2026-W48)')
    year, week = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f'not an ISO week "{period}" (year {year} has no week {week})') from None
    return year, week


def iso_week_bounds(period: str) -> tuple[datetime, datetime]:
    """The UTC window of an ISO week: [Monday 00:00, next Monday 00:00)."""
    year, week = parse_period(period)
    monday = date.fromisocalendar(year, week, 1)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return start, start + timedelta(days=7)


def period_of(when: datetime) -> str:
    """The ISO week a moment falls in, in UTC."""
    if when.utcoffset() is None:
        raise ValueError("period_of needs an aware datetime")
    iso = when.astimezone(UTC).isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def effective_threshold(threshold: int) -> int:
    """The configured threshold, never below the floor of 3."""
    return max(threshold, ANONYMITY_FLOOR)


def is_suppressed(answered: int, threshold: int) -> bool:
    """True when fewer people answered than the (floored) threshold."""
    return answered < effective_threshold(threshold)
