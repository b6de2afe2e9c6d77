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
- a profile is bounded: a submission that would give the person more than MAX_CUSTOM_FIELDS
  custom fields, or a profile over MAX_PROFILE_BYTES, is refused (422) and changes nothing.
  `lead.updated` carries only what changed, custom fields key by key.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.journal import know_key, record_activity, stage_event
from services.ingest.models import Lead, Source
from services.ingest.normalize import collect_utm, normalize_contact
from services.ingest.schemas import LeadIn
from shared import topics
from shared.db import defer_insert
from shared.events import LEAD_CAPTURED, LEAD_UPDATED, LeadCaptured, LeadUpdated, utcnow
from shared.http import InvalidInput, field_name
from shared.personal import new_key

FIRST_TOUCH = frozenset({"utm", "page_url", "referrer"})
MAX_CUSTOM_FIELDS = 100
MAX_PROFILE_BYTES = 256 * 1024  # as JSON; the events that carry a profile stay well in bounds


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
    vouched: bool = False,
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
    return Submission(email, phone, attributes, client or Client(), activity, vouched=vouched)


async def capture(session: AsyncSession, source: Source, submission: Submission) -> Captured:
    """Create the lead or merge into the one it matches; stage the events in the same transaction."""
    matches = await _find_matches(session, submission.email, submission.phone)
    if not matches:
        return Captured(await _create(session, source, submission), created=True)
    return Captured(await _merge(session, source, submission, matches), created=False)


Contacts = Sequence[tuple[str | None, str | None]]


@dataclass
class _TransactionLeads:
    """The leads one transaction has seen or made, by contact point ("email:…", "phone:…").

    Rows created here are written at commit, and rows merged here are updated in memory as
    well as in the database, so a later capture in the same transaction finds either here.
    `looked_up` holds the contact points already read (and locked) from the database: for
    those, not being in `by_contact` means no lead has them.
    """

    by_contact: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_id: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    looked_up: set[str] = field(default_factory=set)
    created: set[UUID] = field(default_factory=set)

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        """Register a row; a lead already known keeps its (more recent) in-memory row."""
        known = self.by_id.setdefault(UUID(str(row["id"])), row)
        self.index(known)
        return known

    def index(self, row: dict[str, Any]) -> None:
        for key in _contact_keys(row["email"], row["phone"]):
            self.by_contact[key] = row


def _contact_keys(email: str | None, phone: str | None) -> list[str]:
    return [f"{name}:{value}" for name, value in (("email", email), ("phone", phone)) if value]


def _leads(session: AsyncSession) -> _TransactionLeads:
    leads: _TransactionLeads = session.info.setdefault("ingest.leads", _TransactionLeads())
    return leads


_LOCK_BY_CONTACT = text(
    "SELECT id, email, phone, attributes, seal_key FROM leads "
    "WHERE email = ANY(:emails) OR phone = ANY(:phones) ORDER BY id FOR UPDATE"
)


async def prefetch(session: AsyncSession, contacts: Contacts) -> None:
    """Read and lock, in one query, the leads a whole group of captures will match, so each
    capture finds its lead without a query of its own (the group committer calls this)."""
    leads = _leads(session)
    emails = sorted({e for e, _ in contacts if e and f"email:{e}" not in leads.looked_up})
    phones = sorted({p for _, p in contacts if p and f"phone:{p}" not in leads.looked_up})
    if not emails and not phones:
        return
    result = await session.execute(_LOCK_BY_CONTACT, {"emails": emails, "phones": phones})
    for row in result:
        leads.add(dict(row._mapping))
        know_key(session, row.id, row.seal_key)
    leads.looked_up.update(f"email:{e}" for e in emails)
    leads.looked_up.update(f"phone:{p}" for p in phones)


async def _find_matches(session: AsyncSession, email: str | None, phone: str | None) -> list[dict[str, Any]]:
    """The leads holding this email or phone, locked so concurrent merges into one lead queue."""
    leads = _leads(session)
    keys = _contact_keys(email, phone)
    if any(k not in leads.looked_up and k not in leads.by_contact for k in keys):
        await prefetch(session, [(email, phone)])
    found = {id(row): row for key in keys if (row := leads.by_contact.get(key)) is not None}
    return list(found.values())


