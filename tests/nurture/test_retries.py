"""The retry schedule (pure)."""

import random

from services.nurture.config import SPEC_RETRY_SCHEDULE
from services.nurture.retries import retry_delay


def test_follows_the_standard_webhooks_schedule_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, base in enumerate(SPEC_RETRY_SCHEDULE, start=1):
        delay = retry_delay(attempt, SPEC_RETRY_SCHEDULE, rng)
        assert delay is not None and 0.9 * base <= delay <= 1.1 * base


def test_gives_up_when_the_schedule_is_spent() -> None:
    assert retry_delay(len(SPEC_RETRY_SCHEDULE) + 1, SPEC_RETRY_SCHEDULE, random.Random()) is None
