"""Webhooks to reps: queued in the caller's transaction (sent as it commits when the dispatcher
can take it), and the token that proves a rep received theirs."""

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Rep, WebhookDelivery
from services.nurture.subscriptions import origin_of
from services.nurture.webhooks import claim_at_birth
from shared.db import defer_insert
from shared.sealing import SecretBox


def queue_webhook(
    session: AsyncSession, rep: Rep, lead_id: UUID, event_type: str, body: dict[str, Any], now: datetime
) -> None:
    delivery = {
        "id": uuid4(),
        "rep_id": rep.id,
        "lead_id": lead_id,
        "event_type": event_type,
        "url": rep.webhook_url,
        "origin": origin_of(rep.webhook_url),
        "endpoint_id": None,
        "body": json.dumps(body),
        "status": "pending",
        "attempts": 0,
        "lease_until": None,
        "next_attempt_at": now,
        "created_at": now,
    }
    claim_at_birth(session, delivery, rep.webhook_secret)
    defer_insert(session, WebhookDelivery.__table__, delivery)  # type: ignore[attr-defined]


def acknowledge_token(rep: Rep, lead_id: UUID, box: SecretBox) -> str:
    """Proof, for the acknowledge call, that the caller received this rep's webhook: an HMAC
    of the lead and rep under the rep's signing secret."""
    message = f"acknowledge.{lead_id}.{rep.id}".encode()
    digest = hmac.new(box.open(rep.webhook_secret).encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
