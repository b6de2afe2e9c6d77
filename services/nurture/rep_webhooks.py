"""Webhooks to reps: queued in the caller's transaction (sent as it commits when the dispatcher
can take it), the notice they read in the lead's language, and the token that proves a rep
received theirs. While a rotation's overlap lasts (`directory.rotate_rep_secret`), the rep's
previous secret signs beside the new one and a token made with it still counts; after it, only
the new one does (a webhook sent again carries the new one's: `acknowledge_links`)."""

import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.acknowledge_links import token
from services.nurture.models import Rep, WebhookDelivery
from services.nurture.subscriptions import origin_of
from services.nurture.webhooks import claim_at_birth
from shared.db import defer_insert
from shared.languages import Language, language_of, say
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
    claim_at_birth(session, delivery, rep.webhook_secret, previous_secret(rep, now))
    defer_insert(session, WebhookDelivery.__table__, delivery)  # type: ignore[attr-defined]


def notice(key: str, classified: dict[str, Any]) -> tuple[str, Language]:
    """The text `key` for a rep (or manager) in the lead's language, filled with the lead, then
    what the person said last (scoring's `said`: newer than the profile when a repeat said it);
    and that language."""
    person = classified.get("lead") or {}
    language = language_of(person)
    said = {f"said_{k}": v for k, v in (classified.get("said") or {}).items() if k != "at"}
    text = f"{say(key, language, **person)} {say('rep_lead_said', language, **said)}"
    return " ".join(text.split()), language


def previous_secret(rep: Rep, now: datetime) -> str | None:
    """The rep's rotated-out secret (sealed) while its overlap lasts at `now`, else None."""
    until = rep.previous_webhook_secret_until
    return rep.previous_webhook_secret if until is not None and now < until else None


def acknowledge_token(rep: Rep, lead_id: UUID, box: SecretBox) -> str:
    """Proof, for the acknowledge call, that the caller received this rep's webhook: an HMAC
    of the lead and rep under the rep's signing secret."""
    return token(box.open(rep.webhook_secret), rep.id, lead_id)


def acknowledge_link(rep: Rep, lead_id: UUID, public_url: str, box: SecretBox) -> dict[str, Any]:
    """A webhook's `acknowledge` block: where the rep (or their CRM) posts, and what."""
    return {
        "url": f"{public_url}/v1/leads/{lead_id}/acknowledge",
        "body": {"rep_id": str(rep.id), "token": acknowledge_token(rep, lead_id, box)},
    }


def acknowledge_tokens(rep: Rep, lead_id: UUID, box: SecretBox, now: datetime) -> list[str]:
    """The tokens an acknowledge call may carry at `now`: the current secret's, and during a
    rotation's overlap the previous secret's, so links sent before it keep working until then."""
    sealed = [rep.webhook_secret, previous_secret(rep, now)]
    return [token(box.open(secret), rep.id, lead_id) for secret in sealed if secret]
