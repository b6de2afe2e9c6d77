"""Proof of a marketing consent given with a lead (a form's box, an import's column, an API's
`consent`): when, through which source and channel, and the wording the source showed (its
`consent_text`, with the text's SHA-256 to show it is the one shown). Kept in the lead's
history, so the lead's detail shows it and its erasure deletes it. A consent given later
(`POST /v1/consent`) keeps the same (`shown`), with the wording it was sent with."""

import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.journal import record_history
from services.ingest.models import Source

GIVEN = "given_with_lead"  # the history entry's type: a consent that came with the lead's data


def proof(source: Source) -> dict[str, Any]:
    """What the history entry says besides its time and source: what was agreed to. Without a
    `consent_text` on the source, the wording was not recorded (None)."""
    return {"granted": True, "purpose": "marketing", **shown(source, source.consent_text)}


def shown(source: Source, wording: str | None) -> dict[str, Any]:
    """Through which source a consent was given, and the `wording` the person was shown with its
    SHA-256 (both None when it is not known): the proof a consent's history entry keeps."""
    return {
        "source_name": source.name,
        "source_channel": source.channel,
        "wording": wording,
        "wording_sha256": hashlib.sha256(wording.encode()).hexdigest() if wording else None,
    }


def keep_consent_proof(session: AsyncSession, lead_id: UUID, source: Source, at: datetime | None) -> None:
    """Record, in the caller's transaction, that the person consented through `source` at `at`
    (now when None)."""
    record_history(
        session, lead_id, kind="consent", type=GIVEN, source=source, properties=proof(source), occurred_at=at
    )