async def _create(session: AsyncSession, source: Source, submission: Submission) -> UUID:
    check_profile(submission.attributes)
    lead_id, captured_at, key = uuid4(), utcnow(), new_key()
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
        "seal_key": key,
    }
    know_key(session, lead_id, key)
    defer_insert(session, Lead.__table__, row)  # type: ignore[attr-defined]
    leads = _leads(session)
    leads.add(row)
    leads.created.add(lead_id)
    payload = LeadCaptured(
        source_id=source.id,
        channel=source.channel,
        online=source.online,
        email=submission.email,
        phone=submission.phone,
        captured_at=captured_at,
        marketing_basis=source.marketing_basis,
        source_language=source.default_language,
        **submission.attributes,
    )
    await stage_event(
        session, LEAD_CAPTURED, lead_id, submission.correlation_id, payload, ring=topics.NEW_LEADS_BELL
    )
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
    if submission.vouched and submission.email and not lead["email"]:
        contact["email"] = submission.email
    if submission.vouched and submission.phone and not lead["phone"] and not conflicts:
        contact["phone"] = submission.phone
    submitted = (("email", submission.email), ("phone", submission.phone))
    unmatched = {k: v for k, v in submitted if v and v != lead[k] and k not in contact}
    stored: dict[str, Any] = lead["attributes"]
    changes = merge_attributes(stored, submission.attributes, overwrite=submission.vouched)
    merged = {**stored, **changes}
    if "custom" in changes:
        merged["custom"] = {**stored.get("custom", {}), **changes["custom"]}
        check_profile(merged)

    if contact or changes:
        await _apply(session, lead, contact, merged)
        updated = LeadUpdated(
            source_id=source.id, channel=source.channel, changes={**contact, **changes}, conflicts=conflicts
        )
        await stage_event(session, LEAD_UPDATED, lead["id"], submission.correlation_id, updated)

    if submission.activity:
        touch = {k: v for k, v in submission.attributes.items() if k in FIRST_TOUCH}
        properties = {**touch, **unmatched, **({"conflicts": conflicts} if conflicts else {})}
        await record_activity(
            session, lead["id"], submission.correlation_id, submission.activity, source, properties
        )
    return UUID(str(lead["id"]))


async def _apply(
    session: AsyncSession, lead: dict[str, Any], contact: dict[str, str], attributes: dict[str, Any]
) -> None:
    """Write the merge: to the row still to be inserted if the lead was created in this
    transaction, otherwise to the database; either way to the transaction's view of it."""
    leads = _leads(session)
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


def merge_attributes(
    stored: dict[str, Any], incoming: dict[str, Any], overwrite: bool = True
) -> dict[str, Any]:
    """The attributes that change: new or different values (only new ones when not
    `overwrite`), first-touch fields only when missing; for custom fields, the keys that are
    new or different (only new ones when not `overwrite`)."""
    changes: dict[str, Any] = {}
    for key, value in incoming.items():
        if key == "custom":
            known = stored.get("custom", {})
            changed = {k: v for k, v in value.items() if k not in known or (overwrite and known[k] != v)}
            if changed:
                changes["custom"] = changed
            continue
        present = stored.get(key) not in (None, "", [], {})
        if present and (key in FIRST_TOUCH or not overwrite):
            continue
        if stored.get(key) != value:
            changes[key] = value
    return changes


def check_profile(attributes: dict[str, Any]) -> None:
    """Refuse a merged profile over its bounds, naming the field that makes it so."""
    custom = attributes.get("custom", {})
    if len(custom) > MAX_CUSTOM_FIELDS:
        reason = (
            f"would give this person {len(custom)} custom fields; a lead keeps at most {MAX_CUSTOM_FIELDS}"
        )
        raise InvalidInput([("custom", reason)])
    sizes = {k: len(json.dumps(v, ensure_ascii=False).encode()) for k, v in attributes.items()}
    if (total := sum(sizes.values())) > MAX_PROFILE_BYTES:
        largest = max(sizes, key=sizes.__getitem__)
        reason = f"would make this person's profile {total:,} bytes; at most {MAX_PROFILE_BYTES:,}"
        raise InvalidInput([(largest, reason)])
