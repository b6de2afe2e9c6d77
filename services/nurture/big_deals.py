"""Big deals: a lead handed to a rep whose stated budget is above the month's sales plan
(`monthly_plan`), or a commercial proposal sent for more than it, is told at once to the
directors, or to the managers when there is no director, so that one of them can meet the
person themselves (DOMAIN.md "escalate hard or big deals (deal above the monthly plan →
director)", 002:224: "whose deals may bring more than the month's planned volume"). Told with
the hand-off, in its transaction: once a hand-off, never for a lead no rep was given (the
managers hear of that one anyway); told with the proposal's opening: once a proposal."""

import math
import re
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Proposal, Rep
from services.nurture.proposal_reminders import proposal_owner
from services.nurture.rep_webhooks import queue_webhook
from shared.events import Envelope
from shared.languages import language_of, say

BIG_DEAL = "lead.big_deal"


def budget_above(lead: dict[str, Any], plan: float | None) -> float | None:
    """The lead's stated budget when it is above `plan` (None: no plan, no budget, or within it)."""
    stated: Any = lead.get("budget")
    if plan is None or stated is None or isinstance(stated, bool):
        return None
    try:
        budget = float(stated)  # a number, or one written as text ("1500000")
    except (TypeError, ValueError):
        return None
    return budget if math.isfinite(budget) and budget > plan else None


def proposal_above(
    amount: float | None, currency: str | None, plan: float | None, plan_currency: str | None
) -> float | None:
    """A proposal's amount when it is above `plan` (None: no plan or amount, within it, or in
    a currency other than the plan's, when the plan's is set)."""
    if plan is None or amount is None or not math.isfinite(amount):
        return None
    if plan_currency is not None and currency is not None and currency != plan_currency:
        return None
    return amount if amount > plan else None


async def told_of_big_deals(session: AsyncSession) -> list[Rep]:
    """The active directors, else the active managers (read, not locked: nothing of theirs is
    written)."""
    for role in ("director", "manager"):
        query = select(Rep).where(col(Rep.active), col(Rep.role) == role).order_by(col(Rep.created_at))
        if found := list((await session.exec(query)).all()):
            return found
    return []


async def tell_big_deal(
    session: AsyncSession,
    cause: Envelope,
    classified: dict[str, Any],
    rep: Rep,
    budget: float,
    plan: float,
    now: datetime,
) -> int:
    """Queue the signed `lead.big_deal` webhook to each director (else manager) at `now`: the lead
    `cause` handed to `rep`, with a message in the lead's language; returns how many were told."""
    person = classified.get("lead") or {}
    language = language_of(person)
    fields = {**person, "budget": _amount(budget, language), "plan": _amount(plan, language), "rep": rep.name}
    data = {
        "lead_id": str(cause.lead_id),
        "correlation_id": str(cause.correlation_id),
        "rep_id": str(rep.id),
        "reason": "budget",
        "budget": budget,
        "monthly_plan": plan,
        "message": re.sub(" {2,}", " ", say("director_big_deal", language, **fields)).strip(),
        "language": language,
        "lead": classified,
    }
    return await _tell(session, cause.lead_id, data, now)


async def tell_big_proposal(
    session: AsyncSession, proposal: Proposal, amount: float, currency: str | None, plan: float, now: datetime
) -> int:
    """Queue `lead.big_deal` (`reason` "proposal") to each director (else manager) at `now`:
    `proposal` sent for `amount`, with who sent it (or holds the lead) and the person as the
    hand-off last described them; returns how many were told."""
    rep, person, _ = await proposal_owner(session, proposal)
    language = language_of(person)
    written = _amount(amount, language) + (f" {currency}" if currency else "")
    fields = {**person, "amount": written, "plan": _amount(plan, language), "rep": rep.name if rep else None}
    data = {
        "lead_id": str(proposal.lead_id),
        "correlation_id": str(proposal.correlation_id),
        "rep_id": str(rep.id) if rep else None,
        "reason": "proposal",
        "outcome_id": str(proposal.outcome_id),
        "amount": amount,
        "currency": currency,
        "monthly_plan": plan,
        "message": re.sub(" {2,}", " ", say("director_big_proposal", language, **fields)).strip(),
        "language": language,
        "lead": person,
    }
    return await _tell(session, proposal.lead_id, data, now)


async def _tell(session: AsyncSession, lead_id: Any, data: dict[str, Any], now: datetime) -> int:
    body = {"type": BIG_DEAL, "timestamp": now.isoformat(), "data": data}
    told = await told_of_big_deals(session)
    for director in told:
        queue_webhook(session, director, lead_id, BIG_DEAL, body, now)
    return len(told)


def _amount(value: float, language: str) -> str:
    """1500000.0 as 1,500,000 and 2500.5 as 2,500.50 in English; in Russian, Kazakh and
    Azerbaijani as 1 500 000 and 2 500,50 (a no-break space between thousands, a decimal comma)."""
    written = f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return written if language == "en" else written.replace(",", "\u00a0").replace(".", ",")
