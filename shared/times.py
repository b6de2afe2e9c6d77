"""Dates and times as clients send them, one rule for every service: a date (`2026-12-01`)
is the start of that day, a datetime without an offset is UTC, an RFC 3339 datetime keeps
its offset; each becomes an aware datetime in UTC. A period's end given as a date includes
that whole day (it becomes the start of the next). Reports take a `tz` too (`AsSent`,
`instant_in`): their dates, and datetimes without an offset, are then in that zone. A number
(a JSON number, or a string of digits such as `20261231`) is none of these and is refused:
pydantic would take it for a Unix timestamp."""

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

ZONE_RULE = (
    "A date (2026-12-01), an RFC 3339 datetime (2026-12-01T09:30:00+05:00) or a datetime "
    "without an offset; a date means the start of that day, and a date or a datetime without "
    "an offset is in UTC."
)
_EITHER = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
NOT_A_NUMBER = "a date (2026-12-01) or an RFC 3339 datetime, not a number"
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _refuse_numbers(value: Any) -> None:
    """A number, or a string of one, is not a date: pydantic would read it as a Unix timestamp
    (`20261231` as 1970-08-23)."""
    number = isinstance(value, int | float | Decimal)  # bool too: it is an int
    if number or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise PydanticCustomError("date_not_a_number", NOT_A_NUMBER)


def _only_a_date(value: Any) -> date | None:
    """The day, when the client sent a date without a time."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value.strip()) == len("2026-12-01"):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _start_of_day(value: Any) -> Any:
    _refuse_numbers(value)
    day = _only_a_date(value)
    return _midnight(day) if day is not None else value


def _end_of_day(value: Any) -> Any:
    _refuse_numbers(value)
    day = _only_a_date(value)
    if day is None:
        return value
    if day == date.max:
        raise ValueError("the date is out of range")
    return _midnight(day + timedelta(days=1))


LATEST = datetime(9999, 1, 1, tzinfo=UTC)
"""The latest instant taken: reports count months and days on from a period's ends, and past
it they would pass the last year a date can have."""


def in_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already. Years 1 to 9998."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("the datetime is out of range") from error
    if value > LATEST:
        raise ValueError("the datetime is out of range (years 1 to 9998)")
    return value


Instant = Annotated[
    datetime,
    BeforeValidator(_start_of_day),
    AfterValidator(in_utc),
    WithJsonSchema({**_EITHER, "description": ZONE_RULE}),
]
"""A point in time; a date is the start of that day."""

PeriodEnd = Annotated[
    datetime,
    BeforeValidator(_end_of_day),
    AfterValidator(in_utc),
    WithJsonSchema({**_EITHER, "description": ZONE_RULE + " As a date, the period includes that day."}),
]
"""The exclusive end of a period; a date includes that whole day."""

_instant: TypeAdapter[datetime] = TypeAdapter(Instant)


def _day_of(value: Any) -> Any:
    _refuse_numbers(value)
    if _only_a_date(value) is not None or value is None:
        return value
    return _instant.validate_python(value).date()


Day = Annotated[
    date,
    BeforeValidator(_day_of),
    WithJsonSchema({**_EITHER, "description": "A date; a datetime stands for its date in UTC."}),
]
"""A calendar day; a datetime stands for its date in UTC."""


IN_ZONE_RULE = (
    "A date (2026-12-01), an RFC 3339 datetime (2026-12-01T09:30:00+05:00) or a datetime "
    "without an offset; a date means the start of that day, and a date or a datetime without "
    "an offset is in `tz` (UTC when no `tz` is given)."
)
_datetime: TypeAdapter[datetime] = TypeAdapter(datetime)


def _as_sent(value: Any) -> date | datetime:
    _refuse_numbers(value)
    day = _only_a_date(value)
    if day is not None:
        return day
    try:
        return _datetime.validate_python(value)
    except ValidationError as error:
        raise ValueError(error.errors()[0]["msg"]) from None


AsSent = Annotated[
    date | datetime, PlainValidator(_as_sent), WithJsonSchema({**_EITHER, "description": IN_ZONE_RULE})
]
"""A date or a datetime as the client sent it (a datetime at midnight stays one), made an
instant by `instant_in` once the request's time zone is known."""

UTC_ZONE = ZoneInfo("UTC")


@cache
def _zone_names() -> frozenset[str]:
    """The IANA names of the time zone database, both here and in PostgreSQL's: not the
    files beside them that Python would also open (`posixrules`, `right/…`, `posix/…`), nor
    `localtime`, which is whatever the server's is, nor `Factory`, tzdata's placeholder for
    "no zone set yet" (its abbreviation is `-00`)."""
    return frozenset(available_timezones() - {"localtime", "Factory"})


def _zone_name(name: str) -> str:
    if name not in _zone_names():
        raise ValueError("is not an IANA time zone name (such as Asia/Almaty)")
    return name


# IANA zones PostgreSQL reads as its fixed abbreviations (`timezone('CET', …)` is +01 all year),
# as the region tzdata links each to (2024b): a report's months, put by PostgreSQL, and its
# period, put by Python, were an hour apart all summer (found by a review).
READ_AS_ABBREVIATIONS = {
    "CET": "Europe/Brussels",
    "MET": "Europe/Brussels",
    "EET": "Europe/Athens",
    "WET": "Europe/Lisbon",
}


def _named(zone: ZoneInfo) -> ZoneInfo:
    _zone_name(zone.key)
    linked = READ_AS_ABBREVIATIONS.get(zone.key)
    return ZoneInfo(linked) if linked else zone


Zone = Annotated[ZoneInfo, AfterValidator(_named)]
"""An IANA time zone, by name."""

ZoneName = Annotated[str, AfterValidator(_zone_name)]
"""The name of an IANA time zone, kept as text (a stored document's `timezone`)."""


def instant_in(value: date | datetime, zone: ZoneInfo, *, end: bool = False) -> datetime:
    """`value` as an aware datetime in UTC: a date is the start of that day in `zone` (with
    `end`, a period's end, the start of the next: the period includes the day), a datetime
    without an offset is in `zone`. Raises ValueError out of years 1 to 9998."""
    if not isinstance(value, datetime):
        if end and value == date.max:
            raise ValueError("the date is out of range")
        value = datetime.combine(value + timedelta(days=1) if end else value, time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return in_utc(value)
