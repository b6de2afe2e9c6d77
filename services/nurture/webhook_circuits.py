"""Receivers' circuits: one that keeps failing is paused (its deliveries wait), longer each time."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.nurture.config import NurtureSettings
from services.nurture.webhook_attempts import Outcome

log = logging.getLogger(__name__)

_CIRCUIT_OK = (
    "UPDATE receiver_circuits SET failures = 0, open_until = NULL WHERE origin = $1 AND failures > 0"
)
# $2 failures in a row; $3: after a success, so the count starts again (and the circuit closes)
_CIRCUIT_FAILED = """
INSERT INTO receiver_circuits AS c (origin, failures) VALUES ($1, $2)
ON CONFLICT (origin) DO UPDATE SET
    failures = CASE WHEN $3 THEN $2 ELSE c.failures + $2 END,
    open_until = CASE WHEN $3 THEN NULL ELSE c.open_until END
RETURNING failures
"""
_CIRCUIT_OPEN = "UPDATE receiver_circuits SET open_until = $2 WHERE origin = $1"
_LONGEST_PAUSE = 600.0
# Doublings past this leave any first pause over a microsecond past the longest; unbounded, a
# receiver down for hours (2 ** 1024) overflowed a float and its batch's recording rolled back.
_MOST_DOUBLINGS = 32


@dataclass(frozen=True)
class CircuitChange:
    """What a run of outcomes from one receiver does to its circuit: `restart` (a success came,
    so the count of failures in a row starts again and the circuit closes), then `failures`
    more in a row."""

    restart: bool
    failures: int


def circuit_change(failed: Sequence[bool]) -> CircuitChange:
    """The change made by one receiver's outcomes, in the order they came (True: it failed)."""
    last_success = max((i for i, f in enumerate(failed) if not f), default=None)
    if last_success is None:
        return CircuitChange(restart=False, failures=len(failed))
    return CircuitChange(restart=True, failures=len(failed) - last_success - 1)


async def update_circuits(
    connection: asyncpg.Connection, settings: NurtureSettings, outcomes: list[Outcome], now: datetime
) -> None:
    """Each receiver's circuit after its outcomes in this batch."""
    by_origin: dict[str, list[bool]] = {}
    for outcome in outcomes:
        if outcome.due.origin is not None:
            by_origin.setdefault(outcome.due.origin, []).append(outcome.receiver_failed)
    for origin in sorted(by_origin):  # in one order: two dispatchers never deadlock
        await _update_circuit(connection, settings, origin, circuit_change(by_origin[origin]), now)


async def _update_circuit(
    connection: asyncpg.Connection,
    settings: NurtureSettings,
    origin: str,
    change: CircuitChange,
    now: datetime,
) -> None:
    if not change.failures:
        await connection.execute(_CIRCUIT_OK, origin)
        return
    failures = await connection.fetchval(_CIRCUIT_FAILED, origin, change.failures, change.restart)
    threshold = settings.circuit_failures
    if failures >= threshold:
        doublings = min(failures - threshold, _MOST_DOUBLINGS)
        pause = min(settings.circuit_open_seconds * 2**doublings, _LONGEST_PAUSE)
        await connection.execute(_CIRCUIT_OPEN, origin, now + timedelta(seconds=pause))
        # its host only: a path may hold the receiver's secret (a Slack or Zapier hook)
        host = origin.split("/", 3)[2] if "://" in origin else "?"
        log.warning("a receiver on %s failed %d times in a row: paused for %.0fs", host, failures, pause)
