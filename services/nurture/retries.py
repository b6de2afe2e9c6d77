"""When to try a failed webhook again: pure, so the schedule is testable without waiting."""

import random
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime


def retry_delay(failed_attempts: int, schedule: Sequence[float], rng: random.Random) -> float | None:
    """Seconds before the next try after `failed_attempts` failures (±10 % jitter so
    receivers coming back are not hit by every sender at once); None when the schedule is spent."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    return schedule[failed_attempts - 1] * rng.uniform(0.9, 1.1)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds, from either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if (seconds := value.strip()).isascii() and seconds.isdigit():  # not '²': str.isdigit takes it
        return float(seconds)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None
