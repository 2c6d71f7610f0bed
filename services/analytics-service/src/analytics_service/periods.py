"""Date ranges of the read APIs: checked once (order, length), split into day/week/month periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from servicekit.errors import UnprocessableEntity

Granularity = Literal["day", "week", "month"]


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> DateRange:
        """The period of the same length just before this one."""
        return DateRange(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def checked_range(start: date, end: date, *, max_days: int) -> DateRange:
    """422 problem when the range is inverted or longer than `max_days`."""
    if end < start:
        raise UnprocessableEntity(f"The date range is inverted: end {end} is before start {start}.")
    span = DateRange(start, end)
    if span.days > max_days:
        raise UnprocessableEntity(f"The date range covers {span.days} days; at most {max_days} are allowed.")
    return span


def period_start(day: date, granularity: Granularity) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def periods(span: DateRange, granularity: Granularity) -> list[date]:
    """The start of every period touching the range, in order."""
    starts: list[date] = []
    day = span.start
    while day <= span.end:
        first = period_start(day, granularity)
        if not starts or starts[-1] != first:
            starts.append(first)
        day += timedelta(days=1)
    return starts


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def period_end(start: date, granularity: Granularity) -> date:
    """The last day of the period that begins on `start`."""
    if granularity == "day":
        return start
    if granularity == "week":
        return start + timedelta(days=6)
    following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return following - timedelta(days=1)
