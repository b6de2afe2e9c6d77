"""Whole UTC months within a period: the part of it read from the tables kept per month."""

from datetime import UTC, date, datetime


def whole_months(from_: datetime | None, to: datetime | None) -> tuple[date | None, date | None]:
    """The first whole (UTC) month from `from_` on, and the month after the last whole one
    before `to`; None where the scope is open."""
    first = end = None
    if from_ is not None:
        start = from_.astimezone(UTC)
        first = date(start.year, start.month, 1)
        if month_start(first) < start:
            first = _next_month(first)
    if to is not None:
        stop = to.astimezone(UTC)
        end = date(stop.year, stop.month, 1)
    return first, end


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, month.day, tzinfo=UTC)
