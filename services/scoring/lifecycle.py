"""The lifecycle stage: where a lead is on its way to buying, and which moves are allowed.
Pure, no I/O (DOMAIN.md "Lead types and lifecycle": 003:49-71, 004:424-432, 001:356).

suspect -> lead -> mql -> sql -> opportunity -> customer -> regular_customer -> advocate,
with the side exits disqualified, parked (recycle), lost (revivable) and churned.
Marketing stages (suspect to sql) advance by themselves as the evaluation allows and never
step back on their own; sales stages move on sales outcomes. Forward skips are allowed
(word of mouth skips stages, 000:121). A move the table does not allow is refused.
"""

from dataclasses import dataclass
from datetime import datetime

from services.scoring.model import Evaluation
from services.scoring.profile import OutcomeEntry, Profile
from services.scoring.rules import Rules
from services.scoring.temperature import interest_shown, stated_horizon

MARKETING = ("suspect", "lead", "mql", "sql")
SALES = ("opportunity", "customer", "regular_customer", "advocate")
EXITS = ("disqualified", "parked", "lost", "churned")
STAGES = (*MARKETING, *SALES, *EXITS)
RANK = {stage: rank for rank, stage in enumerate((*MARKETING, *SALES))}
REVIVABLE = ("parked", "lost")
BUYERS = ("customer", "regular_customer", "advocate")
OPEN = (*MARKETING, "opportunity")

# Each stage's allowed next stages.
ALLOWED: dict[str, frozenset[str]] = {
    "suspect": frozenset({"lead", "mql", "sql", "opportunity", "customer", *EXITS[:3]}),
    "lead": frozenset({"mql", "sql", "opportunity", "customer", *EXITS[:3]}),
    "mql": frozenset({"sql", "opportunity", "customer", *EXITS[:3]}),
    "sql": frozenset({"opportunity", "customer", *EXITS[:3]}),
    "opportunity": frozenset({"customer", "disqualified", "parked", "lost"}),
    "customer": frozenset({"regular_customer", "advocate", "churned"}),
    "regular_customer": frozenset({"advocate", "churned"}),
    "advocate": frozenset({"churned"}),
    # Only sales can take a disqualified lead back: by accepting it, or by winning it (a sale
    # is a fact the classifier's red flag cannot undo; metrics counts the customer too).
    "disqualified": frozenset({"sql", "customer"}),
    "parked": frozenset({"lead", "mql", "sql", "opportunity", "customer", "disqualified", "lost"}),
    "lost": frozenset({"lead", "mql", "sql", "opportunity", "customer", "disqualified"}),
    "churned": frozenset({"opportunity", "customer"}),  # win-back
}


@dataclass(frozen=True)
class Move:
    """A stage change, or a refused one (`refused` says why)."""

    to: str
    reason: str
    refused: str | None = None


def outcome_target(current: str, outcome: OutcomeEntry, rules: Rules, disqualifying: bool) -> str | None:
    """The stage a sales outcome asks for (None: it does not move stages)."""
    match outcome.outcome:
        case "sales_accepted":
            return "sql"
        case "sales_rejected":
            return "disqualified" if disqualifying else "parked"
        case "meeting_booked" | "proposal_sent":
            return "opportunity"
        case "won" if current == "advocate":
            return current  # a repeat purchase is no step back to regular customer
        case "won":
            return "regular_customer" if current in BUYERS else "customer"
        case "lost":
            return "lost"
        case "churned":
            return "churned"
    return None


def on_outcome(
    current: str, outcome: OutcomeEntry, rules: Rules, evaluation: Evaluation, profile: Profile
) -> Move | None:
    """The move a sales outcome makes, or its refusal; None when it changes nothing. One dated
    before the latest outcome told (a CRM's backfill re-sending an old proposal or win) is
    history: it reopens no lost deal and makes no churned customer a customer again."""
    target = outcome_target(current, outcome, rules, evaluation.disqualified_by is not None)
    if target is None or target == current:
        return None
    reason = f"sales outcome: {outcome.outcome}" + (f" ({outcome.reason})" if outcome.reason else "")
    if any(told.at > outcome.at for told in profile.outcomes):
        return Move(to=current, reason=reason, refused=f"dated before the latest outcome ({current})")
    if target not in ALLOWED[current]:
        return Move(to=current, reason=reason, refused=f"{current} cannot move to {target}")
    return Move(to=target, reason=reason)


def automatic(
    current: str, since: datetime | None, profile: Profile, evaluation: Evaluation, rules: Rules
) -> Move | None:
    """The move the evaluation alone makes: marketing stages advance, a red flag that rules
    the lead out disqualifies it, new interest revives a parked or lost lead, a customer
    who refers someone becomes an advocate."""
    if evaluation.disqualified_by is not None and current in MARKETING and not _accepted(current, profile):
        return Move(to="disqualified", reason=f"rule {evaluation.disqualified_by}")
    earned, why = marketing_stage(evaluation, rules)
    if current in MARKETING and RANK[earned] > RANK[current]:
        return Move(to=earned, reason=why)
    if current in REVIVABLE and since is not None and _interest_after(profile, evaluation, since, rules):
        to = earned if RANK[earned] >= RANK["lead"] else "lead"
        return Move(to=to, reason=f"revived: new interest after being {current}")
    referred = profile.last_activity("referral_given")
    if current in ("customer", "regular_customer") and referred is not None and since and referred > since:
        return Move(to="advocate", reason="referred someone")
    return None


def marketing_stage(evaluation: Evaluation, rules: Rules) -> tuple[str, str]:
    """The furthest marketing stage the evaluation earns, and why."""
    sql, mql = rules.stages.sql, rules.stages.mql
    if evaluation.direct_request is not None:
        return "sql", f"asked: {evaluation.direct_request.replace('_', ' ')}"
    if evaluation.bant.desire and evaluation.bant.count >= sql.min_bant:
        signals = ", ".join(k for k, v in evaluation.bant.as_dict().items() if v)
        return "sql", f"ready to buy now ({signals})"
    if evaluation.temperature == "hot":  # ready soon: a rep's (for_a_rep), not marketing's to nurture
        return "lead", "hot, not yet sales-qualified"
    if evaluation.fit >= mql.min_fit and evaluation.engagement >= mql.min_engagement:
        return "mql", f"fits (fit {evaluation.fit}) and engaged (engagement {evaluation.engagement})"
    if evaluation.score >= mql.min_score:
        return "mql", f"score {evaluation.score} ≥ {mql.min_score}"
    if evaluation.interested:
        return "lead", "showed interest"
    return "suspect", "only looked around"


def _accepted(current: str, profile: Profile) -> bool:
    """An SQL sales accepted (its latest outcome): only sales rule it out now, by rejecting it."""
    return current == "sql" and bool(profile.outcomes) and profile.outcomes[-1].outcome == "sales_accepted"


def _interest_after(profile: Profile, evaluation: Evaluation, since: datetime, rules: Rules) -> bool:
    """The person showed interest after `since`: a rep's note or unanswered call is not theirs,
    nor a timeframe that states none ("unknown", "не знаю": a CRM filling the field)."""
    latest = [profile.last_activity(kind) for kind in interest_shown(profile, rules)]
    stated = profile.timeframe_at is not None and stated_horizon(profile, rules, since).days is not None
    return any(t is not None and t > since for t in (*latest, profile.timeframe_at if stated else None))
