"""Recording webhook attempts a batch at a time: the attempts log, each delivery's next state
(delivered, retried on the schedule, failed), a rep's hand-off delivered for the first time told
(`lead.delivered`), a 410 Gone's subscription disabled, and circuits."""

import contextlib
import json
import logging
import random
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from services.nurture.config import NurtureSettings
from services.nurture.retries import retry_delay
from services.nurture.webhook_attempts import Due, Outcome
from services.nurture.webhook_circuits import update_circuits
from shared import topics
from shared.db import DirectConnection
from shared.events import LEAD_DELIVERED, Envelope, LeadDelivered, utcnow

log = logging.getLogger(__name__)

_RECORD_ATTEMPTS = """
INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, error, duration_ms)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::text[], $5::float8[])
"""
# A retry is not scheduled for a delivery failed while its attempt was under way (its
# subscription was disabled meanwhile): the attempt's answer is logged, nothing is sent again.
_NEXT_STATUS = "CASE WHEN d.status = 'failed' AND v.status = 'pending' THEN 'failed' ELSE v.status END"
# An attempt's answer sets the delivery's state only while the delivery is still that attempt's:
# one redelivered meanwhile (attempts back to 0, due now) is sent again, not closed by it. Each
# row says whether this is the webhook's first delivery: its first 2xx ever (`b`: the row as it
# was; a delivery from before nurture's 0019 has only `delivered_at` to say it was delivered).
_SET_STATES = """
UPDATE webhook_deliveries d SET status = {next_status},
    next_attempt_at = coalesce(v.next_at, d.next_attempt_at), delivered_at = v.delivered_at,
    first_delivered_at = coalesce(d.first_delivered_at, d.delivered_at, v.delivered_at),
    lease_until = NULL
FROM unnest(${0}::uuid[], ${1}::text[], ${2}::timestamptz[], ${3}::timestamptz[], ${4}::int[])
    AS v(id, status, next_at, delivered_at, attempts)
JOIN webhook_deliveries b ON b.id = v.id
WHERE d.id = v.id AND d.attempts = v.attempts
RETURNING d.id, v.delivered_at IS NOT NULL AND coalesce(b.first_delivered_at, b.delivered_at) IS NULL AS first
"""
# `lead.delivered` for each rep's hand-off delivered for the first time (the events are made in
# Python for every hand-off delivered; only the first deliveries' rows are written), in the
# statement that records it: no round trip of its own on the hot path.
_TELL_FIRST = """
INSERT INTO outbox (topic, key, value)
SELECT ${3}::text, t.key, t.value
FROM unnest(${0}::uuid[], ${1}::bytea[], ${2}::bytea[]) WITH ORDINALITY AS t(id, key, value, n)
JOIN states s ON s.id = t.id AND s.first
ORDER BY t.n
"""


def _states(*numbers: int) -> str:
    return _SET_STATES.format(*numbers, next_status=_NEXT_STATUS)


# The states and the first deliveries' events (the attempts are written before, apart).
_SET_STATES_TELLING = f"WITH states AS ({_states(1, 2, 3, 4, 5)}) {_TELL_FIRST.format(6, 7, 8, 9)}"
# The common case, every receiver answered: the attempts, the deliveries' states, the first
# deliveries' events and the receivers' circuits (closed) in one statement, one round trip.
_RECORD_ANSWERED = f"""
WITH attempts AS ({_RECORD_ATTEMPTS}),
states AS ({_states(1, 6, 7, 8, 10)}),
told AS ({_TELL_FIRST.format(11, 12, 13, 14)})
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
) -> bool:
    """Record a batch of outcomes; whether a first delivery's `lead.delivered` may have been
    written to the outbox (its relay to be woken)."""
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
    told = (*_first_deliveries(outcomes, now), topics.TOUCH_EVENTS)
    connection = await records.get()
    if not any(outcome.receiver_failed or outcome.status_code == 410 for outcome in outcomes):
        origins = sorted({o.due.origin for o in outcomes if o.due.origin is not None})
        await connection.execute(
            _RECORD_ANSWERED, *attempts, *map(list, zip(*states, strict=True)), origins, tries, *told
        )
        return bool(told[0])
    async with connection.transaction():
        await connection.execute(_RECORD_ATTEMPTS, *attempts)
        set_states = (ids, *map(list, zip(*states, strict=True)), tries, *told)
        await connection.execute(_SET_STATES_TELLING, *set_states)
        await _disable_gone(connection, outcomes, now)
        await update_circuits(connection, settings, outcomes, now)
    return bool(told[0])


def _first_deliveries(outcomes: list[Outcome], now: datetime) -> tuple[list[UUID], list[bytes], list[bytes]]:
    """`lead.delivered` for every rep's hand-off delivered in this batch, as (delivery ids, keys,
    values): the statement writes those of the first deliveries only."""
    ids: list[UUID] = []
    keys: list[bytes] = []
    values: list[bytes] = []
    for outcome in outcomes:
        due = outcome.due
        if not (outcome.delivered and due.hands_off) or due.lead_id is None or due.rep_id is None:
            continue
        delivered = LeadDelivered(rep_id=due.rep_id, delivered_at=now, attempts=due.attempts)
        event = Envelope.of(LEAD_DELIVERED, due.lead_id, _correlation(due), "nurture", delivered)
        ids.append(due.id)
        keys.append(str(due.lead_id).encode())
        values.append(event.to_bytes())
    return ids, keys, values


def _correlation(due: Due) -> UUID:
    """The hand-off's correlation id, which its webhook's body carries (the intake request's)."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return UUID(json.loads(due.body)["data"]["correlation_id"])
    return due.id


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
