"""A report's period from its query parameters: instants in UTC, read in the time zone asked for."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query

from shared.http import InvalidInput
from shared.times import UTC_ZONE, AsSent, Zone, instant_in

CAPTURED_FROM = "Leads captured from (inclusive)."
CAPTURED_BEFORE = "Leads captured before (exclusive); a date includes that day."
IN_ZONE = (
    "An IANA time zone (Asia/Almaty, Asia/Baku): the period's dates, and its datetimes without an"
    " offset, are in it, and so are the months and quarters of a report. Default UTC."
)
COSTS_FROM = (
    "Customers acquired from (inclusive), and the spend of each day that starts (at midnight in"
    " `tz`) from then on."
)
COSTS_BEFORE = (
    "Up to (exclusive); a date includes that day. Customers before it, and the spend of each day"
    " that starts before it: `2026-03-31T23:59:59` holds 31 March's spend."
)
InZone = Annotated[Zone | None, Query(description=IN_ZONE)]


@dataclass(frozen=True)
class Span:
    """A report's period as instants in UTC ([start, end); None: open), and its time zone."""

    start: datetime | None
    end: datetime | None
    zone: ZoneInfo

    def closed(self) -> tuple[datetime, datetime]:
        """Its start and end, for a report that needs both (`costs_in` requires them)."""
        if self.start is None or self.end is None:
            raise InvalidInput([("from" if self.start is None else "to", "is required")])
        return self.start, self.end


def days_begun_in(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The days whose start (their midnight in `zone`) lies in [start, end), as [first, stop):
    the days whose spend a period counts. Spend is entered by whole days and customers by the
    instant, so a period ending 23:59:59 holds its last day's spend as it does its customers,
    one from noon holds none of that first day's, and two periods that meet count no day twice."""
    return _first_day_from(start, zone), _first_day_from(end, zone)


def _first_day_from(moment: datetime, zone: ZoneInfo) -> date:
    """The first day in `zone` that starts at `moment` or after it (a day may start at 01:00
    where the clocks go forward at midnight)."""
    try:
        local = moment.astimezone(zone)
    except OverflowError:  # before year 1 in `zone`: its first day starts after
        return date.min
    try:
        starts_then = (moment - timedelta(microseconds=1)).astimezone(zone).date() < local.date()
    except OverflowError:  # the first instant of year 1 in `zone`
        starts_then = local.time() == time.min
    return local.date() if starts_then else local.date() + timedelta(days=1)


def span_of(from_: date | datetime | None, to: date | datetime | None, tz: ZoneInfo | None) -> Span:
    """The period as sent, read in `tz`; a 422 naming the field when it cannot be, or when it
    ends before it starts (an inverted one would answer zeros, as if nothing happened in it)."""
    zone = tz or UTC_ZONE
    instants = {}
    for field, value in (("from", from_), ("to", to)):
        try:
            instants[field] = None if value is None else instant_in(value, zone, end=field == "to")
        except ValueError as error:
            raise InvalidInput([(field, str(error))]) from None
    start, end = instants["from"], instants["to"]
    if start is not None and end is not None and end <= start:
        raise InvalidInput([("to", "must be after `from`")])
    return Span(start, end, zone)


def captured_in(
    from_: Annotated[AsSent | None, Query(alias="from", description=CAPTURED_FROM)] = None,
    to: Annotated[AsSent | None, Query(description=CAPTURED_BEFORE)] = None,
    tz: InZone = None,
) -> Span:
    """The leads' capture period, open at either end."""
    return span_of(from_, to, tz)


ACQUIRED_FROM = "Customers acquired (who became customers) from (inclusive)."
ACQUIRED_BEFORE = "Customers acquired before (exclusive); a date includes that day."


def acquired_in(
    from_: Annotated[AsSent, Query(alias="from", description=ACQUIRED_FROM)],
    to: Annotated[AsSent, Query(description=ACQUIRED_BEFORE)],
    tz: InZone = None,
) -> Span:
    """The period in which the customers of a report were acquired, closed at both ends."""
    return span_of(from_, to, tz)


def costs_in(
    from_: Annotated[AsSent, Query(alias="from", description=COSTS_FROM)],
    to: Annotated[AsSent, Query(description=COSTS_BEFORE)],
    tz: InZone = None,
) -> Span:
    """The period of costs and customers, closed at both ends."""
    return span_of(from_, to, tz)
