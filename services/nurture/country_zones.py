"""The time zone a country keeps, when it keeps one: pure but for the year it asks about.

A lead that states no time zone and whose phone number names none may still say where it is:
its `country` (Uzbekistan, Georgia, Türkiye), or its phone's (+7 701… Kazakhstan). A country
all of whose zones keep the same clock through the year (Kazakhstan's seven since 2024,
Uzbekistan's two, Germany's two) has that clock; one whose zones differ (Russia, the United
States, Ukraine with Simferopol) tells none."""

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel.core import get_global

SEASONS = ((1, 15), (4, 15), (7, 15), (10, 15))  # a clock kept through the year is the same at each


def zone_of_country(code: str | None, preferred: str | None = None, year: int | None = None) -> str | None:
    """The IANA zone of the country of alpha-2 `code` when all its zones keep one clock:
    `preferred` when it is one of them (the playbooks' Asia/Almaty for Kazakhstan), else the
    first. None for a country of several clocks, or none known."""
    if not code:
        return None
    zones = _one_clock(code.upper(), year or datetime.now(UTC).year)
    if not zones:
        return None
    return preferred if preferred in zones else zones[0]


@cache
def _one_clock(code: str, year: int) -> tuple[str, ...]:
    zones: list[str] = list(get_global("territory_zones").get(code, ()))
    clocks = {tuple(_offset(zone, year, month, day) for month, day in SEASONS) for zone in zones}
    return tuple(zones) if len(clocks) == 1 else ()


def _offset(zone: str, year: int, month: int, day: int) -> float:
    offset = datetime(year, month, day, 12, tzinfo=UTC).astimezone(ZoneInfo(zone)).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0
