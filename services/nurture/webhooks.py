"""Webhook delivery: claim due deliveries with a lease, POST them signed, log every attempt."""

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import httpx
from sqlalchemy import or_, update
from sqlmodel import col, select
from standardwebhooks.webhooks import Webhook

from services.nurture.config import NurtureSettings
from services.nurture.models import DeliveryAttempt, Rep, WebhookDelivery
from services.nurture.retries import retry_delay
from shared.db import Database
from shared.events import utcnow
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)
BATCH = 100


@dataclass
class Due:
    id: UUID
    url: str
    body: str
    attempts: int
    secret: str


@dataclass
class Outcome:
    due: Due
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(secret: str, message_id: str, body: str) -> dict[str, str]:
    """Standard Webhooks headers: webhook-id, webhook-timestamp, webhook-signature."""
    now = utcnow()
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }


class WebhookDispatcher:
    """Sends due deliveries. A claim is a lease: if this process dies mid-send, the lease
    runs out and any replica sends it again with the same webhook-id."""

    def __init__(self, db: Database, settings: NurtureSettings) -> None:
        self.db = db
        self.settings = settings
        self.rng = random.Random()  # noqa: S311 - jitter, not security
        self._wakeup = Wakeup()
        self.client = httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"user-agent": "Leadflow-Webhooks/1"},
        )

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    while await self.dispatch_once() == BATCH:
                        pass
                except Exception as error:
                    log.warning("webhook dispatch failed: %r", error)
                await self._wakeup.wait(1.0)
        finally:
            await self.client.aclose()

    async def dispatch_once(self) -> int:
        due = await self._claim()
        if due:
            outcomes = await asyncio.gather(*(self._send(d) for d in due))
            await self._record(outcomes)
        return len(due)

    async def _claim(self) -> list[Due]:
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.webhook_lease_seconds)
        table = WebhookDelivery.__table__  # type: ignore[attr-defined]
        reps = Rep.__table__  # type: ignore[attr-defined]
        claimable = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == "pending",
                col(WebhookDelivery.next_attempt_at) <= now,
                or_(
                    col(WebhookDelivery.lease_until).is_(None),
                    col(WebhookDelivery.lease_until) < now,
                ),
            )
            .order_by(col(WebhookDelivery.next_attempt_at))
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(table)
            .where(table.c.id.in_(claimable.scalar_subquery()), table.c.rep_id == reps.c.id)
            .values(lease_until=lease, attempts=table.c.attempts + 1)
            .returning(table.c.id, table.c.url, table.c.body, table.c.attempts, reps.c.webhook_secret)
        )
        async with self.db.transaction(notify=False) as session:
            rows = (await session.execute(claim)).all()
        return [Due(*row) for row in rows]

    async def _send(self, due: Due) -> Outcome:
        started = time.perf_counter()
        try:
            headers = signed_headers(due.secret, str(due.id), due.body)
            response = await self.client.post(due.url, content=due.body, headers=headers)
            status, error = response.status_code, None
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"[:500]
        return Outcome(due, status, error, (time.perf_counter() - started) * 1000)

    async def _record(self, outcomes: list[Outcome]) -> None:
        now = utcnow()
        async with self.db.transaction(notify=False) as session:
            for outcome in outcomes:
                session.add(
                    DeliveryAttempt(
                        delivery_id=outcome.due.id,
                        attempted_at=now,
                        status_code=outcome.status_code,
                        error=outcome.error,
                        duration_ms=outcome.duration_ms,
                    )
                )
                values = self._next_state(outcome, now)
                await session.execute(
                    update(WebhookDelivery).where(col(WebhookDelivery.id) == outcome.due.id).values(**values)
                )

    def _next_state(self, outcome: Outcome, now: object) -> dict[str, object]:
        if outcome.delivered:
            return {"status": "delivered", "delivered_at": now, "lease_until": None}
        delay = retry_delay(outcome.due.attempts, self.settings.webhook_retry_schedule, self.rng)
        if delay is None or outcome.status_code == 410:
            log.warning("webhook %s given up after %d attempts", outcome.due.id, outcome.due.attempts)
            return {"status": "failed", "lease_until": None}
        return {"next_attempt_at": utcnow() + timedelta(seconds=delay), "lease_until": None}
