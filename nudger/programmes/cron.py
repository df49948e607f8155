"""Five-field cron expressions, read in a person's local time (pure).

    MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK        e.g. "0 10 * * TUE", "30 9 1-7 * MON"

Each field takes `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` or `a-b/n`, and names for months
(JAN…DEC) and weekdays (SUN…SAT, 0 or 7 = Sunday). As in classic cron, when both day-of-month and
day-of-week are restricted, a day matches if *either* does ("1-7 … MON" is every day of the first week
and every Monday); write "1-7" with DOW "*" and check the weekday yourself if you mean "first Monday"
(or use `every = "month"` with `week_of_month`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELD_RE = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


class CronError(ValueError):
    """The expression is not valid; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday … 6 = Sunday (Python's weekday())
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_dom = day.day in self.days
        by_dow = day.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_dom or by_dow
        return by_dom and by_dow

    def times(self) -> list[time]:
        return [time(h, m) for h in sorted(self.hours) for m in sorted(self.minutes)]

    def occurrences(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Naive local datetimes in [start, end), in order (start/end naive, local)."""
        day = start.date()
        while day <= end.date():
            if self.matches_day(day):
                for t in self.times():
                    when = datetime.combine(day, t)
                    if start <= when < end:
                        yield when
            day += timedelta(days=1)


def _value(token: str, names: dict[str, int], low: int, high: int, field: str) -> int:
    number = names.get(token[:3]) if not token.isdigit() else int(token)
    if number is None or not low <= number <= high:
        raise CronError(f'{field}: "{token}" is not between {low} and {high}')
    return number


def _field(text: str, low: int, high: int, field: str, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        m = _FIELD_RE.match(part)
        if m is None:
            raise CronError(f'{field}: cannot read "{part}"')
        span, step_text = m.group(1), m.group(2)
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(f"{field}: a step must be at least 1")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _value(a, names or {}, low, high, field), _value(b, names or {}, low, high, field)
            if first > last:
                raise CronError(f'{field}: range "{span}" runs backwards')
        else:
            first = _value(span, names or {}, low, high, field)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def parse_cron(expression: str) -> Cron:
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(
            f'expected 5 fields (minute hour day month weekday), got {len(fields)}: "{expression}"'
        )
    minute, hour, dom, month, dow = fields
    weekdays_cron = _field(dow, 0, 7, "weekday", _DAYS)
    return Cron(
        minutes=_field(minute, 0, 59, "minute"),
        hours=_field(hour, 0, 23, "hour"),
        days=_field(dom, 1, 31, "day of month"),
        months=_field(month, 1, 12, "month", _MONTHS),
        weekdays=frozenset((d - 1) % 7 for d in weekdays_cron),  # cron 0/7 = Sunday → Python 6
        days_restricted=dom != "*",
        weekdays_restricted=dow != "*",
    )
