"""The retry schedule (pure)."""

import random
from datetime import UTC, datetime

from services.nurture.config import SPEC_RETRY_SCHEDULE
from services.nurture.retries import retry_after_seconds, retry_delay


def test_follows_the_standard_webhooks_schedule_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, base in enumerate(SPEC_RETRY_SCHEDULE, start=1):
        delay = retry_delay(attempt, SPEC_RETRY_SCHEDULE, rng)
        assert delay is not None and 0.9 * base <= delay <= 1.1 * base


def test_gives_up_when_the_schedule_is_spent() -> None:
    assert retry_delay(len(SPEC_RETRY_SCHEDULE) + 1, SPEC_RETRY_SCHEDULE, random.Random()) is None


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_retry_after_reads_seconds_or_an_http_date() -> None:
    assert retry_after_seconds(" 120 ", NOW) == 120.0
    assert retry_after_seconds("Mon, 02 Mar 2026 09:01:30 GMT", NOW) == 90.0
    assert retry_after_seconds("Mon, 02 Mar 2026 08:00:00 GMT", NOW) == 0.0


def test_retry_after_of_other_digits_than_ascii_is_not_read() -> None:
    for value in ("²", "①", "١٢٠", "-5", "1.5", "soon"):
        assert retry_after_seconds(value, NOW) is None, value
