"""When a schedule fires: a cron expression (5 fields) or a fixed period, as due times in
Unix seconds (UTC), the same on every host, so that workers agree on each due time."""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime, timedelta

import attrs

from transports import ConfigurationError

__all__ = ["Cadence", "Cron", "Every"]

# field name, lowest, highest
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))  # fmt: skip
_MONTHS = {name.lower(): n for n, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_SEARCH_DAYS = 366 * 8  # covers any satisfiable day/month combination (Feb 29 included)


def _value(text: str, field: int) -> int:
    names = _MONTHS if field == 3 else _DAYS if field == 4 else {}
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number")
    return int(text)


def _parse_field(text: str, field: int) -> frozenset[int]:
    name, low, high = _FIELDS[field]
    values: set[int] = set()
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"step {step_text!r} of the {name} is not a number >= 1")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, field), _value(last, field)
        else:
            start = _value(body, field)
            end = high if slash else start
        if not low <= start <= end <= high:
            raise ValueError(f"{part!r} is outside {low}-{high} for the {name}")
        values.update(range(start, end + 1, step))
    if field == 4 and 7 in values:  # 0 and 7 are both Sunday
        values = (values - {7}) | {0}
    return frozenset(values)


@attrs.frozen
class Cron:
    """A cron expression: ``minute hour day-of-month month day-of-week``, each ``*``, a
    number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a list of those (``1,15``);
    months and days may be named (``jan``, ``mon``; Sunday is 0 or 7). As in cron, when
    both day fields are restricted a day matching either one is due. Times are UTC.

    Raises:
        ConfigurationError: (from :meth:`parse`) a malformed expression.
    """

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is '*'
    any_weekday: bool  # day of week is '*'

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Parse a 5-field cron expression.

        Raises:
            ConfigurationError: not 5 fields, or a field out of range or malformed.
        """
        fields = text.split()
        if len(fields) != 5:
            raise ConfigurationError(f"cron {text!r}: needs 5 fields, not {len(fields)}")
        try:
            parsed = [_parse_field(field, index) for index, field in enumerate(fields)]
        except ValueError as exc:
            raise ConfigurationError(f"cron {text!r}: {exc}") from None
        minutes, hours, days, months, weekdays = parsed
        cron = cls(text, minutes, hours, days, months, weekdays, fields[2] == "*", fields[4] == "*")
        if cron.next_after(0.0) == math.inf:
            raise ConfigurationError(f"cron {text!r}: no day ever matches")
        return cron

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, when: float) -> float:
        """The first due time strictly after ``when`` (Unix seconds); infinity if none."""
        start = datetime.fromtimestamp(when, UTC).replace(second=0, microsecond=0)
        start += timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for offset in range(_SEARCH_DAYS):
            if self._day_matches(day):
                first = start if offset == 0 else day
                for hour in sorted(h for h in self.hours if h >= first.hour):
                    low = first.minute if hour == first.hour else 0
                    minutes = [m for m in self.minutes if m >= low]
                    if minutes:
                        return day.replace(hour=hour, minute=min(minutes)).timestamp()
            day += timedelta(days=1)
        return math.inf

    def last_at_or_before(self, when: float) -> float:
        """The latest due time at or before ``when``; minus infinity if none."""
        end = datetime.fromtimestamp(when, UTC).replace(second=0, microsecond=0)
        day = end.replace(hour=0, minute=0)
        for offset in range(_SEARCH_DAYS):
            if self._day_matches(day):
                last = end if offset == 0 else day.replace(hour=23, minute=59)
                for hour in sorted((h for h in self.hours if h <= last.hour), reverse=True):
                    high = last.minute if hour == last.hour else 59
                    minutes = [m for m in self.minutes if m <= high]
                    if minutes:
                        return day.replace(hour=hour, minute=max(minutes)).timestamp()
            day -= timedelta(days=1)
        return -math.inf


@attrs.frozen
class Every:
    """A fixed period of ``seconds``: due at every multiple of it since the Unix epoch."""

    seconds: float = attrs.field()

    @seconds.validator
    def _check(self, _: object, seconds: float) -> None:
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
            raise ConfigurationError(f"every= needs a period > 0 seconds, not {seconds!r}")

    def next_after(self, when: float) -> float:
        """The first due time strictly after ``when`` (Unix seconds)."""
        return (math.floor(when / self.seconds) + 1) * self.seconds

    def last_at_or_before(self, when: float) -> float:
        """The latest due time at or before ``when``."""
        return math.floor(when / self.seconds) * self.seconds


Cadence = Cron | Every
"""When a schedule is due."""
