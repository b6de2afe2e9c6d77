"""Capture: one person is one lead. A submission either creates the lead or merges into it.

The identity rule:
- the same normalised email, or the same E.164 phone, is the same person;
- when the email points at one lead and the phone at another, the email wins (phones are
  shared: an office line, a family number). The submission merges into the email's lead;
  the phone stays with the lead that has it, and the event names the conflict;
- contact points are filled when empty, never overwritten: a different email or phone for a
  known person is kept on the activity, so nothing typed is lost;
- other fields: the newest non-empty value wins (progressive profiling), except the first
  touch (utm, page_url, referrer), which attribution keeps; later touches go on the activity.
"""

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.journal import record_activity, stage_event
from services.ingest.models import Lead, Source
from services.ingest.normalize import collect_utm, normalize_contact
from services.ingest.schemas import LeadIn
from shared.db import defer_insert
from shared.events import LEAD_CAPTURED, LEAD_UPDATED, LeadCaptured, LeadUpdated, utcnow
from shared.http import InvalidInput, field_name

FIRST_TOUCH = frozenset({"utm", "page_url", "referrer"})


@dataclass(frozen=True)
class Client:
    """Who sent the request (kept on the lead row, never put in events or logs)."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Submission:
    """A lead as a channel gave it, normalised and checked: ready to store."""

    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    client: Client = field(default_factory=Client)
    activity: str | None = "form_submitted"  # what a repeat is recorded as; None: nothing
    correlation_id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True)
class Captured:
    lead_id: UUID
    created: bool

    @property
    def status(self) -> str:
        return "accepted" if self.created else "merged"


_lead = TypeAdapter(LeadIn)


def parse_lead(fields: dict[str, Any]) -> LeadIn:
    """A lead from loose fields (a batch item, a form, a CSV row); InvalidInput names each
    field at fault."""
    try:
        return _lead.validate_python(fields)
    except ValidationError as error:
        raise InvalidInput([(field_name(tuple(e["loc"])), e["msg"]) for e in error.errors()]) from error


def prepare(
    source: Source,
    data: LeadIn,
    default_region: str,
    client: Client | None = None,
    activity: str | None = "form_submitted",
) -> Submission:
    """Validate and normalise a lead against its source's policy; InvalidInput names every
    field at fault. Pure: no I/O, so a bad lead never reaches a shared transaction."""
    unmet = [(f, "required by this source") for f in source.required_fields if not getattr(data, f, None)]
    try:
        email, phone = normalize_contact(data.email, data.phone, source.default_region or default_region)
    except InvalidInput as error:
        raise InvalidInput(error.errors + unmet) from error
    if unmet:
        raise InvalidInput(unmet)
    attributes = data.model_dump(mode="json", exclude={"email", "phone"}, exclude_none=True)
    attributes["utm"] = collect_utm(data.utm, data.page_url, data.referrer)
    campaign = data.campaign or attributes["utm"].get("campaign") or source.default_campaign
    if campaign:
        attributes["campaign"] = campaign
    attributes = {k: v for k, v in attributes.items() if v not in ({}, [], "")}
    return Submission(email, phone, attributes, client or Client(), activity)


async def capture(session: AsyncSession, source: Source, submission: Submission) -> Captured:
    """Create the lead or merge into the one it matches; stage the events in the same transaction."""
    matches = await _find_matches(session, submission.email, submission.phone)
    if not matches:
        return Captured(_create(session, source, submission), created=True)
    return Captured(await _merge(session, source, submission, matches), created=False)


_PENDING = "ingest.pending_leads"


def _pending(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Leads created earlier in this transaction, by contact point: their rows are written
    at commit, so a later capture in the same transaction must find them here."""
    pending: dict[str, dict[str, Any]] = session.info.setdefault(_PENDING, {})
    return pending


async def _find_matches(session: AsyncSession, email: str | None, phone: str | None) -> list[dict[str, Any]]:
    """The leads holding this email or phone, locked so concurrent merges into one lead queue."""
    pending = _pending(session)
    in_transaction = [pending[c] for c in (f"email:{email}", f"phone:{phone}") if c in pending]
    result = await session.execute(
        text(
            "SELECT id, email, phone, attributes FROM leads "
            "WHERE email = :email OR phone = :phone ORDER BY captured_at FOR UPDATE"
        ),
        {"email": email, "phone": phone},
    )
    return [*in_transaction, *(dict(row._mapping) for row in result)]


