"""Capture: one person is one lead. A submission either creates the lead or merges into it.

The identity rule:
- the same normalised email, or the same E.164 phone, is the same person;
- when the email points at one lead and the phone at another, the email wins (phones are
  shared: an office line, a family number). The submission merges into the email's lead;
  the phone stays with the lead that has it, and the event names the conflict;
- contact points are filled when empty, never overwritten: a different email or phone for a
  known person is kept on the activity, so nothing typed is lost;
- other fields: the newest non-empty value wins (progressive profiling), except the first
  touch (utm, page_url, referrer), which attribution keeps; later touches go on the activity;
- a submission nobody vouches for (a public form, a chatbot, a capture-only key, which sits in
  a web page) cannot rewrite a known person, since anyone can type their email: it fills
  empty fields only, never overwrites one, and adds no contact point (a new email or phone
  goes on the activity);
- what a repeat says this time (`profiles.SAID`: timeframe, message, need) goes on its
  activity as well, so new intent is scored though the profile keeps its values; for a
  capture-only key, only on a lead of its own source (`history.may_act_on`);
- a profile is bounded: a submission that would give the person more than MAX_CUSTOM_FIELDS
  custom fields, or a profile over MAX_PROFILE_BYTES, is refused (422) and changes nothing.
  `lead.updated` carries only what changed, custom fields key by key.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.consent_proofs import keep_consent_proof
from services.ingest.journal import know_key, record_activity, stage_event
from services.ingest.lead_lookup import find_matches, transaction_leads
from services.ingest.models import Lead, Source
from services.ingest.normalize import collect_utm, normalize_contact, phone_region
from services.ingest.profiles import (
    FIRST_TOUCH,
    SAID,
    check_profile,
    merge_attributes,
    merged_profile,
    within_bounds,
)
from services.ingest.schemas import LeadIn
from shared import topics
from shared.db import defer_insert
from shared.events import LEAD_CAPTURED, LEAD_UPDATED, LeadCaptured, LeadUpdated, utcnow
from shared.http import Fault, InvalidInput, field_name
from shared.personal import new_key


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
    vouched: bool = False  # from a server holding a key with the history scope: may overwrite
    occurred_at: datetime | None = None  # when the person enquired, if not now (an import's date)


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
        raise InvalidInput(
            [(field_name(tuple(e["loc"])), e["msg"], e["type"]) for e in error.errors()]
        ) from error


def prepare(
    source: Source,
    data: LeadIn,
    default_region: str,
    client: Client | None = None,
    activity: str | None = "form_submitted",
    vouched: bool = False,
) -> Submission:
    """Validate and normalise a lead against its source's policy; InvalidInput names every
    field at fault. Pure: no I/O, so a bad lead never reaches a shared transaction."""
    unmet: list[Fault] = [
        (f, "required by this source", "required_by_source")
        for f in source.required_fields
        if not getattr(data, f, None)
    ]
    region = phone_region(source.default_region, source.default_language, default_region)
    try:
        email, phone, extension = normalize_contact(data.email, data.phone, region)
    except InvalidInput as error:
        raise InvalidInput(error.typed + unmet) from error
    if unmet:
        raise InvalidInput(unmet)
    attributes = data.model_dump(mode="json", exclude={"email", "phone"}, exclude_none=True)
    attributes["utm"] = collect_utm(data.utm, data.page_url, data.referrer)
    campaign = data.campaign or attributes["utm"].get("campaign") or source.default_campaign
    if campaign:
        attributes["campaign"] = campaign
    attributes = {k: v for k, v in attributes.items() if v not in ({}, [], "")}
    if extension:
        attributes["phone_extension"] = extension
    return Submission(email, phone, attributes, client or Client(), activity, vouched=vouched)


async def capture(session: AsyncSession, source: Source, submission: Submission) -> Captured:
    """Create the lead or merge into the one it matches; stage the events in the same transaction."""
    matches = await find_matches(session, submission.email, submission.phone)
    if not matches:
        return Captured(await _create(session, source, submission), created=True)
    return Captured(await _merge(session, source, submission, matches), created=False)


async def _create(session: AsyncSession, source: Source, submission: Submission) -> UUID:
    check_profile(submission.attributes)
    lead_id, now, key = uuid4(), utcnow(), new_key()
    captured_at = submission.occurred_at or now
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
        "updated_at": now,
        "seal_key": key,
    }
    know_key(session, lead_id, key)
    defer_insert(session, Lead.__table__, row)  # type: ignore[attr-defined]
    leads = transaction_leads(session)
    leads.add(row)
    leads.created.add(lead_id)
    payload = _lead_captured(source, submission, captured_at)
    await stage_event(
        session, LEAD_CAPTURED, lead_id, submission.correlation_id, payload, ring=topics.NEW_LEADS_BELL
    )
    if submission.attributes.get("consent") is True:
        keep_consent_proof(session, lead_id, source, submission.occurred_at)
    return lead_id


def _lead_captured(source: Source, submission: Submission, captured_at: datetime) -> LeadCaptured:
    return LeadCaptured(
        source_id=source.id,
        channel=source.channel,
        source_name=source.name,
        online=source.online,
        email=submission.email,
        phone=submission.phone,
        captured_at=captured_at,
        marketing_basis=source.marketing_basis,
        source_language=source.default_language,
        **submission.attributes,
    )


async def _merge(
    session: AsyncSession, source: Source, submission: Submission, matches: list[dict[str, Any]]
) -> UUID:
    lead, conflicts = _matched_lead(submission, matches)
    contact, unmatched = _contact_points(submission, lead, conflicts)
    stored: dict[str, Any] = lead["attributes"]
    incoming = {k: v for k, v in submission.attributes.items() if k not in unmatched}
    changes = merge_attributes(stored, incoming, overwrite=submission.vouched)
    if not submission.vouched:  # answered as for a new person: what passes the bounds is left out
        changes = within_bounds(stored, changes)
    merged = merged_profile(stored, changes)
    if "custom" in changes:
        check_profile(merged)  # the operator's own system is told

    if contact or changes:
        await _apply(session, lead, contact, merged)
        updated = LeadUpdated(
            source_id=source.id,
            channel=source.channel,
            changes={**contact, **changes},
            conflicts=conflicts,
            occurred_at=submission.occurred_at,
        )
        await stage_event(session, LEAD_UPDATED, lead["id"], submission.correlation_id, updated)

    if submission.attributes.get("consent") is True and merged.get("consent") is True:
        keep_consent_proof(session, lead["id"], source, submission.occurred_at)
    if submission.activity:
        kept = FIRST_TOUCH | SAID if _may_act_on(source, submission, lead) else FIRST_TOUCH
        said = {k: v for k, v in submission.attributes.items() if k in kept}
        properties = {**said, **unmatched, **({"conflicts": conflicts} if conflicts else {})}
        await record_activity(
            session,
            lead["id"],
            submission.correlation_id,
            submission.activity,
            source,
            properties,
            submission.occurred_at,
        )
    return UUID(str(lead["id"]))


def _may_act_on(source: Source, submission: Submission, lead: dict[str, Any]) -> bool:
    """Whether what the submission says counts on this lead: vouched for, or the lead is its
    source's own (`history.may_act_on`: a key in a web page makes no other's lead hot)."""
    return submission.vouched or lead.get("source_id") == source.id


def _matched_lead(
    submission: Submission, matches: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The lead merged into (the email's, else the phone's), and the conflict when the phone
    belongs to another lead."""
    by_email = next((m for m in matches if submission.email and m["email"] == submission.email), None)
    by_phone = next((m for m in matches if submission.phone and m["phone"] == submission.phone), None)
    lead = by_email or by_phone
    assert lead is not None
    conflicts = {"phone": str(by_phone["id"])} if by_phone is not None and by_phone is not lead else {}
    return lead, conflicts


def _contact_points(
    submission: Submission, lead: dict[str, Any], conflicts: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The contact points the submission fills in (vouched, where empty), and those it sent
    that the lead does not take (kept on the activity, until their owner's erasure): a phone's
    extension goes with its phone, never onto a lead whose phone is another."""
    contact: dict[str, str] = {}
    if submission.vouched and submission.email and not lead["email"]:
        contact["email"] = submission.email
    if submission.vouched and submission.phone and not lead["phone"] and not conflicts:
        contact["phone"] = submission.phone
    submitted = (("email", submission.email), ("phone", submission.phone))
    unmatched = {k: v for k, v in submitted if v and v != lead[k] and k not in contact}
    if "phone" in unmatched and (extension := submission.attributes.get("phone_extension")):
        unmatched["phone_extension"] = extension
    return contact, unmatched


async def _apply(
    session: AsyncSession, lead: dict[str, Any], contact: dict[str, str], attributes: dict[str, Any]
) -> None:
    """Write the merge: to the row still to be inserted if the lead was created in this
    transaction, otherwise to the database; either way to the transaction's view of it."""
    leads = transaction_leads(session)
    if lead["id"] not in leads.created:
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
    lead.update(contact, attributes=attributes)
    leads.index(lead)
