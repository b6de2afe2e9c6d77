"""When to try a failed webhook again: pure, so the schedule is testable without waiting."""

import random
from collections.abc import Sequence


def retry_delay(failed_attempts: int, schedule: Sequence[float], rng: random.Random) -> float | None:
    """Seconds before the next try after `failed_attempts` failures (±10 % jitter so
    receivers coming back are not hit by every sender at once); None when the schedule is spent."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    return schedule[failed_attempts - 1] * rng.uniform(0.9, 1.1)