def _create(session: AsyncSession, source: Source, submission: Submission) -> UUID:
    lead_id, captured_at = uuid4(), utcnow()
    row = {
        "id": lead_id,
        "source_id": source.id,
        "email": submission.email,
        "phone": submission.phone,
        "attributes": submission.attributes,
        "correlation_id": submission.correlation_id,
        "ip": submission.client.ip,
        "user_agent": submission.client.user_agent,
        "captured_at": captured_at,
        "updated_at": captured_at,
    }
    defer_insert(session, Lead.__table__, row)  # type: ignore[attr-defined]
    pending = _pending(session)
    for contact in ("email", "phone"):
        if row[contact]:
            pending[f"{contact}:{row[contact]}"] = row
    payload = LeadCaptured(
        source_id=source.id,
        channel=source.channel,
        online=source.online,
        email=submission.email,
        phone=submission.phone,
        captured_at=captured_at,
        **submission.attributes,
    )
    stage_event(session, LEAD_CAPTURED, lead_id, submission.correlation_id, payload)
    return lead_id


async def _merge(
    session: AsyncSession, source: Source, submission: Submission, matches: list[dict[str, Any]]
) -> UUID:
    by_email = next((m for m in matches if submission.email and m["email"] == submission.email), None)
    by_phone = next((m for m in matches if submission.phone and m["phone"] == submission.phone), None)
    lead = by_email or by_phone
    assert lead is not None
    conflicts = {"phone": str(by_phone["id"])} if by_phone is not None and by_phone is not lead else {}

    contact: dict[str, str] = {}
    if submission.email and not lead["email"]:
        contact["email"] = submission.email
    if submission.phone and not lead["phone"] and not conflicts:
        contact["phone"] = submission.phone
    submitted = (("email", submission.email), ("phone", submission.phone))
    unmatched = {k: v for k, v in submitted if v and v != lead[k] and k not in contact}
    stored: dict[str, Any] = lead["attributes"]
    changes = merge_attributes(stored, submission.attributes)

    if contact or changes:
        await _apply(session, lead, contact, {**stored, **changes})
        updated = LeadUpdated(
            source_id=source.id, channel=source.channel, changes={**contact, **changes}, conflicts=conflicts
        )
        stage_event(session, LEAD_UPDATED, lead["id"], submission.correlation_id, updated)

    if submission.activity:
        touch = {k: v for k, v in submission.attributes.items() if k in FIRST_TOUCH}
        properties = {**touch, **unmatched, **({"conflicts": conflicts} if conflicts else {})}
        record_activity(
            session, lead["id"], submission.correlation_id, submission.activity, source, properties
        )
    return UUID(str(lead["id"]))


async def _apply(
    session: AsyncSession, lead: dict[str, Any], contact: dict[str, str], attributes: dict[str, Any]
) -> None:
    """Write the merge: to the pending row if the lead was created in this transaction."""
    pending = _pending(session)
    if any(row is lead for row in pending.values()):
        lead.update(contact, attributes=attributes)
        pending.update({f"{name}:{value}": lead for name, value in contact.items()})
        return
    table = Lead.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(table.c.id == lead["id"])
        .values(
            email=func.coalesce(table.c.email, contact.get("email")),
            phone=func.coalesce(table.c.phone, contact.get("phone")),
            attributes=attributes,
            updated_at=func.now(),
        )
    )


def merge_attributes(stored: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """The attributes that change: new or different values, first-touch fields only when
    missing, custom fields merged key by key."""
    changes: dict[str, Any] = {}
    for key, value in incoming.items():
        if key in FIRST_TOUCH and stored.get(key):
            continue
        if key == "custom":
            merged = {**stored.get("custom", {}), **value}
            if merged != stored.get("custom"):
                changes["custom"] = merged
        elif stored.get(key) != value:
            changes[key] = value
    return changes
