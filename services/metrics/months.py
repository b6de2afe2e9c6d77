"""Whole UTC months and days within a period: the parts of it read from the tables kept per
month and per day."""

from datetime import UTC, date, datetime, timedelta


def whole_months(from_: datetime | None, to: datetime | None) -> tuple[date | None, date | None]:
    """The first whole (UTC) month from `from_` on, and the month after the last whole one
    before `to`; None where the scope is open."""
    first = end = None
    if from_ is not None:
        start = from_.astimezone(UTC)
        first = date(start.year, start.month, 1)
        if month_start(first) < start:
            first = next_month(first)
    if to is not None:
        stop = to.astimezone(UTC)
        end = date(stop.year, stop.month, 1)
    return first, end


def part_months(from_: datetime | None, to: datetime | None) -> list[tuple[date, datetime, datetime]]:
    """The (UTC) months [from_, to) covers in part, none, one or two: each with the part it
    covers, (month, start, stop)."""
    first, end = whole_months(from_, to)
    parts = []
    if from_ is not None and first is not None and from_ < month_start(first):
        stop = month_start(first) if to is None else min(month_start(first), to)
        parts.append((month_of(from_), from_, stop))
    if to is not None and end is not None and month_start(end) < to:
        start = month_start(end) if from_ is None else max(month_start(end), from_)
        if not parts or parts[0][0] != end:
            parts.append((end, start, to))
    return [(month, start, stop) for month, start, stop in parts if start < stop]


Span = tuple[datetime, datetime]


def whole_days(start: datetime, stop: datetime) -> tuple[tuple[date, date] | None, list[Span]]:
    """The whole (UTC) days within [start, stop), as (first, end) with `end` the day after the
    last, or None; and the parts of days left at either end (the whole span, if it holds no
    whole day)."""
    first, end = day_of(start), day_of(stop)
    if day_start(first) < start:
        first += timedelta(days=1)
    if first >= end:
        return None, [(start, stop)] if start < stop else []
    ends = [(start, day_start(first)), (day_start(end), stop)]
    return (first, end), [(a, b) for a, b in ends if a < b]


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def month_of(moment: datetime) -> date:
    at = moment.astimezone(UTC)
    return date(at.year, at.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, month.day, tzinfo=UTC)
