"""Cron schedules: the five-field expressions of crontab(5), parsed and stepped in UTC.

``minute hour day-of-month month day-of-week`` with ``*``, lists (``1,15``), ranges (``1-5``),
steps (``*/15``, ``10-50/20``), month and weekday names (``jan``, ``mon-fri``), ``7`` for
Sunday, and the macros ``@hourly @daily @weekly @monthly @yearly``. As in Vixie cron, when both
day-of-month and day-of-week are restricted a day matches if either does. A bad expression
raises ``ConfigError`` saying which field is wrong and why.

>>> s = CronSchedule.parse("*/15 9-17 * * mon-fri")
>>> s.next_after(datetime(2024, 5, 3, 17, 50, tzinfo=UTC))  # a Friday evening
datetime.datetime(2024, 5, 6, 9, 0, tzinfo=datetime.timezone.utc)
>>> CronSchedule.parse("@daily").next_after(datetime(2024, 2, 28, 23, 59, tzinfo=UTC))
datetime.datetime(2024, 2, 29, 0, 0, tzinfo=datetime.timezone.utc)
>>> CronSchedule.parse("0 0 31 2 *")
Traceback (most recent call last):
...
recstack.errors.ConfigError: cron schedule '0 0 31 2 *' never fires (no such date)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from recstack.errors import ConfigError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# name, lowest, highest, names (index + lowest = value)
FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS),
)
SEARCH_DAYS = 366 * 8  # a Feb 29 on a given weekday can be 28 years off; 8 covers any day/month


def _value(text: str, field: str, low: int, high: int, names: list[str] | None) -> int:
    if names is not None and text.lower() in names:
        return names.index(text.lower()) + (1 if field == "month" else 0)
    if not text.isdigit():
        raise ValueError(f"{field}: {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{field}: {value} is outside {low}-{high}")
    return value


def parse_field(text: str, field: str, low: int, high: int, names: list[str] | None = None) -> set:
    """The values one cron field allows.

    >>> sorted(parse_field("1-10/3,20", "minute", 0, 59))
    [1, 4, 7, 10, 20]
    >>> sorted(parse_field("*/6", "hour", 0, 23))
    [0, 6, 12, 18]
    >>> parse_field("5-1", "hour", 0, 23)
    Traceback (most recent call last):
    ...
    ValueError: hour: range 5-1 runs backwards
    """
    out: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{field}: step {step_text!r} is not a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first = _value(a, field, low, high, names)
            last = _value(b, field, low, high, names)
            if first > last:
                raise ValueError(f"{field}: range {base} runs backwards")
        elif base:
            first = _value(base, field, low, high, names)
            last = high if step_text else first
        else:
            raise ValueError(f"{field}: empty entry in {text!r}")
        out.update(range(first, last + 1, step))
    return out


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression; ``next_after(t)`` is its first firing strictly after ``t``."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        """Parse ``expression``; ``ConfigError`` naming the field and the reason when bad."""
        text = MACROS.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) != 5:
            raise ConfigError(
                f"cron schedule {expression!r} must have 5 fields (minute hour day-of-month "
                f"month day-of-week) or be one of {', '.join(MACROS)}; it has {len(parts)}"
            )
        try:
            sets = [parse_field(p, *spec) for p, spec in zip(parts, FIELDS, strict=True)]
        except ValueError as exc:
            raise ConfigError(f"cron schedule {expression!r}: {exc}") from None
        weekdays = frozenset(d % 7 for d in sets[4])
        schedule = cls(
            expression,
            frozenset(sets[0]),
            frozenset(sets[1]),
            frozenset(sets[2]),
            frozenset(sets[3]),
            weekdays,
            any_day=parts[2].startswith("*"),
            any_weekday=parts[4].startswith("*"),
        )
        if schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise ConfigError(f"cron schedule {expression!r} never fires (no such date)")
        return schedule

    def day_matches(self, day: datetime) -> bool:
        """Whether ``day`` is a firing day (Vixie cron's day-of-month OR day-of-week rule)."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment`` (UTC; naive values are taken as UTC)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for offset in range(SEARCH_DAYS):
            current = day + timedelta(days=offset)
            if not self.day_matches(current):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    candidate = current.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
        return None

    def due(self, since: datetime, now: datetime) -> bool:
        """Whether the schedule fired in ``(since, now]``.

        >>> s = CronSchedule.parse("0 3 * * *")
        >>> s.due(datetime(2024, 1, 1, 2, 59, tzinfo=UTC), datetime(2024, 1, 1, 3, 0, tzinfo=UTC))
        True
        >>> s.due(datetime(2024, 1, 1, 3, 0, tzinfo=UTC), datetime(2024, 1, 1, 9, 0, tzinfo=UTC))
        False
        """
        fired = self.next_after(since)
        return fired is not None and fired <= now.astimezone(UTC)
