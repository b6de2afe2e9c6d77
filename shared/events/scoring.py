"""The event scoring produces (topic `scoring.lead-classifications`): a lead classified, with
the rule hits behind its score, and which classifications hand the lead to a rep."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.events.envelope import Payload

LEAD_CLASSIFIED = "lead.classified"

Temperature = Literal["cold", "warm", "hot"]
# The lifecycle stages a classification names (DOMAIN.md "Lead types and lifecycle"): scoring's
# lifecycle moves between them; metrics takes costs entered against these only.
Stage = Literal[
    "suspect",
    "lead",
    "mql",
    "sql",
    "opportunity",
    "customer",
    "regular_customer",
    "advocate",
    "disqualified",
    "parked",
    "lost",
    "churned",
]


class RuleHit(BaseModel):
    rule: str
    points: int
    reason: str


HANDED_OVER_STAGES = frozenset({"sql"})  # besides hot leads: straight to sales (DOMAIN.md)
# New interest, not yet worked by sales: the only stages a hand-off is for. A lost or parked
# lead that revives comes back to one of them; a disqualified lead (spam, inquiry only), an
# opportunity, a customer or a churned one is never a new lead for a rep (DOMAIN.md lifecycle).
NEW_INTEREST_STAGES = frozenset({"suspect", "lead", "mql", "sql"})


def for_a_rep(temperature: str | None, stage: str | None, history: bool | None = None) -> bool:
    """Whether a classification hands the lead to a rep now: new interest that is hot, or
    sales-qualified, and not `history` (what made it so happened long before it was recorded:
    an imported enquiry, a CRM's backdated outcome; nobody is asked to call it now). Scoring
    rings the hot-lead bell for these; nurture's hand-off lane takes these."""
    if history:
        return False
    return stage in NEW_INTEREST_STAGES and (temperature == "hot" or stage in HANDED_OVER_STAGES)


class Said(BaseModel):
    """What the person said most recently, and when: their profile's own words, or those of a
    later repeat submission (which a `capture` key may not write to the profile)."""

    timeframe: str | None = None
    message: str | None = None
    need: str | None = None
    at: datetime | None = None


class LeadClassified(Payload):
    """scoring: the lead's score, temperature or stage changed."""

    score: int
    temperature: Temperature
    stage: str
    previous_score: int | None = None
    previous_temperature: Temperature | None = None
    previous_stage: str | None = None
    fit: int = 0
    engagement: int = 0
    intent: int = 0
    breakdown: list[RuleHit] = Field(default_factory=list)
    bant: dict[str, bool] = Field(default_factory=dict)
    stage_reason: str | None = None  # why the stage changed, when it did
    cause: str | None = None  # the input's event type, or "decay" / "rescore"
    rules_version: int
    lead: dict[str, Any] = Field(default_factory=dict)
    said: Said | None = None  # the person's latest words, where `lead` keeps the profile's
    # True: a record of the past (an input dated more than an hour before it was recorded, or
    # a pass of time over a lead whose latest input was): kept and counted, handed to no rep.
    history: bool | None = None
