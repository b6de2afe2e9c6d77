"""One webhook attempt: the delivery claimed (`Due`), its signed POST, and what came of it."""

import time
from dataclasses import dataclass
from uuid import UUID

import aiohttp
from standardwebhooks.webhooks import Webhook

from services.nurture.egress import failure_text
from services.nurture.retries import retry_after_seconds
from shared.events import utcnow
from shared.faults import drop_traceback
from shared.outgoing import post

HAND_OFF = "lead.hot"  # a rep's hand-off webhook's event_type (services/nurture/assignments.py)


@dataclass
class Due:
    id: UUID
    url: str
    body: str
    attempts: int
    endpoint_id: UUID | None
    origin: str | None
    secret: str
    previous_secret: str | None
    # Whose webhook it is: a rep's hand-off (`lead.hot`) delivered tells `lead.delivered`.
    rep_id: UUID | None = None
    lead_id: UUID | None = None
    event_type: str | None = None

    @property
    def hands_off(self) -> bool:
        """A rep's hand-off webhook (not a call task, a manager's notice or a subscription's)."""
        return self.rep_id is not None and self.event_type == HAND_OFF


@dataclass
class Outcome:
    due: Due
    status_code: int | None
    error: str | None
    duration_ms: float
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def receiver_failed(self) -> bool:
        """The receiver is down or broken (not: it refused this one message)."""
        return self.status_code is None or self.status_code >= 500 or self.status_code == 429


def signed_headers(
    secret: str, message_id: str, body: str, previous_secret: str | None = None
) -> dict[str, str]:
    """Standard Webhooks headers. During a secret rotation both secrets sign, space-separated,
    so receivers verify with either the old or the new one."""
    now = utcnow()
    signatures = [Webhook(s).sign(message_id, now, body) for s in (secret, previous_secret) if s]
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


async def attempt(client: aiohttp.ClientSession, due: Due) -> Outcome:
    """POST the delivery once, signed, never following a redirect; the log keeps a short
    generic reason for a failure, never the error's own text."""
    started = time.perf_counter()
    retry_after = None
    try:
        headers = signed_headers(due.secret, str(due.id), due.body, due.previous_secret)
        request = post(client, due.url, data=due.body, headers=headers, allow_redirects=False)
        async with request as response:
            status, error = response.status, None
            retry_after = retry_after_seconds(response.headers.get("retry-after"), utcnow())
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, error = None, failure_text(exc)
        drop_traceback(exc)
    return Outcome(due, status, error, (time.perf_counter() - started) * 1000, retry_after)
