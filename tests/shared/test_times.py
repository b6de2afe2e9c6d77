"""The shared date rule: a date, an RFC 3339 datetime or a datetime without an offset; never a
number, which pydantic would otherwise read as a Unix timestamp."""

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.times import NOT_A_NUMBER, AsSent, Day, Instant, PeriodEnd

TYPES = {"Instant": Instant, "PeriodEnd": PeriodEnd, "Day": Day, "AsSent": AsSent}
NUMBERS = [20261231, "20261231", "20261201", "-62135596800", 0, -1, 1.5, "1e20", " 1795000000 ", True]


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("value", NUMBERS, ids=repr)
def test_a_number_is_not_a_date(name: str, value: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(TYPES[name]).validate_python(value)
    assert [e["msg"] for e in raised.value.errors()] == [NOT_A_NUMBER]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Instant", datetime(2026, 12, 1, tzinfo=UTC)),
        ("PeriodEnd", datetime(2026, 12, 2, tzinfo=UTC)),
        ("Day", date(2026, 12, 1)),
        ("AsSent", date(2026, 12, 1)),
    ],
)
def test_dates_and_datetimes_are_still_taken(name: str, expected: object) -> None:
    adapter = TypeAdapter(TYPES[name])
    assert adapter.validate_python("2026-12-01") == expected
    assert adapter.validate_json('"2026-12-01T09:30:00+05:00"') is not None
