"""Recording webhook attempts a batch at a time: the attempts log, each delivery's next state
(delivered, retried on the schedule, failed), a 410 Gone's subscription disabled, and circuits."""

import logging
import random
from datetime import datetime, timedelta

import asyncpg

from services.nurture.config import NurtureSettings
from services.nurture.retries import retry_delay
from services.nurture.webhook_attempts import Outcome
from services.nurture.webhook_circuits import update_circuits
from shared.db import DirectConnection
from shared.events import utcnow

log = logging.getLogger(__name__)

_RECORD_ATTEMPTS = """
INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, error, duration_ms)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::text[], $5::float8[])
"""
# A retry is not scheduled for a delivery failed while its attempt was under way (its
# subscription was disabled meanwhile): the attempt's answer is logged, nothing is sent again.
_NEXT_STATUS = "CASE WHEN d.status = 'failed' AND v.status = 'pending' THEN 'failed' ELSE v.status END"
# An attempt's answer sets the delivery's state only while the delivery is still that attempt's:
# one redelivered meanwhile (attempts back to 0, due now) is sent again, not closed by it.
_SET_STATES = f"""
UPDATE webhook_deliveries d SET status = {_NEXT_STATUS},
    next_attempt_at = coalesce(v.next_at, d.next_attempt_at),
    delivered_at = v.delivered_at, lease_until = NULL
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[])
    AS v(id, status, next_at, delivered_at, attempts)
WHERE d.id = v.id AND d.attempts = v.attempts
"""  # noqa: S608 - constants of this module, no value in them
# The common case, every receiver answered: the attempts, the deliveries' states and the
# receivers' circuits (closed) in one statement, one round trip.
_RECORD_ANSWERED = f"""
WITH attempts AS ({_RECORD_ATTEMPTS}),
states AS (
    UPDATE webhook_deliveries d SET status = {_NEXT_STATUS},
        next_attempt_at = coalesce(v.next_at, d.next_attempt_at), delivered_at = v.delivered_at,
        lease_until = NULL
    FROM unnest($1::uuid[], $6::text[], $7::timestamptz[], $8::timestamptz[], $10::int[])
        AS v(id, status, next_at, delivered_at, attempts)
    WHERE d.id = v.id AND d.attempts = v.attempts
)
UPDATE receiver_circuits SET failures = 0, open_until = NULL
WHERE origin = ANY($9::text[]) AND failures > 0
"""  # noqa: S608 - a constant of this module, no value in it
# Two statements: the second sees deliveries that were being queued for the endpoint as the
# first waited for them (nurture migration 0011), which one statement's snapshot would miss.
_DISABLE = "UPDATE webhook_endpoints SET active = false, disabled_reason = $2 WHERE id = $1"
_FAIL_PENDING = """
UPDATE webhook_deliveries SET status = 'failed', lease_until = NULL
WHERE endpoint_id = $1 AND status = 'pending' AND id <> $2
"""


async def record_outcomes(
    records: DirectConnection,
    settings: NurtureSettings,
    rng: random.Random,
    outcomes: list[Outcome],
) -> None:
    now = utcnow()
    states = [next_state(outcome, now, settings, rng) for outcome in outcomes]
    ids = [outcome.due.id for outcome in outcomes]
    tries = [outcome.due.attempts for outcome in outcomes]  # whose the delivery still is
    attempts = (
        ids,
        [now] * len(outcomes),
        [outcome.status_code for outcome in outcomes],
        [outcome.error for outcome in outcomes],
        [outcome.duration_ms for outcome in outcomes],
    )
    connection = await records.get()
    if not any(outcome.receiver_failed or outcome.status_code == 410 for outcome in outcomes):
        origins = sorted({o.due.origin for o in outcomes if o.due.origin is not None})
        await connection.execute(
            _RECORD_ANSWERED, *attempts, *map(list, zip(*states, strict=True)), origins, tries
        )
        return
    async with connection.transaction():
        await connection.execute(_RECORD_ATTEMPTS, *attempts)
        await connection.execute(_SET_STATES, ids, *map(list, zip(*states, strict=True)), tries)
        await _disable_gone(connection, outcomes, now)
        await update_circuits(connection, settings, outcomes, now)


async def _disable_gone(connection: asyncpg.Connection, outcomes: list[Outcome], now: datetime) -> None:
    for outcome in outcomes:
        due = outcome.due
        if outcome.status_code == 410 and due.endpoint_id is not None:
            reason = f"the receiver answered 410 Gone at {now.isoformat()}"
            await connection.execute(_DISABLE, due.endpoint_id, reason)
            await connection.execute(_FAIL_PENDING, due.endpoint_id, due.id)
            log.warning("webhook endpoint %s disabled: 410 Gone", due.endpoint_id)


def next_state(
    outcome: Outcome, now: datetime, settings: NurtureSettings, rng: random.Random
) -> tuple[str, datetime | None, datetime | None]:
    """(status, next attempt, delivered at) after this attempt."""
    if outcome.delivered:
        return "delivered", None, now
    delay = retry_delay(outcome.due.attempts, settings.webhook_retry_schedule, rng)
    if delay is None or outcome.status_code == 410:
        log.warning("webhook %s given up after %d attempts", outcome.due.id, outcome.due.attempts)
        return "failed", None, None
    if outcome.retry_after is not None:
        delay = max(delay, min(outcome.retry_after, 86400.0))
    return "pending", now + timedelta(seconds=delay), None
