"""Commercial proposals in the read model: nurture's `proposal.opened` and `proposal.answered`
become one row per proposal, each column merged by its own rule (a fact once given stays; an
answer or a replacement keeps the earliest), so the events may come in any order."""

from typing import Any
from uuid import UUID

from sqlalchemy import Table, func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.models import ProposalFact
from shared.consumer import Handler
from shared.events import PROPOSAL_ANSWERED, PROPOSAL_OPENED, Envelope, ProposalAnswered, ProposalOpened

PROPOSALS: Table = ProposalFact.__table__  # type: ignore[attr-defined]
EARLIEST = ("answered_at", "replaced_at")
GIVEN = ("lead_id", "rep_id", "sent_at", "stale_at")
COLUMNS = ("outcome_id", *GIVEN, *EARLIEST)


def facts_of(event: Envelope) -> list[dict[str, Any]]:
    """The proposal rows an event says something about (a replacement: the older one too)."""
    lead_id = event.lead_id
    if event.type == PROPOSAL_ANSWERED:
        answered = ProposalAnswered.model_validate(event.data)
        at = {"sent_at": answered.sent_at, "answered_at": answered.answered_at}
        return [{"outcome_id": answered.outcome_id, "lead_id": lead_id, **at}]
    opened = ProposalOpened.model_validate(event.data)
    facts = [{"outcome_id": opened.outcome_id, "lead_id": lead_id, **opened.model_dump(include=set(GIVEN))}]
    if opened.replaces is not None:
        facts.append({"outcome_id": opened.replaces, "lead_id": lead_id, "replaced_at": opened.sent_at})
    return facts


def merge(row: dict[str, Any], fact: dict[str, Any]) -> None:
    for name, value in fact.items():
        if value is None:
            continue
        if row.get(name) is None:
            row[name] = value
        elif name in EARLIEST:
            row[name] = min(row[name], value)


async def record(session: AsyncSession, events: list[Envelope]) -> None:
    """One upsert for the whole run, a row per proposal."""
    rows: dict[UUID, dict[str, Any]] = {}
    for event in events:
        for fact in facts_of(event):
            merge(rows.setdefault(fact["outcome_id"], {}), fact)
    if not rows:
        return
    values = [{name: row.get(name) for name in COLUMNS} for row in rows.values()]
    statement = insert(PROPOSALS).values(values)
    new, old = statement.excluded, PROPOSALS.c
    rules: dict[str, Any] = {name: func.coalesce(old[name], new[name]) for name in GIVEN}
    rules |= {name: func.least(old[name], new[name]) for name in EARLIEST}
    await session.execute(statement.on_conflict_do_update(index_elements=["outcome_id"], set_=rules))


async def forget(session: AsyncSession, leads: list[UUID]) -> None:
    """Erasure: the lead's proposals leave the read model."""
    await session.execute(PROPOSALS.delete().where(PROPOSALS.c.lead_id.in_(leads)))


def handlers() -> dict[str, Handler]:
    return {PROPOSAL_OPENED: record, PROPOSAL_ANSWERED: record}
