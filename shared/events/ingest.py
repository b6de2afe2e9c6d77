"""The events ingest produces (topic `ingest.lead-events`): a lead captured or updated, what it
did, what sales reported, consent given or withdrawn, and its erasure."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from shared.events.envelope import Payload

LEAD_CAPTURED = "lead.captured"
LEAD_UPDATED = "lead.updated"
ACTIVITY_RECORDED = "activity.recorded"
OUTCOME_RECORDED = "outcome.recorded"
CONSENT_CHANGED = "consent.changed"
LEAD_ERASED = "lead.erased"

# Where leads come from (DOMAIN.md, "Sources a lead comes from"): a source's channel, which each
# of its leads carries; metrics takes costs entered against these only.
Channel = Literal[
    "web_form",
    "landing_page",
    "one_click_order",
    "callback_request",
    "chatbot",
    "live_chat",
    "newsletter",
    "social",
    "content",
    "referral",
    "ad",
    "api",
    "event",
    "import",
    "phone",
    "store_visit",
    "app",
    "existing_customer",
    "reactivation",
]


class LeadCaptured(Payload):
    """ingest: a new lead was accepted. Contact fields travel so downstream needs no lookup."""

    source_id: UUID
    channel: str
    source_name: str | None = None  # the source's name as it was then: reports show it beside the id
    email: str | None = None
    phone: str | None = None  # E.164: the identity, and where SMS and messengers go
    phone_extension: str | None = None  # digits an office line's switchboard asks for; for calls
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    industry: str | None = None
    company_size: str | None = None
    country: str | None = None
    city: str | None = None
    timezone: str | None = None
    birthday: str | None = None  # YYYY-MM-DD, or --MM-DD without the year; sealed as the rest
    budget: float | None = None
    timeframe: str | None = None
    need: str | None = None
    is_decision_maker: bool | None = None
    message: str | None = None
    consent: bool | None = None
    utm: dict[str, str] = Field(default_factory=dict)
    page_url: str | None = None
    referrer: str | None = None
    custom: dict[str, Any] = Field(default_factory=dict)
    campaign: str | None = None
    online: bool = True
    captured_at: datetime
    marketing_basis: str | None = None  # the source's legal basis for marketing without consent
    source_language: str | None = None  # the source's default language (the lead's `language` wins)


class LeadUpdated(Payload):
    """ingest: a known person came back (progressive profiling); `changes` holds the fields that
    are new or changed, `conflicts` the contact points that already belong to another lead."""

    source_id: UUID
    channel: str
    changes: dict[str, Any]
    conflicts: dict[str, UUID] = Field(default_factory=dict)
    # When the person said it, when not as it was recorded: an import row's enquiry date
    occurred_at: datetime | None = None


class ActivityRecorded(Payload):
    """ingest: something the lead did (a page view, a repeat form, a chat message, a call...)."""

    activity_id: UUID
    activity_type: str
    occurred_at: datetime
    source_id: UUID | None = None
    channel: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class OutcomeRecorded(Payload):
    """ingest: what sales reported (accepted, meeting, proposal, won with amount, lost with reason)."""

    outcome_id: UUID
    outcome: str
    occurred_at: datetime
    amount: float | None = None
    currency: str | None = None
    reason: str | None = None
    rep_id: UUID | None = None


class ConsentChanged(Payload):
    """ingest: the person gave or withdrew consent (withdrawn for `marketing` = unsubscribed)."""

    granted: bool
    purpose: str
    channel: str | None = None
    occurred_at: datetime
    # The scope of the source key that recorded it: `capture` (a key any web page carries, so
    # anyone may send it with any address) or `history` (a server's); None in older events.
    key_scope: str | None = None


class LeadErased(Payload):
    """ingest: the person's data is erased; every service erases what it holds on the lead."""

    erased_at: datetime
