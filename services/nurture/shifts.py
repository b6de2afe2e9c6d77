"""A rep's working hours: when they are on duty, and when an SLA given at some moment runs out
if its clock runs only while they are. Pure, no I/O.

A call centre that is not open round the clock says so (004:166), and its SLA is kept in the
hours it works: a hot lead at 20:00 given to a rep who starts at 09:00 is not "missed" at 20:15
and escalated through every rep to the managers overnight. Hours are weekly: the days a shift
starts on, its start and end in the rep's zone; a shift whose end is not after its start runs
past midnight (22:00-06:00, into the next day). A rep with no hours works round the clock."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Hours:
    zone: ZoneInfo
    days: frozenset[int]  # the weekdays a shift starts on (Monday 0)
    start: time
    end: time

    @classmethod
    def of(cls, stored: Mapping[str, Any] | None) -> "Hours | None":
        """The hours as the rep's row keeps them (`schemas.WorkingHours` as JSON), or None."""
        if not stored:
            return None
        return cls(
            zone=ZoneInfo(stored["timezone"]),
            days=frozenset(DAYS.index(day) for day in stored["days"]),
            start=time.fromisoformat(stored["start"]),
            end=time.fromisoformat(stored["end"]),
        )


def shifts(hours: Hours, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The shifts that end after `since`, in order, each as (start, end) in UTC; the first may
    have begun before `since`. Endless: a week has at least one shift (`WorkingHours`)."""
    first_day = since.astimezone(hours.zone).date() - DAY  # yesterday's may run past midnight
    for offset in count():
        day = first_day + offset * DAY
        if day.weekday() in hours.days:
            start, end = _shift_on(hours, day)
            if end > since:
                yield start, end


def _shift_on(hours: Hours, day: date) -> tuple[datetime, datetime]:
    ends_on = day + DAY if hours.end <= hours.start else day
    start = datetime.combine(day, hours.start, hours.zone)
    end = datetime.combine(ends_on, hours.end, hours.zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def on_duty_from(hours: Hours | None, at: datetime) -> datetime:
    """When the rep is next on duty: `at` itself when they are then (or have no hours)."""
    if hours is None:
        return at
    start, _ = next(shifts(hours, at))
    return max(start, at)


def due(hours: Hours | None, given_at: datetime, allowed: timedelta) -> datetime:
    """When `allowed` of the rep's working time has passed since `given_at`: an SLA that runs
    only while they are on duty (given at 17:55 with 15 minutes and a shift ending at 18:00,
    it runs out at 09:10 on their next working day)."""
    if hours is None:
        return given_at + allowed
    left = allowed
    for start, end in shifts(hours, given_at):
        start = max(start, given_at)
        if start + left <= end:
            return start + left
        left -= end - start
    raise AssertionError("shifts() never ends")  # pragma: no cover
